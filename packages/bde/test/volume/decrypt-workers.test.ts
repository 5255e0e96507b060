// Worker-pool decryption: same plaintext as in-thread on real images, fallback when workers cannot start, dist build.
import { execFileSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import {
  METHOD,
  decryptSectors,
  decryptSectorsInPlace,
  decryptSectorsInto,
} from '../../src/crypto/sector-cipher.js';
import { createDecryptPool, decryptVolumeStream } from '../../src/volume/decrypt-workers.js';
import { unlock } from '../../src/volume/unlock.js';
import { closeAll, fx, openImage, plaintextSha256, skipMessage } from './helpers.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** Large buffers are compared by digest, so a failure does not print megabytes. */
const digest = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');

/** §3.8's Elephant decryption read literally, one sector at a time (the oracle for the fast loops). */
function elephantReference(bits: 128 | 256, key: Buffer, data: Buffer, first: number, ss: number): Buffer {
  const dataKey = key.subarray(0, bits / 8);
  const tweakKey = key.subarray(32, 32 + bits / 8);
  const out = Buffer.alloc(data.length);
  const rotl = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0;
  for (let off = 0; off < data.length; off += ss) {
    const le = Buffer.alloc(16);
    le.writeBigUInt64LE(BigInt(first + off));
    const iv = createCipheriv(`aes-${bits}-ecb`, dataKey, null).setAutoPadding(false).update(le);
    const d = createDecipheriv(`aes-${bits}-cbc`, dataKey, iv).setAutoPadding(false);
    const sector = Buffer.concat([d.update(data.subarray(off, off + ss)), d.final()]);
    const n = ss / 4;
    const w = Array.from({ length: n }, (_, i) => sector.readUInt32LE(i * 4));
    for (let p = 0; p < 3; p++)
      for (let i = 0; i < n; i++)
        w[i] = (w[i]! + (w[(i + 2) % n]! ^ rotl(w[(i + 5) % n]!, [0, 10, 0, 25][i % 4]!))) >>> 0;
    for (let p = 0; p < 5; p++)
      for (let i = 0; i < n; i++)
        w[i] = (w[i]! + (w[(i - 2 + n) % n]! ^ rotl(w[(i - 5 + n) % n]!, [9, 0, 13, 0][i % 4]!))) >>> 0;
    const e = createCipheriv(`aes-${bits}-ecb`, tweakKey, null).setAutoPadding(false);
    const hi = Buffer.from(le);
    hi[15] = 0x80;
    const sectorKey = Buffer.concat([e.update(le), e.update(hi)]);
    for (let i = 0; i < n; i++)
      out.writeUInt32LE((w[i]! ^ sectorKey.readUInt32LE((i * 4) % 32)) >>> 0, off + i * 4);
  }
  return out;
}
describe('fast sector loops', () => {
  it('Elephant (128 and 256, 512 and 4096-byte sectors) matches §3.8 read literally, across sub-batches', () => {
    for (const method of [METHOD.AES_128_CBC_ELEPHANT, METHOD.AES_256_CBC_ELEPHANT]) {
      for (const ss of [512, 4096]) {
        const key = randomBytes(64);
        const data = randomBytes(ss === 512 ? 600 * 512 : 70 * 4096); // > one 256 KiB sub-batch
        const first = 0x1_0000_0000 + ss * 3;
        const keys = { method, fvek: key, sectorSize: ss };
        const bits = method === METHOD.AES_128_CBC_ELEPHANT ? 128 : 256;
        const want = digest(elephantReference(bits, key, data, first, ss));
        expect(digest(decryptSectors(keys, data, first))).toBe(want);
        const copy = Buffer.from(data);
        expect(digest(decryptSectorsInPlace(keys, copy, first))).toBe(want);
        expect(digest(copy)).toBe(want);
      }
    }
  });

  it('decryptSectors leaves its input alone; decryptSectorsInto writes into a given buffer', () => {
    for (const [method, length] of [
      [METHOD.XTS_AES_128, 32],
      [METHOD.AES_128_CBC, 16],
      [METHOD.AES_256_CBC_ELEPHANT, 64],
    ] as const) {
      const keys = { method, fvek: randomBytes(length), sectorSize: 512 };
      const data = randomBytes(512 * 700);
      const before = digest(data);
      const plain = decryptSectors(keys, data, 512 * 9);
      expect(digest(data)).toBe(before);
      const dst = new Uint8Array(data.length + 3).subarray(3); // unaligned output
      expect(digest(decryptSectorsInto(keys, data, dst, 512 * 9))).toBe(digest(plain));
    }
  });
});

describe('decryption pool', () => {
  it('decrypts on worker threads from TypeScript sources, like the calling thread', async () => {
    const pool = await createDecryptPool({ workers: 2 });
    try {
      expect(pool.fallbackReason).toBeUndefined();
      expect(pool.mode).toBe('workers');
      expect(pool.size).toBe(2);
      const keys = { method: METHOD.XTS_AES_256, fvek: randomBytes(64), sectorSize: 4096 };
      const data = randomBytes(4096 * 100);
      const want = digest(decryptSectors(keys, data, 4096 * 5));
      const jobs = [0, 1, 2, 3].map(() => pool.decrypt(keys, Uint8Array.from(data), 4096 * 5));
      for (const got of await Promise.all(jobs)) expect(digest(got)).toBe(want);
      // A view into a larger buffer is copied, not detached.
      const big = Buffer.concat([Buffer.alloc(16), data]);
      expect(digest(await pool.decrypt(keys, big.subarray(16), 4096 * 5))).toBe(want);
      expect(big.length).toBe(data.length + 16);
      // Errors come back as BdeErrors.
      await expect(pool.decrypt(keys, new Uint8Array(100), 0)).rejects.toMatchObject({
        code: 'ERR_BDE_INVALID_ARGUMENT',
      });
    } finally {
      await pool.close();
    }
  });

  it('falls back to the calling thread when the worker cannot start, and says why', async () => {
    const bad = new URL('./no-such-worker.js', import.meta.url);
    const pool = await createDecryptPool({ workers: 2, workerUrl: bad });
    expect(pool.mode).toBe('in-thread');
    expect(pool.size).toBe(0);
    expect(pool.fallbackReason).toMatch(/no-such-worker|Cannot find/);
    const keys = { method: METHOD.AES_128_CBC, fvek: randomBytes(16), sectorSize: 512 };
    const data = randomBytes(512 * 8);
    expect(hex(await pool.decrypt(keys, Uint8Array.from(data), 0))).toBe(hex(decryptSectors(keys, data, 0)));
    await pool.close();
  });
});

describe.skipIf(!fx)('decryptVolumeStream on real images', () => {
  if (!fx) console.warn(skipMessage);
  afterAll(closeAll);
  const names = ['aes-xts-128', 'aes-xts-128-4k', 'aes-cbc-128', 'aes-cbc-elephant-256', 'togo-aes-xts-128'];
  for (const name of names) {
    it(`${name}: workers, in-thread and plaintextChunks give the reference SHA-256`, async () => {
      const { image, volume } = await openImage(name);
      const unlocked = await unlock(volume, { kind: 'recovery-password', recoveryPassword: image.rp! });
      for (const workers of [2, 0, undefined]) {
        const hash = createHash('sha256');
        // An odd chunk size exercises unaligned reads and the general (piece by piece) path;
        // `undefined` is the default choice (in-thread for a 100 MiB image).
        for await (const chunk of decryptVolumeStream(unlocked, {
          workers,
          chunkSize: 3 * 1024 * 1024 + 512,
        }))
          hash.update(chunk);
        expect(hash.digest('hex')).toBe(image.sha256);
      }
      const pool = await createDecryptPool({ workers: 2 });
      try {
        expect(pool.mode).toBe('workers');
        const hash = createHash('sha256');
        for await (const chunk of decryptVolumeStream(unlocked, { pool })) hash.update(chunk);
        expect(hash.digest('hex')).toBe(image.sha256);
        // A sub-range equals the same bytes from readPlaintext.
        const parts: Uint8Array[] = [];
        for await (const c of decryptVolumeStream(unlocked, { pool, start: 1000, end: 2_000_000 }))
          parts.push(c);
        expect(digest(Buffer.concat(parts))).toBe(digest(await unlocked.readPlaintext(1000, 1_999_000)));
      } finally {
        await pool.close();
      }
      expect(await plaintextSha256(unlocked)).toBe(image.sha256);
    }, 120_000);
  }

  it('a consumer may stop early (the stream then drains and closes its own pool); bad ranges are refused', async () => {
    const { image, volume } = await openImage('aes-cbc-elephant-128');
    const unlocked = await unlock(volume, { kind: 'recovery-password', recoveryPassword: image.rp! });
    let seen = 0;
    for await (const chunk of decryptVolumeStream(unlocked, { workers: 2, chunkSize: 1024 * 1024 })) {
      expect(digest(chunk)).toBe(digest(await unlocked.readPlaintext(seen, chunk.length)));
      seen += chunk.length;
      if (seen >= 3 * 1024 * 1024) break;
    }
    expect(seen).toBe(3 * 1024 * 1024);
    await expect(decryptVolumeStream(unlocked, { start: 5, end: 4 }).next()).rejects.toMatchObject({
      code: 'ERR_BDE_INVALID_ARGUMENT',
    });
  }, 60_000);

  it('the built dist/ starts its own .js worker (compiled to a temporary folder)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'bde-dist-'));
    try {
      execFileSync(
        process.execPath,
        [
          join(root, 'node_modules/typescript/bin/tsc'),
          '-p',
          join(root, 'packages/bde/tsconfig.json'),
          '--outDir',
          out,
          '--tsBuildInfoFile',
          join(out, '.tsbuildinfo'),
          '--declaration',
          'false',
          '--declarationMap',
          'false',
          '--composite',
          'false',
        ],
        { stdio: 'pipe' },
      );
      const image = fx!.image('aes-xts-128');
      const script = join(out, 'check.mjs');
      writeFileSync(
        script,
        `import { createHash } from 'node:crypto';
import * as bde from ${JSON.stringify(pathToFileURL(join(out, 'index.js')).href)};
const source = await bde.openFileSource(${JSON.stringify(image.path)});
const unlocked = await bde.unlock(await bde.openVolume(source), { kind: 'recovery-password', recoveryPassword: ${JSON.stringify(image.rp)} });
const pool = await bde.createDecryptPool({ workers: 2 });
const hash = createHash('sha256');
for await (const c of bde.decryptVolumeStream(unlocked, { pool })) hash.update(c);
console.log(JSON.stringify({ mode: pool.mode, reason: pool.fallbackReason ?? null, sha256: hash.digest('hex') }));
await pool.close();
await source.close();
`,
      );
      const result = JSON.parse(execFileSync(process.execPath, [script], { encoding: 'utf8' })) as unknown;
      expect(result).toEqual({ mode: 'workers', reason: null, sha256: image.sha256 });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});
