/**
 * Benchmark: whole-volume decryption throughput of bdevault against `dislocker-file` given the FVEK,
 * for XTS-128 (512 and 4096-byte sectors), AES-CBC-128 and Elephant-128 (see bench/README.md).
 * Run: `npx tsx bench/decrypt.ts [--runs N] [--mib M] [--workers W]`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  METHOD,
  createDecryptPool,
  decryptSectorsInPlace,
  decryptVolumeStream,
  defaultWorkerCount,
  fvekFile,
  openFileSource,
  openVolume,
  unlock,
  type DecryptPool,
  type SectorKeys,
} from '../packages/bde/src/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const RUNS = arg('--runs', 5);
/** Size of the in-memory buffer for the sector-throughput rows (the images are only 100-128 MiB). */
const MEM_MIB = arg('--mib', 1024);
const WORKERS = arg('--workers', Math.max(defaultWorkerCount(), 2));

const MODES = [
  { label: 'XTS-AES-128, 512-byte sectors', image: 'bitlk-aes-xts-128', method: METHOD.XTS_AES_128, ss: 512 },
  {
    label: 'XTS-AES-128, 4096-byte sectors',
    image: 'bitlk-aes-xts-128-4k',
    method: METHOD.XTS_AES_128,
    ss: 4096,
  },
  { label: 'AES-CBC-128', image: 'bitlk-aes-cbc-128', method: METHOD.AES_128_CBC, ss: 512 },
  {
    label: 'AES-CBC-128 + Elephant',
    image: 'bitlk-aes-cbc-elephant-128',
    method: METHOD.AES_128_CBC_ELEPHANT,
    ss: 512,
  },
] as const;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const MiB = 1024 * 1024;
const log = (s: string): void => void process.stderr.write(`${s}\n`);

/** Median and best throughput (MiB/s) of `bytes` processed in each of the times (ms). */
function rate(bytes: number, times: number[]): string {
  const mibs = (ms: number): string => (bytes / MiB / (ms / 1000)).toFixed(0);
  return `**${mibs(median(times))}** MiB/s (best ${mibs(Math.min(...times))}; median ${median(times).toFixed(0)} ms, n=${times.length})`;
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

// --- fixtures: unpacked on tmpfs, so both sides read from page cache / RAM and write to RAM ---
const archive =
  process.env.BDEVAULT_BITLK_ARCHIVE ?? resolve(here, '../../shared/fixtures/bitlk/bitlk-images.tar.xz');
if (!existsSync(archive)) {
  log(`bitlk archive not found at ${archive} (set BDEVAULT_BITLK_ARCHIVE)`);
  process.exit(2);
}
const tmpBase = existsSync('/dev/shm') ? '/dev/shm' : undefined;
const work = mkdtempSync(join(tmpBase ?? '/tmp', 'bdevault-decrypt-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
execFileSync('tar', ['-xJf', archive, '-C', work]);
const imageDir = join(work, 'bitlk-images');
const conf = readFileSync(join(imageDir, 'images.conf'), 'utf8');
const expected = (image: string): string => {
  const section = conf.split(`[${image}]`)[1] ?? '';
  return /SHA256SUM=([0-9a-f]{64})/.exec(section)?.[1] ?? '';
};
const out = join(work, 'out');
mkdirSync(out);

const hasDislocker = spawnSync('dislocker-file', ['-h'], { stdio: 'ignore' }).error === undefined;
/** The Debian package version (the binary's banner says v0.7.2 for package 0.7.3). */
const dislockerVersion = hasDislocker
  ? spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'dislocker'], { encoding: 'utf8' }).stdout || '?'
  : 'not installed';

/** FVEK and method of an image (unlocked with the password; the key is then given as a raw FVEK). */
async function fvekOf(image: string): Promise<{ fvek: Uint8Array; method: number }> {
  const source = await openFileSource(join(imageDir, `${image}.img`));
  try {
    const unlocked = await unlock(await openVolume(source), { kind: 'password', password: 'anaconda' });
    return { fvek: unlocked.fvek, method: unlocked.method };
  } finally {
    await source.close();
  }
}

/**
 * bdevault end to end, as dislocker-file does it: open the image, read the metadata, check the FVEK,
 * decrypt the whole §3.9 view and write it to a new file on tmpfs.
 */
async function bdevaultToFile(
  image: string,
  fvek: Uint8Array,
  target: string,
  pool: DecryptPool,
): Promise<void> {
  const source = await openFileSource(join(imageDir, `${image}.img`));
  const output = await open(target, 'w');
  try {
    const unlocked = await unlock(await openVolume(source), { kind: 'fvek', fvek });
    for await (const chunk of decryptVolumeStream(unlocked, { pool })) await output.write(chunk);
  } finally {
    await output.close();
    await source.close();
  }
}

async function main(): Promise<void> {
  const startLoad = loadavg()[0]!.toFixed(2);
  log(`load average at start: ${startLoad}; runs ${RUNS}, in-memory ${MEM_MIB} MiB, workers ${WORKERS}`);
  const inThread = await createDecryptPool({ workers: 0 });
  const workers = await createDecryptPool({ workers: WORKERS });
  if (workers.mode !== 'workers') log(`worker pool fell back to in-thread: ${workers.fallbackReason}`);
  const rows: string[] = [];
  const row = (...cells: string[]): void => void rows.push(`| ${cells.join(' | ')} |`);

  for (const mode of MODES) {
    const { fvek, method } = await fvekOf(mode.image);
    const imagePath = join(imageDir, `${mode.image}.img`);
    const size = statSync(imagePath).size;
    const fvekPath = join(work, `${mode.image}.fvek`);
    writeFileSync(fvekPath, fvekFile(method, fvek), { mode: 0o600 });
    const want = expected(mode.image);

    // dislocker-file refuses to overwrite its output, so every run writes a new file (then deleted).
    if (hasDislocker) {
      const times: number[] = [];
      for (let r = 0; r <= RUNS; r++) {
        const target = join(out, `dislocker-${r}.img`);
        const t = performance.now();
        const p = spawnSync('dislocker-file', ['-q', '-k', fvekPath, '-V', imagePath, '--', target], {
          stdio: 'ignore',
        });
        const dt = performance.now() - t;
        if (p.status !== 0) throw new Error(`dislocker-file failed on ${mode.image} (status ${p.status})`);
        if (r === 0) {
          if (sha256File(target) !== want)
            throw new Error(`dislocker output of ${mode.image} has the wrong SHA-256`);
        } else times.push(dt); // run 0 warms the page cache and checks the output
        rmSync(target);
      }
      log(`${mode.label}: dislocker ${rate(size, times)}`);
      row(mode.label, `dislocker-file -k FVEK (${size / MiB} MiB image → tmpfs file)`, rate(size, times));
    }

    for (const [name, pool] of [
      ['in-thread', inThread],
      [`${workers.size} workers`, workers],
    ] as const) {
      const times: number[] = [];
      for (let r = 0; r <= RUNS; r++) {
        const target = join(out, `bdevault-${r}.img`);
        const t = performance.now();
        await bdevaultToFile(mode.image, fvek, target, pool);
        const dt = performance.now() - t;
        if (r === 0) {
          if (sha256File(target) !== want)
            throw new Error(`bdevault output of ${mode.image} has the wrong SHA-256`);
        } else times.push(dt);
        rmSync(target);
      }
      log(`${mode.label}: bdevault ${name} ${rate(size, times)}`);
      row(mode.label, `bdevault file → tmpfs file, ${name}`, rate(size, times));
    }

    // Sector throughput on a big buffer (no I/O): what the images are too small and sparse to show.
    const keys: SectorKeys = { method, fvek, sectorSize: mode.ss };
    const bytes = MEM_MIB * MiB;
    const chunk = 4 * MiB;
    const data = randomBytes(chunk);
    for (const [name, pool] of [
      ['in-thread', inThread],
      [`${workers.size} workers`, workers],
    ] as const) {
      const times: number[] = [];
      for (let r = 0; r <= RUNS; r++) {
        const t = performance.now();
        if (pool.mode === 'in-thread') {
          // Every batch decrypted in place in a fresh copy, as the reader does with what it read.
          for (let at = 0; at < bytes; at += chunk) decryptSectorsInPlace(keys, Uint8Array.from(data), at);
        } else {
          const inFlight: Promise<Uint8Array>[] = [];
          for (let at = 0; at < bytes; at += chunk) {
            inFlight.push(pool.decrypt(keys, Uint8Array.from(data), at));
            if (inFlight.length >= 2 * pool.size) await inFlight.shift();
          }
          await Promise.all(inFlight);
        }
        const dt = performance.now() - t;
        if (r > 0) times.push(dt);
      }
      log(`${mode.label}: in-memory ${name} ${rate(bytes, times)}`);
      row(
        mode.label,
        `bdevault sectors in memory (${MEM_MIB} MiB in 4 MiB batches), ${name}`,
        rate(bytes, times),
      );
    }
  }
  await inThread.close();
  await workers.close();
  const endLoad = loadavg()[0]!.toFixed(2);

  const cpu = cpus()[0];
  console.log(`- Date: ${new Date().toISOString()}; load average ${startLoad} at start, ${endLoad} at end`);
  console.log(
    `- Machine: nproc ${cpus().length}, CPU \`${cpu?.model.trim() ?? '?'}\`, Node ${process.version}, dislocker ${dislockerVersion}`,
  );
  console.log(`- Command: \`npx tsx bench/decrypt.ts --runs ${RUNS} --mib ${MEM_MIB} --workers ${WORKERS}\``);
  console.log('');
  console.log('| mode | what | throughput |');
  console.log('|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
