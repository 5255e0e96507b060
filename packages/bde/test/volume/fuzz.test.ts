// Mutated real metadata for a bounded time (BDEVAULT_FUZZ_SECONDS, default 10): only BdeError, no crash, no hang.
// Unlocks go through the raw VMK / FVEK, a mutated .BEK (the external-key protector's parsing and
// unwrapping, no key derivation) and, now and then, a recovery password or password (one stretch).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crypto/crc32.js';
import { BdeError } from '../../src/errors.js';
import { parseDatums } from '../../src/volume/datum.js';
import { parseMetadataPackage } from '../../src/volume/metadata-package.js';
import { type BitLockerVolume, openVolume } from '../../src/volume/open-volume.js';
import { type ByteSource, overlaySource } from '../../src/volume/source.js';
import { parseStartupKeyFile } from '../../src/volume/startup-key-file.js';
import { unlock } from '../../src/volume/unlock.js';
import type { Credential } from '../../src/volume/credentials.js';
import { listRecoveryPasswords } from '../../src/volume/vmk-secrets.js';
import { closeAll, fx, openImage, skipMessage } from './helpers.js';

const seconds = Number(process.env.BDEVAULT_FUZZ_SECONDS ?? 10);
const seed = Number(process.env.BDEVAULT_FUZZ_SEED ?? 0x5eed);

/** mulberry32: small seeded PRNG so a failure can be replayed with BDEVAULT_FUZZ_SEED. */
function prng(s: number): () => number {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Offsets of every datum header (size field) in the block, nested ones included. */
function datumOffsets(block: Buffer): number[] {
  const out: number[] = [];
  const metadataSize = block.readUInt32LE(64);
  const walk = (list: ReturnType<typeof parseDatums>) => {
    for (const d of list) {
      out.push(d.bytes.byteOffset - block.byteOffset);
      walk(d.nested);
    }
  };
  walk(parseDatums(block.subarray(112, 64 + metadataSize)));
  return out;
}

/**
 * Mostly raw keys (no key derivation); a .BEK, sometimes with a byte changed, where the image has
 * one; a recovery password or password in about 1% of iterations, since each costs one stretch.
 */
function pickCredential(
  img: { vmk: Uint8Array; fvek: Uint8Array; rp: string; bek: Buffer | undefined },
  rand: () => number,
  int: (n: number) => number,
): Credential {
  const r = rand();
  if (r < 0.005) return { kind: 'recovery-password', recoveryPassword: img.rp };
  if (r < 0.01) return { kind: 'password', password: 'anaconda' };
  if (img.bek && r < 0.4) {
    const bek = Buffer.from(img.bek);
    if (rand() < 0.5) bek[int(bek.length)] = int(256);
    return { kind: 'startup-key', bek };
  }
  return r < 0.7 ? { kind: 'vmk', vmk: img.vmk } : { kind: 'fvek', fvek: img.fvek };
}

function truncated(base: ByteSource, size: number): ByteSource {
  return {
    size,
    read: (o, l) =>
      o + l > size ? Promise.reject(new BdeError('ERR_BDE_TRUNCATED', 'end')) : base.read(o, l),
  };
}

describe.skipIf(!fx)(`fuzzing metadata for ${seconds}s (seed ${seed})`, () => {
  if (!fx) console.warn(skipMessage);
  const names = [
    'aes-xts-128-smart-card',
    'aes-xts-128-startup-key-win11',
    'aes-cbc-elephant-128',
    'togo-aes-cbc-128',
  ];
  const images: {
    volume: BitLockerVolume;
    block: Buffer;
    boot: Buffer;
    offsets: number[];
    vmk: Uint8Array;
    fvek: Uint8Array;
    rp: string;
    bek: Buffer | undefined;
  }[] = [];
  const bekOf: Record<string, string> = {
    'aes-xts-128-startup-key-win11': 'AA80A52B-9B66-47AE-B097-33F536FFBB07.BEK',
  };
  beforeAll(async () => {
    for (const name of names) {
      const { volume } = await openImage(name);
      // Raw keys from one key derivation per image: the loop itself never derives a key.
      const rp = fx!.image(name).rp!;
      const unlocked = await unlock(volume, { kind: 'recovery-password', recoveryPassword: rp });
      images.push({
        volume,
        block: Buffer.from(await volume.source.read(volume.block.offset, 0x10000)),
        boot: Buffer.from(await volume.source.read(0, 512)),
        offsets: volume.info.metadataOffsets,
        vmk: unlocked.vmk!,
        fvek: unlocked.fvek,
        rp,
        bek: bekOf[name] ? readFileSync(join(fx!.dir, bekOf[name])) : undefined,
      });
    }
  }, 120_000);
  afterAll(closeAll);

  it(
    'only BdeError escapes, whatever the mutation',
    async () => {
      const rand = prng(seed);
      const int = (n: number) => Math.floor(rand() * n);
      const deadline = Date.now() + seconds * 1000;
      let iterations = 0;
      let opened = 0;
      let unlocked = 0;
      const unlockedBy: Record<string, number> = {};
      const unexpected: string[] = [];
      while (Date.now() < deadline) {
        iterations++;
        const img = images[int(images.length)]!;
        const block = Buffer.from(img.block);
        const boot = Buffer.from(img.boot);
        const fveSize = block.readUInt16LE(8) * 16;
        const headers = datumOffsets(img.block);
        const mutations = 1 + int(4);
        for (let m = 0; m < mutations; m++) {
          switch (int(7)) {
            case 0: // bit flips inside the covered metadata
              block[int(fveSize + 96)]! ^= 1 << int(8);
              break;
            case 1: // a datum's size field
              block.writeUInt16LE([0, 1, 7, 8, 0xffff, int(0x10000)][int(6)]!, headers[int(headers.length)]!);
              break;
            case 2: // a datum's value type (changes the header size the parser expects)
              block.writeUInt16LE(int(0x1a), headers[int(headers.length)]! + 4);
              break;
            case 3: // block/metadata size and count fields
              block.writeUInt16LE(int(0x1000), 8);
              block.writeUInt32LE([0, 47, 48, int(0x20000), 0xffffffff][int(5)]!, 64);
              break;
            case 4: // encrypted size, volume-header offset, block offsets
              block.writeUInt32LE(rand() * 0xffffffff, [16, 20, 32, 40, 56, 60][int(6)]!);
              break;
            case 5: // the boot sector: sector size, block offsets, identifier
              boot.writeUInt16LE([0, 1, 512, 4096, 0xffff][int(5)]!, 11);
              boot.writeUInt32LE(rand() * 0xffffffff, [176, 180, 184, 440, 160][int(5)]!);
              break;
            default: // random bytes anywhere in the first 2 KiB
              block[int(2048)] = int(256);
          }
        }
        // Half the time make the CRC right again so the mutated block is actually used.
        const newSize = block.readUInt16LE(8) * 16;
        if (rand() < 0.5 && newSize >= 112 && newSize + 8 <= block.length) {
          block.writeUInt32LE(crc32(block.subarray(0, newSize)), newSize + 4);
        }
        let source: ByteSource = overlaySource(img.volume.source, [
          { offset: 0, bytes: boot },
          ...img.offsets.map((offset) => ({ offset, bytes: block })),
        ]);
        if (rand() < 0.1) source = truncated(source, int(img.volume.source.size));
        try {
          const volume = await openVolume(source);
          opened++;
          JSON.stringify(volume.info);
          const credential = pickCredential(img, rand, int);
          const u = await unlock(volume, credential);
          unlocked++;
          unlockedBy[credential.kind] = (unlockedBy[credential.kind] ?? 0) + 1;
          if (u.vmk) listRecoveryPasswords(volume, u.vmk);
          await u.readPlaintext(0, 4096);
          const at = int(Math.max(1, volume.info.volumeSize - 70000));
          await u.readPlaintext(at, 65536 + int(4096));
        } catch (err) {
          if (!(err instanceof BdeError))
            unexpected.push(`${iterations}: ${(err as Error)?.stack ?? String(err)}`);
        }
        // Also the small parsers on random or cut input.
        for (const parse of [parseStartupKeyFile, parseMetadataPackage]) {
          try {
            parse(block.subarray(int(64), int(512)));
          } catch (err) {
            if (!(err instanceof BdeError)) unexpected.push(`${parse.name}: ${String(err)}`);
          }
        }
      }
      console.log(
        `fuzz: ${iterations} iterations, ${opened} opened, ${unlocked} unlocked ${JSON.stringify(unlockedBy)}`,
      );
      expect(unexpected.slice(0, 5)).toEqual([]);
      expect(iterations).toBeGreaterThan(10);
      // The mutations must leave enough intact that the deeper code runs too, not only the first checks.
      expect(opened).toBeGreaterThan(0);
      expect(unlocked).toBeGreaterThan(0);
    },
    (seconds + 60) * 1000,
  );
});
