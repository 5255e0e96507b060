// Byte sources: bounds, overlays and files; never a whole-volume read.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isBdeError } from '../../src/errors.js';
import { openVolume } from '../../src/volume/open-volume.js';
import { memorySource, openFileSource, overlaySource } from '../../src/volume/source.js';

async function codeOf(p: Promise<unknown>): Promise<string | null> {
  return p.then(
    () => null,
    (e: unknown) => (isBdeError(e) ? e.code : String(e)),
  );
}

describe('byte sources', () => {
  it('memory source reads exact ranges and refuses reads past the end', async () => {
    const src = memorySource(Uint8Array.from([1, 2, 3, 4, 5]));
    expect(await src.read(1, 3)).toEqual(Uint8Array.from([2, 3, 4]));
    expect(await codeOf(src.read(3, 3))).toBe('ERR_BDE_TRUNCATED');
    expect(await codeOf(src.read(-1, 1))).toBe('ERR_BDE_INVALID_ARGUMENT');
  });

  it('overlay patches win over the base, partially overlapping reads included', async () => {
    const base = memorySource(new Uint8Array(16));
    const src = overlaySource(base, [{ offset: 6, bytes: Uint8Array.from([9, 9, 9, 9]) }]);
    expect(await src.read(4, 4)).toEqual(Uint8Array.from([0, 0, 9, 9]));
    expect(await src.read(8, 4)).toEqual(Uint8Array.from([9, 9, 0, 0]));
    expect(await base.read(6, 1)).toEqual(Uint8Array.from([0]));
  });

  it('file source reads a file and reports its size', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bdevault-src-'));
    try {
      await writeFile(join(dir, 'f'), Buffer.from('hello world'));
      const src = await openFileSource(join(dir, 'f'));
      expect(src.size).toBe(11);
      expect(Buffer.from(await src.read(6, 5)).toString()).toBe('world');
      await src.close();
      expect(await codeOf(openFileSource(join(dir, 'missing')))).toBe('ERR_BDE_IO');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('non-BitLocker and tiny inputs are ERR_BDE_NOT_BITLOCKER', async () => {
    expect(await codeOf(openVolume(memorySource(new Uint8Array(100))))).toBe('ERR_BDE_NOT_BITLOCKER');
    const ntfs = new Uint8Array(4096);
    ntfs.set(Buffer.from('NTFS    '), 3);
    expect(await codeOf(openVolume(memorySource(ntfs)))).toBe('ERR_BDE_NOT_BITLOCKER');
    const fve = new Uint8Array(4096);
    fve.set(Buffer.from('-FVE-FS-'), 3);
    expect(await codeOf(openVolume(memorySource(fve)))).toBe('ERR_BDE_NOT_BITLOCKER');
  });
});
