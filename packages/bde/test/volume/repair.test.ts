// Off-device repair: a copy with all three FVE blocks zeroed opens through an exported metadata package.
import { copyFile, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isBdeError } from '../../src/errors.js';
import {
  exportMetadataPackage,
  openVolumeWithPackage,
  parseMetadataPackage,
} from '../../src/volume/metadata-package.js';
import { openVolume } from '../../src/volume/open-volume.js';
import { openFileSource } from '../../src/volume/source.js';
import { unlock } from '../../src/volume/unlock.js';
import { closeAll, fx, openImage, plaintextSha256, skipMessage } from './helpers.js';

describe.skipIf(!fx)('metadata package repair', () => {
  if (!fx) console.warn(skipMessage);
  let dir: string | undefined;
  afterAll(async () => {
    await closeAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('decrypts a copy whose three FVE blocks are zeroed, with the package and the RP', async () => {
    const { image, volume } = await openImage('aes-xts-128');
    const pkg = await exportMetadataPackage(volume);
    expect(pkg.length).toBeLessThan(4 * 65536);
    const parsed = parseMetadataPackage(pkg);
    expect(parsed.volumeGuid).toBe(image.guid!.toUpperCase());
    expect(parsed.sections.map((s) => s.kind)).toEqual([1, 2, 2, 2, 3]);

    dir = await mkdtemp(join(tmpdir(), 'bdevault-repair-'));
    const copy = join(dir, 'damaged.img');
    await copyFile(image.path, copy);
    const handle = await open(copy, 'r+');
    for (const offset of volume.info.metadataOffsets)
      await handle.write(Buffer.alloc(65536), 0, 65536, offset);
    await handle.close();

    const damaged = await openFileSource(copy);
    try {
      const err = await openVolume(damaged).catch((e: unknown) => e);
      expect(isBdeError(err, 'ERR_BDE_CORRUPT_METADATA')).toBe(true);
      const repaired = await openVolumeWithPackage(damaged, pkg);
      const unlocked = await unlock(repaired, { kind: 'recovery-password', recoveryPassword: image.rp! });
      expect(await plaintextSha256(unlocked)).toBe(image.sha256);
    } finally {
      await damaged.close();
    }
  }, 60_000);

  it('rejects a damaged package with ERR_BDE_BAD_PACKAGE', async () => {
    const { volume } = await openImage('aes-xts-128');
    const pkg = Buffer.from(await exportMetadataPackage(volume));
    for (const broken of [
      pkg.subarray(0, 20),
      Buffer.concat([Buffer.from('NOTAPKG!'), pkg.subarray(8)]),
      (() => {
        const b = Buffer.from(pkg);
        b[1000] = b[1000]! ^ 1;
        return b;
      })(),
    ]) {
      let err: unknown;
      try {
        parseMetadataPackage(broken);
      } catch (e) {
        err = e;
      }
      expect(isBdeError(err, 'ERR_BDE_BAD_PACKAGE')).toBe(true);
    }
  });
});
