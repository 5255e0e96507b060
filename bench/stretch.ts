/**
 * Benchmark: bdevault's key stretch and recovery-password unlock against cryptsetup, dislocker and
 * libbde on a real BitLocker image (see bench/README.md). Run: `npx tsx bench/stretch.ts [--runs N]`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, hash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { keyStretcher, stretchKeyIterationsJs } from '../packages/bde/src/crypto/stretch-key.js';
import { openFileSource, openVolume, stretchKey, unlock } from '../packages/bde/src/index.js';

const IMAGE = 'bitlk-aes-xts-128';
const here = fileURLToPath(new URL('.', import.meta.url));
const script = fileURLToPath(import.meta.url);

// §3.5's user-password vector: a real (initial hash, salt) pair, so the stretch does real work.
const INITIAL = Buffer.from('0d6cbf9e5d75af220d7ac3e9f35d05f56952608dd1dacb31774452c489eadc51', 'hex');
const SALT = Buffer.from('8d7637cc5d885d5ff4f748dbc8440d2e', 'hex');
const STRETCHED = '37554410c6e0df5b4fe096259f4a21b847338d3e8d8d8d8c30012d1447cca957';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const ms = (x: number): string => `${x.toFixed(0)} ms`;

/** Wall time of `f`, in ms. */
function time(f: () => void): number {
  const t = performance.now();
  f();
  return performance.now() - t;
}
async function timeAsync(f: () => Promise<void>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

/** The specification read literally, on createHash (what stretch-key.ts replaced). */
function referenceCreateHash(): Buffer {
  const state = Buffer.alloc(88);
  state.set(INITIAL, 32);
  state.set(SALT, 64);
  for (let i = 0; i < 0x100000; i++) {
    state.writeUInt32LE(i, 80);
    createHash('sha256').update(state).digest().copy(state, 0);
  }
  return state.subarray(0, 32);
}
/** The same on the one-shot `crypto.hash` (Node >= 20.12). */
function referenceOneShot(): Buffer {
  const state = Buffer.alloc(88);
  state.set(INITIAL, 32);
  state.set(SALT, 64);
  for (let i = 0; i < 0x100000; i++) {
    state.writeUInt32LE(i, 80);
    state.set(hash('sha256', state, 'buffer'), 0);
  }
  return state.subarray(0, 32);
}

async function unlockWithRecoveryPassword(path: string, recoveryPassword: string): Promise<Uint8Array> {
  const source = await openFileSource(path);
  try {
    const volume = await openVolume(source);
    const unlocked = await unlock(volume, { kind: 'recovery-password', recoveryPassword });
    return unlocked.fvek;
  } finally {
    await source.close();
  }
}

// Child mode: one measurement in a fresh process (a CLI's situation: nothing optimised yet).
if (process.argv[2] === '--child') {
  const [, , , what, path, rp] = process.argv;
  let t: number;
  if (what === 'stretch') t = time(() => void stretchKey(INITIAL, SALT));
  else if (what === 'stretch-js') t = time(() => void stretchKeyIterationsJs(INITIAL, SALT, 0x100000));
  else t = await timeAsync(async () => void (await unlockWithRecoveryPassword(path!, rp!)));
  console.log(t.toFixed(2));
  process.exit(0);
}

function child(...args: string[]): number {
  const out = execFileSync(process.execPath, [...process.execArgv, script, '--child', ...args], {
    encoding: 'utf8',
  });
  return Number(out.trim());
}

/** Wall time of one external command (spawn included, ~1 ms); throws if it fails. */
function run(cmd: string, args: string[], input?: string): { ms: number; stdout: string } {
  const t = performance.now();
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  const elapsed = performance.now() - t;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { ms: elapsed, stdout: r.stdout };
}
const have = (cmd: string): boolean => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

function parseConf(text: string): Map<string, Record<string, string>> {
  const sections = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    const head = /^\[(.+)\]$/.exec(line.trim());
    if (head) sections.set(head[1]!, (current = {}));
    else if (current && line.includes('=')) {
      const at = line.indexOf('=');
      current[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
  }
  return sections;
}

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 10;
const archive = resolve(
  process.env.BDEVAULT_BITLK_ARCHIVE ?? join(here, '../../shared/fixtures/bitlk/bitlk-images.tar.xz'),
);

const rows: [string, string, string][] = [];
const row = (what: string, result: string, note = ''): void => {
  rows.push([what, result, note]);
  console.error(`${what}: ${result} ${note}`);
};
const summary = (xs: number[]): string =>
  `median ${ms(median(xs))} (min ${ms(Math.min(...xs))}, n=${xs.length})`;

// Other work on the machine skews every row; record how busy it was.
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
const loadBefore = load();

// 1. The stretch alone, in this process: first call (cold JIT) apart from the warm ones. stretchKey
// runs on WebAssembly where the engine has it; the JavaScript fallback is timed beside it.
const IMPL = keyStretcher().kind;
const stretchRows = (label: string, stretch: () => Uint8Array, childMode: string): void => {
  let first = 0;
  const warm: number[] = [];
  for (let r = 0; r <= RUNS; r++) {
    let got = '';
    const t = time(() => void (got = Buffer.from(stretch()).toString('hex')));
    if (got !== STRETCHED) throw new Error(`${label} gave ${got}`);
    if (r === 0) first = t;
    else warm.push(t);
  }
  row(`${label}, warm (in-process)`, summary(warm), 'one derivation');
  row(`${label}, first call in-process`, ms(first), 'includes compiling the loop');
  const cold = Array.from({ length: RUNS }, () => child(childMode));
  row(`${label}, fresh process`, summary(cold), 'timed inside the process; excludes Node start-up');
};
{
  stretchRows(`bdevault stretchKey (${IMPL})`, () => stretchKey(INITIAL, SALT), 'stretch');
  if (IMPL !== 'js') {
    stretchRows(
      'bdevault JavaScript fallback (stretchKeyIterationsJs)',
      () => stretchKeyIterationsJs(INITIAL, SALT, 0x100000),
      'stretch-js',
    );
  }
  const refRuns = Math.min(RUNS, 3);
  row(
    'reference: createHash loop',
    summary(Array.from({ length: refRuns }, () => time(() => void referenceCreateHash()))),
  );
  row(
    'reference: crypto.hash one-shot loop',
    summary(Array.from({ length: refRuns }, () => time(() => void referenceOneShot()))),
  );
}

// 2. Whole unlocks on the real image.
if (!existsSync(archive)) {
  row('peers and end-to-end', 'skipped', `no archive at ${archive}`);
} else {
  const tmp = mkdtempSync(join(tmpdir(), 'bdevault-bench-'));
  try {
    execFileSync('tar', ['-xJf', archive, '-C', tmp]);
    const dir = join(tmp, 'bitlk-images');
    const conf = parseConf(readFileSync(join(dir, 'images.conf'), 'utf8')).get(IMAGE);
    if (!conf?.RP || !conf.PW) throw new Error(`${IMAGE} has no RP/PW in images.conf`);
    const img = join(dir, `${IMAGE}.img`);
    const rp = conf.RP;

    let fvek = '';
    const e2e: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      e2e.push(
        await timeAsync(async () => {
          fvek = Buffer.from(await unlockWithRecoveryPassword(img, rp)).toString('hex');
        }),
      );
    }
    row(
      'bdevault unlock with recovery password, warm (in-process)',
      summary(e2e),
      'open + unlock; 1 stretch',
    );
    const e2eCold = Array.from({ length: RUNS }, () => child('unlock', img, rp));
    row(
      'bdevault unlock with recovery password, fresh process',
      summary(e2eCold),
      'timed inside the process',
    );

    // The command a user runs, timed like the peers: the whole process, Node's start-up included.
    const cli = join(here, '../packages/cli/dist/main.js');
    if (existsSync(cli)) {
      const unlockCli = (flag: string, secret: string) =>
        run(process.execPath, [cli, 'volume', 'unlock', img, flag, '-'], secret).ms;
      // Start-up alone: bare Node, and the CLI loading what the volume commands need.
      row(
        'node -e 0',
        summary(Array.from({ length: RUNS }, () => run(process.execPath, ['-e', '0']).ms)),
        'bare Node start-up',
      );
      row(
        'bdevault volume --help (CLI process)',
        summary(Array.from({ length: RUNS }, () => run(process.execPath, [cli, 'volume', '--help']).ms)),
        'CLI start-up for the volume commands, no unlock',
      );
      row(
        'bdevault volume unlock --recovery-password (CLI process)',
        summary(Array.from({ length: RUNS }, () => unlockCli('--recovery-password', rp))),
        'wall time of the process, as for the peers; 1 stretch',
      );
      row(
        'bdevault volume unlock --password (CLI process)',
        summary(Array.from({ length: RUNS }, () => unlockCli('--password', conf.PW!))),
        'wall time of the process; 1 stretch',
      );
    } else row('bdevault volume unlock (CLI process)', 'skipped', 'not built: npm run build');

    if (have('cryptsetup')) {
      // The passphrase goes on stdin (--key-file -), so no trailing newline and no prompt.
      const dump = (secret: string) =>
        run('cryptsetup', ['bitlkDump', '--dump-volume-key', '--key-file', '-', img], secret);
      const mk = dump(rp)
        .stdout.split('MK dump:')[1]!
        .replace(/[^0-9a-f]/g, '');
      row(
        'cryptsetup bitlkDump --dump-volume-key, recovery password',
        summary(Array.from({ length: RUNS }, () => dump(rp).ms)),
        'tries the password protector first: 2 stretches',
      );
      row(
        'cryptsetup bitlkDump --dump-volume-key, user password',
        summary(Array.from({ length: RUNS }, () => dump(conf.PW!).ms)),
        '1 stretch: its per-derivation cost',
      );
      row('key check', mk === fvek ? 'bdevault FVEK = cryptsetup volume key' : `MISMATCH ${mk} / ${fvek}`);
    } else row('cryptsetup', 'not installed');

    if (have('dislocker') && existsSync('/dev/fuse')) {
      // dislocker returns once the FUSE mount is up, i.e. after the unlock and before decrypting.
      const mnt = join(tmp, 'mnt');
      mkdirSync(mnt);
      const mounts = Array.from({ length: RUNS }, () => {
        const { ms: t } = run('dislocker', ['-r', '-q', '-V', img, `-p${rp}`, '--', mnt]);
        if (!existsSync(join(mnt, 'dislocker-file'))) throw new Error('dislocker mounted nothing');
        run('umount', [mnt]);
        return t;
      });
      row('dislocker -r -V IMG -pRP -- MNT (FUSE mount)', summary(mounts), 'unlock + mount, no decryption');
    } else row('dislocker', 'not installed or no /dev/fuse');

    if (have('bdeinfo')) {
      row(
        'bdeinfo -r RP IMG (libbde)',
        summary(Array.from({ length: RUNS }, () => run('bdeinfo', ['-r', rp, img]).ms)),
        'open + unlock + print',
      );
    } else row('bdeinfo', 'not installed');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

console.log(
  `${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}, ${new Date().toISOString()}, ` +
    `load average before: ${loadBefore}, after: ${load()}, runs: ${RUNS}\n`,
);
console.log('| measure | result | note |\n|---|---|---|');
for (const [what, result, note] of rows) console.log(`| ${what} | ${result} | ${note} |`);
