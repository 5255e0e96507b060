/**
 * Benchmark: the vault at fleet size. Escrow ingest through the device HTTP API (enrollment token →
 * device registration → escrow of volumes and keys), then lookups (key-id prefix, full key id,
 * device name) and audited disclosures through the HTTP API with an API token. See bench/README.md.
 *
 *   npx tsx bench/vault.ts [--devices 100000] [--keys-per-device 3] [--database-url URL] ...
 *
 * The server runs in a child process (`startServer` on 127.0.0.1:0, temporary data dir), so the
 * load generator and the server do not share one JavaScript thread. Progress goes to stderr, a
 * Markdown report to stdout. Every secret (KEK, tokens, recovery passwords) is generated at run time
 * and the temporary data dir (database included) is deleted at the end unless --keep is given.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import http from 'node:http';
import { cpus, loadavg, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompiledQuery, sql } from 'kysely';
import { guidFromBytes, recoveryPasswordFromKey } from '../packages/bde/src/index.js';
import { configInputFromEnv, loadConfig, type Config } from '../packages/server/src/lib/config.js';
import { openVault, startServer, type Vault } from '../packages/server/src/vault.js';
import { intOption } from './lib/options.js';
import { runPool } from './lib/run-pool.js';
import { postgresCpuSeconds } from './lib/postgres-cpu.js';

const script = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------
interface Options {
  devices: number;
  keysPerDevice: number;
  databaseUrl: string | undefined;
  ingest: 'http' | 'service' | 'bulk';
  httpSample: number;
  concurrency: number;
  lookups: number;
  lookupConcurrency: number;
  disclosures: number;
  logLevel: Config['logLevel'];
  keep: boolean;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    devices: 100_000,
    keysPerDevice: 3,
    databaseUrl: undefined,
    ingest: 'http',
    httpSample: 2_000,
    concurrency: 16,
    lookups: 2_000,
    lookupConcurrency: 16,
    disclosures: 400,
    logLevel: 'warn',
    keep: false,
  };
  const int = intOption;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--devices':
        o.devices = int(flag, value(), 1);
        break;
      case '--keys-per-device':
        o.keysPerDevice = int(flag, value(), 1);
        break;
      case '--database-url':
        o.databaseUrl = value();
        break;
      case '--ingest': {
        const v = value();
        if (v !== 'http' && v !== 'service' && v !== 'bulk')
          throw new Error('--ingest is http, service or bulk');
        o.ingest = v;
        break;
      }
      case '--http-sample':
        o.httpSample = int(flag, value(), 0);
        break;
      case '--concurrency':
        o.concurrency = int(flag, value(), 1);
        break;
      case '--lookups':
        o.lookups = int(flag, value(), 1);
        break;
      case '--lookup-concurrency':
        o.lookupConcurrency = int(flag, value(), 1);
        break;
      case '--disclosures':
        o.disclosures = int(flag, value(), 0);
        break;
      case '--log-level':
        o.logLevel = value() as Config['logLevel'];
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--help':
        console.log(
          'npx tsx bench/vault.ts [--devices N] [--keys-per-device K] [--database-url URL]\n' +
            '  [--ingest http|service|bulk] [--http-sample N] [--concurrency C]\n' +
            '  [--lookups N] [--lookup-concurrency C] [--disclosures N] [--log-level L] [--keep]',
        );
        process.exit(0);
        break;
      default:
        throw new Error(`unknown option ${flag} (try --help)`);
    }
  }
  if (o.ingest === 'http') o.httpSample = 0;
  return o;
}

// ---------------------------------------------------------------------------------------------
// Fleet data, derived from a per-run random seed: nothing to store, any device recomputable.
// ---------------------------------------------------------------------------------------------
const seed = randomBytes(32);
const derive = (label: string, i: number, j = 0): Buffer =>
  createHash('sha256').update(seed).update(`${label}:${i}:${j}`).digest();

const keyIdOf = (device: number, key: number): string =>
  guidFromBytes(derive('key', device, key).subarray(0, 16));
const passwordOf = (device: number, key: number): string =>
  recoveryPasswordFromKey(derive('password', device, key).subarray(0, 16));
const volumeGuidOf = (device: number, volume: number): string =>
  guidFromBytes(derive('volume', device, volume).subarray(0, 16));
const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const nameFrom = (bytes: Buffer): string =>
  `DESKTOP-${[...bytes.subarray(0, 7)].map((b) => ALNUM[b % 36]).join('')}`;
const deviceNameOf = (device: number): string => nameFrom(derive('name', device));

type EscrowBody = {
  device?: { os: string };
  volumes: {
    volumeGuid: string;
    volumeType: 'os' | 'fixed';
    driveLetter: string;
    encryptionMethod: string;
    protectionStatus: string;
    recoveryKeys: { recoveryKeyId: string; recoveryPassword: string }[];
  }[];
};

const volume = (device: number, v: 0 | 1, key: number): EscrowBody['volumes'][number] => ({
  volumeGuid: volumeGuidOf(device, v),
  volumeType: v === 0 ? 'os' : 'fixed',
  driveLetter: v === 0 ? 'C:' : 'D:',
  encryptionMethod: 'XtsAes256',
  protectionStatus: 'On',
  recoveryKeys: [{ recoveryKeyId: keyIdOf(device, key), recoveryPassword: passwordOf(device, key) }],
});

/**
 * What one device sends: key 0 for C: (OS) and key 1 for D: (fixed data) in its first escrow
 * request; keys 2.. are later rotations of the C: key, one escrow request each (the previous key of
 * the volume becomes superseded history), as an agent does after a disclosure or rotation.
 */
function escrowRequestsOf(device: number, keysPerDevice: number): EscrowBody[] {
  const first: EscrowBody = {
    device: { os: 'Windows 11 Enterprise' },
    volumes: keysPerDevice >= 2 ? [volume(device, 0, 0), volume(device, 1, 1)] : [volume(device, 0, 0)],
  };
  const rest: EscrowBody[] = [];
  for (let k = 2; k < keysPerDevice; k++) rest.push({ volumes: [volume(device, 0, k)] });
  return [first, ...rest];
}

const deviceFactsOf = (device: number) => {
  const name = deviceNameOf(device);
  return {
    name,
    dnsName: `${name.toLowerCase()}.corp.example`,
    os: 'Windows 11 Enterprise',
    serialNumber: derive('serial', device).toString('hex').slice(0, 12).toUpperCase(),
  };
};

// ---------------------------------------------------------------------------------------------
// HTTP client (node:http keep-alive agents) and loopback source addresses
// ---------------------------------------------------------------------------------------------

/**
 * The enrollment and disclosure routes are rate-limited per client address (30/min). A fleet comes
 * from many addresses, so each simulated device (and each batch of 25 disclosures) connects from its
 * own 127.x.y.z source address: Linux routes all of 127.0.0.0/8 to the loopback interface.
 */
function loopbackAddress(block: number, n: number): string {
  // 254 hosts per /24 (no .0 or .255), 65,024 per block.
  const host = (n % 254) + 1;
  const mid = Math.floor(n / 254);
  return `127.${block + Math.floor(mid / 256)}.${mid % 256}.${host}`;
}

interface HttpResult {
  status: number;
  body: unknown;
  ms: number;
}

function request(
  base: URL,
  agent: http.Agent,
  method: 'GET' | 'POST',
  path: string,
  token: string,
  body?: unknown,
  localAddress?: string,
): Promise<HttpResult> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: base.hostname,
        port: base.port,
        method,
        path,
        agent,
        ...(localAddress === undefined ? {} : { localAddress }),
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload === undefined
            ? {}
            : { 'content-type': 'application/json', 'content-length': payload.length }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const ms = performance.now() - started;
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text for the error message
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, ms });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function expectStatus(r: HttpResult, status: number, what: string): void {
  if (r.status !== status) {
    throw new Error(
      `${what}: HTTP ${r.status} (expected ${status}): ${JSON.stringify(r.body).slice(0, 400)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Measurement helpers
// ---------------------------------------------------------------------------------------------
const percentile = (sorted: number[], p: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

interface LatencySummary {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}
function summarize(latencies: number[]): LatencySummary {
  const s = Float64Array.from(latencies).sort();
  const arr = Array.from(s);
  return {
    n: arr.length,
    p50: percentile(arr, 50),
    p99: percentile(arr, 99),
    max: arr.length ? arr[arr.length - 1]! : NaN,
    mean: arr.reduce((a, b) => a + b, 0) / Math.max(1, arr.length),
  };
}
const fmtMs = (x: number): string => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const fmtRate = (x: number): string => (x >= 100 ? x.toFixed(0) : x.toFixed(1));

/** CPU seconds (user + system) of a process, from /proc (Linux); undefined elsewhere. */
function cpuSecondsOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return undefined;
  }
}
const ownCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** Load average sampled every 5 s while the benchmark runs. */
const loadSamples: number[] = [];

const log = (msg: string): void =>
  void process.stderr.write(`[vault-bench ${new Date().toISOString()}] ${msg}\n`);

// ---------------------------------------------------------------------------------------------
// Server child management
// ---------------------------------------------------------------------------------------------
interface ServerChild {
  url: URL;
  child: ChildProcess;
  stop(): Promise<void>;
}

async function startServerChild(env: NodeJS.ProcessEnv): Promise<ServerChild> {
  // The server's own output (logs) goes to stderr; its URL comes over the IPC channel, whose closing
  // also stops the server if this process dies.
  // BENCH_SERVER_NODE_ARGS adds Node flags to the server only, e.g. `--cpu-prof --cpu-prof-dir=DIR`
  // to profile it (Node refuses --cpu-prof in NODE_OPTIONS).
  const extra = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...extra, ...process.execArgv, script, '--serve'], {
    env,
    stdio: ['ignore', process.stderr, 'inherit', 'ipc'],
  });
  const url = await new Promise<URL>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server child exited with ${code} before listening`)));
    child.once('message', (m) => resolve(new URL((m as { url: string }).url)));
  });
  return {
    url,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------------
interface PhaseResult {
  name: string;
  wallMs: number;
  latency: LatencySummary;
  extra?: string;
  serverCpu?: number | undefined;
  clientCpu?: number;
  /** CPU seconds of the local PostgreSQL processes during the phase (PostgreSQL runs only). */
  databaseCpu?: number | undefined;
}

interface IngestResult {
  label: string;
  devices: number;
  keys: number;
  wallMs: number;
  /** devices/s over the last 10% of the run: how the rate holds up as the tables grow. */
  tailDevicesPerSecond: number;
  enroll?: LatencySummary;
  escrow?: LatencySummary;
  serverCpu?: number | undefined;
  clientCpu: number;
}

/** Ingest devices [from, to) through HTTP: each device on its own keep-alive connection and address. */
async function ingestHttp(
  server: ServerChild,
  enrollmentToken: string,
  from: number,
  to: number,
  o: Options,
  label: string,
): Promise<IngestResult> {
  const enrollMs: number[] = [];
  const escrowMs: number[] = [];
  const doneAt: number[] = [];
  const serverCpu0 = cpuSecondsOf(server.child.pid);
  const clientCpu0 = ownCpuSeconds();
  const count = to - from;
  let lastReport = performance.now();
  const started = performance.now();
  const wallMs = await runPool(count, o.concurrency, async (n) => {
    const device = from + n;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const localAddress = loopbackAddress(1, device);
    try {
      const enrolled = await request(
        server.url,
        agent,
        'POST',
        '/api/escrow/enroll',
        enrollmentToken,
        { device: deviceFactsOf(device) },
        localAddress,
      );
      expectStatus(enrolled, 201, `enroll device ${device}`);
      enrollMs.push(enrolled.ms);
      const { deviceCredential } = enrolled.body as { deviceCredential: string };
      for (const body of escrowRequestsOf(device, o.keysPerDevice)) {
        const r = await request(
          server.url,
          agent,
          'POST',
          '/api/escrow/recovery-keys',
          deviceCredential,
          body,
          localAddress,
        );
        expectStatus(r, 200, `escrow device ${device}`);
        escrowMs.push(r.ms);
      }
    } finally {
      agent.destroy();
    }
    doneAt.push(performance.now() - started);
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      log(
        `${label}: ${doneAt.length}/${count} devices, ${fmtRate((doneAt.length * 1000) / (performance.now() - started))} devices/s, load ${loadavg()[0]!.toFixed(2)}`,
      );
    }
  });
  return {
    label,
    devices: count,
    keys: count * o.keysPerDevice,
    wallMs,
    tailDevicesPerSecond: tailRate(doneAt),
    enroll: summarize(enrollMs),
    escrow: summarize(escrowMs),
    serverCpu: diff(cpuSecondsOf(server.child.pid), serverCpu0),
    clientCpu: ownCpuSeconds() - clientCpu0,
  };
}

/** devices/s over the last 10% of completions. */
function tailRate(doneAt: number[]): number {
  const sorted = [...doneAt].sort((a, b) => a - b);
  const k = Math.max(1, Math.floor(sorted.length / 10));
  if (sorted.length <= k) return (sorted.length * 1000) / (sorted[sorted.length - 1] ?? 1);
  const span = sorted[sorted.length - 1]! - sorted[sorted.length - 1 - k]!;
  return (k * 1000) / span;
}
const diff = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined ? undefined : a - b;

/**
 * Fast path: the same escrow service the HTTP routes call (enrollment-token check, device record,
 * device credential, password validation, envelope encryption, audit rows, supersede), in this
 * process, without HTTP, Zod request parsing or authentication.
 */
async function ingestService(
  vault: Vault,
  enrollmentToken: string,
  from: number,
  to: number,
  o: Options,
): Promise<IngestResult> {
  const escrow = vault.services.escrow;
  const doneAt: number[] = [];
  const clientCpu0 = ownCpuSeconds();
  const count = to - from;
  let lastReport = performance.now();
  const started = performance.now();
  const wallMs = await runPool(count, o.concurrency, async (n) => {
    const device = from + n;
    const { deviceId } = await escrow.enrollDevice(enrollmentToken, deviceFactsOf(device));
    for (const body of escrowRequestsOf(device, o.keysPerDevice)) {
      await escrow.escrowRecoveryKeys({ organizationId: organizationIdOf(vault), deviceId }, body, {
        source: 'agent',
      });
    }
    doneAt.push(performance.now() - started);
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      log(
        `service ingest: ${doneAt.length}/${count} devices, ${fmtRate((doneAt.length * 1000) / (performance.now() - started))} devices/s, load ${loadavg()[0]!.toFixed(2)}`,
      );
    }
  });
  return {
    label: 'in-process escrow service (fast path, no HTTP)',
    devices: count,
    keys: count * o.keysPerDevice,
    wallMs,
    tailDevicesPerSecond: tailRate(doneAt),
    clientCpu: ownCpuSeconds() - clientCpu0,
  };
}
/**
 * Bulk seed for scale (`--ingest bulk`): devices, volumes and recovery keys written straight into
 * the tables in multi-row INSERTs (`INSERT … SELECT FROM unnest(arrays)`, BULK_BATCH devices a
 * statement group), NOT through the escrow service or HTTP. The rows are what the escrow service
 * writes for the same requests (key 0 on C:, key 1 on D:, keys 2.. later rotations of C: with the
 * older ones superseded), and every password is sealed with the server's own envelope and KEK
 * (`vault.deps.envelope`, the KEK file in the data dir the server child then uses), so disclosures
 * decrypt. Not written: audit rows for the seeded escrows and device credentials (no seeded device
 * calls the device API). Two batches are in flight (one sealing in JS while the other inserts).
 */
const BULK_BATCH = 2_000;
async function ingestBulk(vault: Vault, from: number, to: number, o: Options): Promise<IngestResult> {
  const { envelope, ids } = vault.deps;
  const organizationId = organizationIdOf(vault);
  const clientCpu0 = ownCpuSeconds();
  const doneAt: number[] = [];
  const count = to - from;
  const base = Date.parse('2024-01-01T00:00:00Z');
  const iso = (ms: number): string => new Date(ms).toISOString();
  const insertBatch = async (start: number, end: number): Promise<void> => {
    const d = { id: [] as string[], name: [] as string[], nameKey: [] as string[], dns: [] as string[] };
    const dSerial: string[] = [];
    const dAt: string[] = [];
    const v = { id: [] as string[], device: [] as string[], guid: [] as string[], type: [] as string[] };
    const vLetter: string[] = [];
    const vAt: string[] = [];
    const k = { id: [] as string[], device: [] as string[], volume: [] as string[], keyId: [] as string[] };
    const kPrefix: string[] = [];
    const kStatus: string[] = [];
    const kCipher: string[] = [];
    const kWrapped: string[] = [];
    const kKek: string[] = [];
    const kAt: string[] = [];
    const kSuperseded: (string | null)[] = [];
    for (let device = start; device < end; device++) {
      const facts = deviceFactsOf(device);
      const deviceId = ids('device');
      const at = base + device * 1000;
      d.id.push(deviceId);
      d.name.push(facts.name);
      d.nameKey.push(facts.name.toUpperCase());
      d.dns.push(facts.dnsName);
      dSerial.push(facts.serialNumber);
      dAt.push(iso(at));
      const volumeIds: string[] = [];
      for (const [vi, body] of (o.keysPerDevice >= 2 ? [0, 1] : [0]).entries()) {
        const volumeId = ids('volume');
        volumeIds.push(volumeId);
        v.id.push(volumeId);
        v.device.push(deviceId);
        v.guid.push(volumeGuidOf(device, vi));
        v.type.push(body === 0 ? 'os' : 'fixed');
        vLetter.push(body === 0 ? 'C:' : 'D:');
        vAt.push(iso(at));
      }
      for (let key = 0; key < o.keysPerDevice; key++) {
        // Key 1 is D:'s only key; keys 0, 2, 3, … are C:'s, each superseded by the next.
        const onD = key === 1;
        const nextOnC = key === 0 ? 2 : key + 1;
        const superseded = !onD && nextOnC < o.keysPerDevice;
        const createdAt = key <= 1 ? at : at + key * 60_000;
        const id = ids('recoveryKey');
        const keyId = keyIdOf(device, key);
        const sealed = envelope.seal(
          { organizationId, recordId: id, purpose: 'recovery-password' },
          passwordOf(device, key),
        );
        k.id.push(id);
        k.device.push(deviceId);
        k.volume.push(volumeIds[onD ? 1 : 0]!);
        k.keyId.push(keyId);
        kPrefix.push(keyId.slice(0, 8));
        kStatus.push(superseded ? 'superseded' : 'active');
        kCipher.push(sealed.ciphertext);
        kWrapped.push(sealed.wrappedKey);
        kKek.push(sealed.kekId);
        kAt.push(iso(createdAt));
        kSuperseded.push(superseded ? iso(at + nextOnC * 60_000) : null);
      }
    }
    await vault.db.transaction().execute(async (trx) => {
      await sql`insert into devices (id, organization_id, name, name_key, dns_name, os, serial_number,
          first_seen_at, last_seen_at, created_at)
        select u.id, ${organizationId}, u.name, u.name_key, u.dns, 'Windows 11 Enterprise', u.serial, u.at, u.at, u.at
        from unnest(${d.id}::text[], ${d.name}::text[], ${d.nameKey}::text[], ${d.dns}::text[],
          ${dSerial}::text[], ${dAt}::text[]) as u(id, name, name_key, dns, serial, at)`.execute(trx);
      await sql`insert into volumes (id, organization_id, device_id, volume_guid, volume_type, drive_letter,
          encryption_method, protection_status, created_at, updated_at)
        select u.id, ${organizationId}, u.device, u.guid, u.type, u.letter, 'XtsAes256', 'On', u.at, u.at
        from unnest(${v.id}::text[], ${v.device}::text[], ${v.guid}::text[], ${v.type}::text[],
          ${vLetter}::text[], ${vAt}::text[]) as u(id, device, guid, type, letter, at)`.execute(trx);
      await sql`insert into recovery_keys (id, organization_id, device_id, volume_id, key_id, key_id_prefix,
          source, status, password_ciphertext, password_wrapped_key, password_kek_id, created_at, superseded_at)
        select u.id, ${organizationId}, u.device, u.volume, u.key_id, u.prefix, 'agent', u.status, u.cipher,
          u.wrapped, u.kek, u.at, u.superseded
        from unnest(${k.id}::text[], ${k.device}::text[], ${k.volume}::text[], ${k.keyId}::text[],
          ${kPrefix}::text[], ${kStatus}::text[], ${kCipher}::text[], ${kWrapped}::text[], ${kKek}::text[],
          ${kAt}::text[], ${kSuperseded}::text[])
          as u(id, device, volume, key_id, prefix, status, cipher, wrapped, kek, at, superseded)`.execute(
        trx,
      );
    });
  };
  if (vault.config.database.dialect !== 'postgres') throw new Error('--ingest bulk needs PostgreSQL');
  let lastReport = performance.now();
  const started = performance.now();
  let inFlight: Promise<void> | undefined;
  const batchesDone: { at: number; devices: number }[] = [];
  for (let start = from; start < to; start += BULK_BATCH) {
    const end = Math.min(to, start + BULK_BATCH);
    const batch = insertBatch(start, end).then(() => {
      for (let i = start; i < end; i++) doneAt.push(performance.now() - started);
      batchesDone.push({ at: performance.now() - started, devices: end - start });
    });
    if (inFlight) await inFlight;
    inFlight = batch;
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      log(
        `bulk seed: ${doneAt.length}/${count} devices, ${fmtRate((doneAt.length * 1000) / (performance.now() - started))} devices/s, load ${loadavg()[0]!.toFixed(2)}`,
      );
    }
  }
  await inFlight;
  const wallMs = performance.now() - started;
  // What autovacuum does after a load this size (vacuum for the inserts, then statistics), done
  // here at once so that it does not run during the measured phases.
  log('bulk seed: VACUUM (ANALYZE)');
  await sql`vacuum (analyze) devices, volumes, recovery_keys`.execute(vault.db);
  return {
    label: 'bulk seed (multi-row INSERT of the rows the escrow service writes; no HTTP, no audit rows)',
    devices: count,
    keys: count * o.keysPerDevice,
    wallMs,
    // A batch's devices complete together: the tail rate is over the last 10% of batches.
    tailDevicesPerSecond: (() => {
      const k = Math.max(1, Math.floor(batchesDone.length / 10));
      if (batchesDone.length <= k) return (count * 1000) / wallMs;
      const tail = batchesDone.slice(-k);
      const span = tail[tail.length - 1]!.at - batchesDone[batchesDone.length - 1 - k]!.at;
      return (tail.reduce((a, b) => a + b.devices, 0) * 1000) / span;
    })(),
    clientCpu: ownCpuSeconds() - clientCpu0,
  };
}

const orgIds = new WeakMap<Vault, string>();
const organizationIdOf = (vault: Vault): string => orgIds.get(vault)!;

interface LookupKind {
  name: string;
  /** Builds request i's path; `check` validates the response and returns whether it found something. */
  next(): { path: string; check(body: unknown): boolean };
}

async function measureLookups(
  server: ServerChild,
  apiToken: string,
  kind: LookupKind,
  count: number,
  concurrency: number,
): Promise<PhaseResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies: number[] = [];
  let found = 0;
  const serverCpu0 = cpuSecondsOf(server.child.pid);
  const clientCpu0 = ownCpuSeconds();
  try {
    const wallMs = await runPool(count, concurrency, async () => {
      const { path, check } = kind.next();
      const r = await request(server.url, agent, 'GET', path, apiToken);
      expectStatus(r, 200, `${kind.name} ${path}`);
      latencies.push(r.ms);
      if (check(r.body)) found++;
    });
    return {
      name: `${kind.name}, ${concurrency === 1 ? 'sequential' : `${concurrency} concurrent`}`,
      wallMs,
      latency: summarize(latencies),
      extra: `${found}/${count} found`,
      serverCpu: diff(cpuSecondsOf(server.child.pid), serverCpu0),
      clientCpu: ownCpuSeconds() - clientCpu0,
    };
  } finally {
    agent.destroy();
  }
}

/**
 * Disclosure limits (per address, per account, and an alert past 20 an hour per account) are for
 * people; throughput here is many helpdesk accounts at once: each batch of DISCLOSURE_BATCH
 * disclosures uses its own API token and its own address, so no limit or alert is reached.
 */
const DISCLOSURE_BATCH = 20;

/**
 * The batch (account, address, HTTP connection) of the i-th of `count` disclosures. Interleaved,
 * so that concurrent disclosures come from different accounts, as "many helpdesk accounts at once"
 * means: consecutive disclosures in one batch would queue behind that batch's single connection
 * (before 2026-12-04 they did, and "16 concurrent" over HTTP was about 2 in flight).
 */
function batchOf(i: number, count: number): number {
  return i % Math.ceil(count / DISCLOSURE_BATCH);
}

/** A disclosure must hand out exactly the password that was escrowed for that key. */
function expectEscrowedPassword(t: { id: string; device: number; key: number }, disclosed: string): void {
  if (disclosed.replace(/\D/g, '') !== passwordOf(t.device, t.key).replace(/\D/g, '')) {
    throw new Error(`disclosed password of ${t.id} does not match what was escrowed`);
  }
}

/** Audited disclosures of distinct keys; batch b uses tokens[b] from address b. */
async function measureDisclosures(
  server: ServerChild,
  tokens: string[],
  targets: { id: string; device: number; key: number }[],
  concurrency: number,
  addressBase: number,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  const serverCpu0 = cpuSecondsOf(server.child.pid);
  const clientCpu0 = ownCpuSeconds();
  const databaseCpu0 = postgresCpuSeconds();
  const agents = new Map<number, http.Agent>();
  const wallMs = await runPool(targets.length, concurrency, async (i) => {
    const t = targets[i]!;
    const batch = addressBase + batchOf(i, targets.length);
    let agent = agents.get(batch);
    if (!agent) agents.set(batch, (agent = new http.Agent({ keepAlive: true, maxSockets: 1 })));
    const r = await request(
      server.url,
      agent,
      'POST',
      `/api/recovery-keys/${t.id}/disclose`,
      tokens[batch]!,
      { reason: `vault benchmark disclosure ${i}` },
      loopbackAddress(200, batch),
    );
    expectStatus(r, 200, `disclose ${t.id}`);
    const body = r.body as { recoveryPassword: string; auditEntryId: string };
    expectEscrowedPassword(t, body.recoveryPassword);
    if (!body.auditEntryId) throw new Error('disclosure without an audit entry id');
    latencies.push(r.ms);
  });
  for (const a of agents.values()) a.destroy();
  return {
    name: `disclose (POST …/disclose, audit row in the same transaction), ${concurrency === 1 ? 'sequential' : `${concurrency} concurrent`}`,
    wallMs,
    latency: summarize(latencies),
    extra: 'password checked against the escrowed one',
    serverCpu: diff(cpuSecondsOf(server.child.pid), serverCpu0),
    clientCpu: ownCpuSeconds() - clientCpu0,
    databaseCpu: diff(postgresCpuSeconds(), databaseCpu0),
  };
}

/**
 * The same audited disclosures through the disclosure service in this process: no HTTP, no
 * authentication or authorization, the same limits, transaction, audit row, rotation and
 * notification events. What the vault's own disclosure costs, next to the raw SQL baseline.
 */
async function measureServiceDisclosures(
  vault: Vault,
  organizationId: string,
  targets: { id: string; device: number; key: number }[],
  concurrency: number,
): Promise<PhaseResult> {
  const latencies: number[] = [];
  const clientCpu0 = ownCpuSeconds();
  const databaseCpu0 = postgresCpuSeconds();
  const wallMs = await runPool(targets.length, concurrency, async (i) => {
    const t = targets[i]!;
    // One account and one address per batch, as over HTTP, so no limit or alert is reached.
    const batch = batchOf(i, targets.length);
    const account = { type: 'api-token' as const, id: `tok_bench_service_${batch}` };
    const started = performance.now();
    const disclosed = await vault.services.recoveryKeys.discloseRecoveryPassword({
      organizationId,
      recoveryKeyRecordId: t.id,
      reason: `vault benchmark service disclosure ${i}`,
      actor: account,
      account,
      address: loopbackAddress(210, batch),
    });
    latencies.push(performance.now() - started);
    expectEscrowedPassword(t, disclosed.recoveryPassword);
  });
  return {
    name: `disclose through the service in-process (no HTTP, no authentication), ${concurrency} concurrent`,
    wallMs,
    latency: summarize(latencies),
    extra: 'password checked against the escrowed one',
    clientCpu: ownCpuSeconds() - clientCpu0,
    databaseCpu: diff(postgresCpuSeconds(), databaseCpu0),
  };
}

/**
 * Query plans of the lookups. The statements mirror the WHERE and ORDER BY of
 * `recovery-keys.repo.ts` (listMetadata) and `devices.repo.ts` (searchByName), the parts that pick
 * the index; keep them in step when those change.
 */
async function explainLookups(vault: Vault, organizationId: string, sample: number): Promise<string[]> {
  const db = vault.db;
  const keyMetadata = () =>
    db
      .selectFrom('recovery_keys as k')
      .innerJoin('devices as d', 'd.id', 'k.device_id')
      .innerJoin('volumes as v', 'v.id', 'k.volume_id')
      .select(['k.id', 'k.key_id', 'd.name', 'v.volume_guid'])
      .where('k.organization_id', '=', organizationId);
  const devices = () =>
    db
      .selectFrom('devices')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('deleted_at', 'is', null);
  const name = deviceNameOf(sample).toUpperCase();
  const cases: [string, CompiledQuery][] = [
    [
      'key-id prefix',
      keyMetadata()
        .where('k.key_id_prefix', '=', keyIdOf(sample, 0).slice(0, 8))
        .orderBy('k.created_at', 'desc')
        .orderBy('k.id')
        .limit(50)
        .compile(),
    ],
    [
      'full key id',
      keyMetadata()
        .where('k.key_id', '=', keyIdOf(sample, 0))
        .orderBy('k.created_at', 'desc')
        .orderBy('k.id')
        .limit(50)
        .compile(),
    ],
    [
      'device name, exact',
      devices().where('name_key', '=', name).orderBy('name_key').orderBy('id').limit(50).compile(),
    ],
    [
      'device name, prefix',
      devices()
        .where(sql<boolean>`name_key like ${`${name.slice(0, 12)}%`} escape '\\'`)
        .orderBy('name_key')
        .orderBy('id')
        .limit(50)
        .compile(),
    ],
  ];
  const explain = vault.config.database.dialect === 'sqlite' ? 'EXPLAIN QUERY PLAN ' : 'EXPLAIN ';
  const out: string[] = [];
  for (const [label, compiled] of cases) {
    const plan = await db.executeQuery(CompiledQuery.raw(explain + compiled.sql, [...compiled.parameters]));
    const lines = plan.rows
      .map((r) => {
        const row = r as Record<string, unknown>;
        return String(row.detail ?? row['QUERY PLAN'] ?? JSON.stringify(row)).trim();
      })
      // PostgreSQL: keep the lines that say how rows are found.
      .filter((line) => !line.includes('cost=') || /Scan/.test(line))
      .map((line) => line.replace(/^->\s*/, '').replace(/\s*\(cost=[^)]*\)/, ''));
    out.push(`${label}: ${lines.join('; ')}`);
  }
  return out;
}

async function databaseSize(vault: Vault): Promise<string> {
  const target = vault.config.database;
  if (target.dialect === 'sqlite') {
    const size = (p: string): number => {
      try {
        return statSync(p).size;
      } catch {
        return 0;
      }
    };
    const main = size(target.path);
    const wal = size(`${target.path}-wal`);
    return `${(main / 2 ** 20).toFixed(1)} MiB (SQLite file${wal ? ` + ${(wal / 2 ** 20).toFixed(1)} MiB WAL` : ''})`;
  }
  const r = await sql<{ size: string }>`select pg_database_size(current_database())::text as size`.execute(
    vault.db,
  );
  return `${(Number(r.rows[0]!.size) / 2 ** 20).toFixed(1)} MiB (pg_database_size)`;
}

async function tableCounts(vault: Vault, organizationId: string): Promise<string> {
  const count = async (table: 'devices' | 'recovery_keys' | 'volumes'): Promise<number> => {
    const r = await vault.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll().as('n'))
      .where('organization_id', '=', organizationId)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  };
  const audit = await vault.db
    .selectFrom('audit_log')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return `${await count('devices')} devices, ${await count('volumes')} volumes, ${await count('recovery_keys')} recovery keys, ${Number(audit.n)} audit rows`;
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const load0 = loadavg();
  const dataDir = mkdtempSync(join(tmpdir(), 'bdevault-bench-'));
  let server: ServerChild | undefined;
  let vault: Vault | undefined;
  // Interrupted (Ctrl-C): stop the server child and delete the data dir, as the finally below does.
  const interrupted = (signal: NodeJS.Signals) => {
    server?.child.kill('SIGTERM');
    if (!o.keep) rmSync(dataDir, { recursive: true, force: true });
    log(`${signal}: stopped${o.keep ? `, kept ${dataDir}` : ''}`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      BDEVAULT_DATA_DIR: dataDir,
      BDEVAULT_LOG_LEVEL: o.logLevel,
      BDEVAULT_KEK: undefined,
      BDEVAULT_KEK_FILE: undefined,
      DATABASE_URL: o.databaseUrl,
    };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
    const config = loadConfig(configInputFromEnv(env));
    log(`data dir ${dataDir}, database ${config.database.dialect}; seed is random per run`);

    // Setup, as an operator would with the CLI: an organization, an API token, an enrollment token.
    vault = await openVault(config);
    const organizationId = vault.deps.ids('organization');
    await vault.services.organizations.insert({
      id: organizationId,
      name: `vault benchmark ${startedAt.toISOString()}`,
      created_at: startedAt.toISOString(),
    });
    orgIds.set(vault, organizationId);
    const actor = { type: 'cli' as const, id: null };
    const { token: apiToken } = await vault.services.apiTokens.createApiToken({
      organizationId,
      name: 'vault benchmark',
      permissions: ['keys:*', 'devices:read'],
      creatorPermissions: undefined,
      actor,
    });
    const { enrollmentToken } = await vault.services.escrow.createEnrollmentToken({
      organizationId,
      description: 'vault benchmark',
      expiresInHours: 72,
      maxUses: Math.min(1_000_000, o.devices),
      actor,
    });
    // Disclosure accounts for the two HTTP phases (see measureDisclosures); the in-process phase
    // names its accounts itself.
    const disclosureTargets = Math.min(o.disclosures * 2, o.devices * o.keysPerDevice);
    const disclosureTokens: string[] = [];
    for (let b = 0; b < Math.ceil(disclosureTargets / DISCLOSURE_BATCH) + 1; b++) {
      const created = await vault.services.apiTokens.createApiToken({
        organizationId,
        name: `vault benchmark helpdesk ${b}`,
        permissions: ['keys:*'],
        creatorPermissions: undefined,
        actor,
      });
      disclosureTokens.push(created.token);
    }
    const more =
      o.devices > 1_000_000
        ? await vault.services.escrow.createEnrollmentToken({
            organizationId,
            description: 'vault benchmark (2)',
            expiresInHours: 72,
            maxUses: 1_000_000,
            actor,
          })
        : undefined;
    const tokenFor = (device: number): string =>
      device < 1_000_000 || !more ? enrollmentToken : more.enrollmentToken;
    if (o.devices > 2_000_000) throw new Error('more than 2,000,000 devices needs more enrollment tokens');

    const ingests: IngestResult[] = [];
    const seeded = o.devices - o.httpSample;
    if (o.ingest === 'bulk') {
      log(`bulk seed: ${seeded} devices in multi-row INSERTs (not through HTTP or the escrow service)`);
      ingests.push(await ingestBulk(vault, 0, seeded, o));
    }
    if (o.ingest === 'service') {
      log(`fast path: seeding ${seeded} devices through the escrow service in-process`);
      ingests.push(await ingestService(vault, tokenFor(0), 0, Math.min(seeded, 1_000_000), o));
      if (seeded > 1_000_000)
        ingests.push(await ingestService(vault, tokenFor(1_000_000), 1_000_000, seeded, o));
    }
    await vault.close();
    vault = undefined;

    server = await startServerChild(env);
    log(`server child pid ${server.child.pid} at ${server.url.href}`);
    const httpFrom = o.ingest === 'http' ? 0 : seeded;
    if (o.devices - httpFrom > 0) {
      if (o.devices > 1_000_000) throw new Error('HTTP ingest above 1,000,000 devices: use --ingest service');
      log(`HTTP ingest of devices ${httpFrom}..${o.devices - 1}, ${o.concurrency} concurrent clients`);
      ingests.push(
        await ingestHttp(
          server,
          enrollmentToken,
          httpFrom,
          o.devices,
          o,
          httpFrom === 0
            ? 'HTTP escrow API (enroll + escrow requests)'
            : `HTTP escrow API, the last ${o.devices - httpFrom} devices (on top of the seeded ones)`,
        ),
      );
    }
    const loadAfterIngest = loadavg()[0]!;

    // Lookups
    const totalKeys = o.devices * o.keysPerDevice;
    const randomKey = () => ({ device: randomInt(o.devices), key: randomInt(o.keysPerDevice) });
    const found = (field: 'recoveryKeys' | 'devices') => (body: unknown) =>
      ((body as Record<string, unknown[]>)[field]?.length ?? 0) > 0;
    const kinds: LookupKind[] = [
      {
        name: 'key-id prefix (8 hex), existing',
        next() {
          const { device, key } = randomKey();
          const keyId = keyIdOf(device, key);
          return {
            path: `/api/recovery-keys?keyIdPrefix=${keyId.slice(0, 8)}`,
            check: (body) => {
              const keys = (body as { recoveryKeys: { recoveryKeyId: string }[] }).recoveryKeys;
              if (!keys.some((k) => k.recoveryKeyId === keyId))
                throw new Error(`prefix lookup missed ${keyId}`);
              return true;
            },
          };
        },
      },
      {
        name: 'key-id prefix (8 hex), random (almost all absent)',
        next: () => ({
          path: `/api/recovery-keys?keyIdPrefix=${randomBytes(4).toString('hex').toUpperCase()}`,
          check: found('recoveryKeys'),
        }),
      },
      {
        name: 'full key id, existing',
        next() {
          const { device, key } = randomKey();
          return { path: `/api/recovery-keys?keyId=${keyIdOf(device, key)}`, check: found('recoveryKeys') };
        },
      },
      {
        name: 'device name, exact, existing',
        next: () => ({
          path: `/api/devices?name=${deviceNameOf(randomInt(o.devices))}&match=exact`,
          check: found('devices'),
        }),
      },
      {
        name: 'device name, exact, random (almost all absent)',
        next: () => ({
          path: `/api/devices?name=${nameFrom(randomBytes(7))}&match=exact`,
          check: found('devices'),
        }),
      },
      {
        name: 'device name, prefix (first 12 of 15 chars), existing',
        next: () => ({
          path: `/api/devices?name=${deviceNameOf(randomInt(o.devices)).slice(0, 12)}&match=prefix`,
          check: found('devices'),
        }),
      },
    ];
    const lookups: PhaseResult[] = [];
    // Warm-up: the first requests compile Zod schemas and fill caches.
    await measureLookups(server, apiToken, kinds[0]!, 200, 4);
    for (const kind of kinds) {
      for (const c of [1, o.lookupConcurrency]) {
        log(`lookups: ${kind.name}, concurrency ${c}`);
        lookups.push(await measureLookups(server, apiToken, kind, o.lookups, c));
      }
    }

    // Disclosures of distinct random keys (their record ids found by a full-key-id lookup, untimed).
    const disclosures: PhaseResult[] = [];
    let disclosureFailure: string | undefined;
    if (o.disclosures > 0) {
      const picked = new Map<string, { id: string; device: number; key: number }>();
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      while (picked.size < Math.min(o.disclosures * 3, totalKeys)) {
        const { device, key } = randomKey();
        const keyId = keyIdOf(device, key);
        if (picked.has(keyId)) continue;
        const r = await request(server.url, agent, 'GET', `/api/recovery-keys?keyId=${keyId}`, apiToken);
        expectStatus(r, 200, 'key lookup for disclosure');
        const id = (r.body as { recoveryKeys: { id: string }[] }).recoveryKeys[0]!.id;
        picked.set(keyId, { id, device, key });
      }
      agent.destroy();
      const targets = [...picked.values()];
      const third = Math.floor(targets.length / 3);
      log(
        `disclosures: ${third} sequential, ${third} with concurrency ${o.lookupConcurrency} (HTTP), ` +
          `${targets.length - 2 * third} with concurrency ${o.lookupConcurrency} (service in-process)`,
      );
      try {
        disclosures.push(await measureDisclosures(server, disclosureTokens, targets.slice(0, third), 1, 0));
        disclosures.push(
          await measureDisclosures(
            server,
            disclosureTokens,
            targets.slice(third, 2 * third),
            o.lookupConcurrency,
            Math.ceil(third / DISCLOSURE_BATCH),
          ),
        );
        const inProcess = await openVault(config);
        try {
          disclosures.push(
            await measureServiceDisclosures(
              inProcess,
              organizationId,
              targets.slice(2 * third),
              o.lookupConcurrency,
            ),
          );
        } finally {
          await inProcess.close();
        }
      } catch (err) {
        // Keep what was measured: the report says why the disclosure rows are missing.
        disclosureFailure = err instanceof Error ? err.message : String(err);
        log(`disclosures stopped: ${disclosureFailure}`);
      }
    }

    await server.stop();
    server = undefined;

    // Plans, counts and size, with the server stopped (its connection closed, the WAL checkpointed).
    vault = await openVault(config);
    const plans = await explainLookups(vault, organizationId, randomInt(o.devices));
    const counts = await tableCounts(vault, organizationId);
    await vault.close();
    vault = undefined;
    const dbSize = await (async () => {
      const v = await openVault(config);
      try {
        return await databaseSize(v);
      } finally {
        await v.close();
      }
    })();

    const load1 = loadavg();
    printReport({
      o,
      startedAt,
      load0,
      load1,
      loadAfterIngest,
      ingests,
      lookups,
      disclosures,
      disclosureFailure,
      plans,
      counts,
      dbSize,
    });
  } finally {
    if (server) await server.stop();
    if (vault) await vault.close();
    if (o.keep) log(`kept ${dataDir}`);
    else rmSync(dataDir, { recursive: true, force: true });
  }
}

function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

function printReport(r: {
  o: Options;
  startedAt: Date;
  load0: number[];
  load1: number[];
  loadAfterIngest: number;
  ingests: IngestResult[];
  lookups: PhaseResult[];
  disclosures: PhaseResult[];
  disclosureFailure: string | undefined;
  plans: string[];
  counts: string;
  dbSize: string;
}): void {
  const { o } = r;
  const cpu = cpus()[0];
  const mhz = cpu?.speed || Number(/cpu MHz\s*:\s*([\d.]+)/.exec(readCpuinfo())?.[1] ?? NaN);
  const loads = loadSamples.length ? loadSamples : [r.load0[0]!];
  const mem = `${(totalmem() / 2 ** 30).toFixed(1)} GiB`;
  const args = process.argv.slice(2).join(' ');
  const lines: string[] = [];
  const cpuCell = (server?: number, client?: number) =>
    `${server === undefined ? '?' : server.toFixed(1)} / ${client === undefined ? '?' : client.toFixed(1)}`;
  lines.push(
    `## ${r.startedAt.toISOString().slice(0, 16)}Z — vault: escrow ingest, lookups and disclosure (${o.devices.toLocaleString('en')} devices, ${(o.devices * o.keysPerDevice).toLocaleString('en')} keys, ${o.databaseUrl ? 'PostgreSQL' : 'SQLite'})`,
    '',
    `- Machine: \`nproc\` = ${cpus().length}, CPU \`${cpu?.model ?? '?'}\` (${mhz} MHz), ${mem} RAM, Node ${process.version}.`,
    `- Command: \`npx tsx bench/vault.ts${args ? ` ${args}` : ''}\``,
    `- Load average (1 min): ${r.load0[0]!.toFixed(2)} at start, ${r.loadAfterIngest.toFixed(2)} after ingest, ${r.load1[0]!.toFixed(2)} at the end; sampled every 5 s: min ${Math.min(...loads).toFixed(2)}, median ${percentile(
      [...loads].sort((a, b) => a - b),
      50,
    ).toFixed(2)}, max ${Math.max(...loads).toFixed(2)}.`,
    `- Database: ${r.counts}; size on disk ${r.dbSize}.`,
    `- Server: one process (\`startServer\`, log level ${o.logLevel}), load generator in another; ingest ${o.concurrency} concurrent device clients, lookups ${o.lookupConcurrency} concurrent.`,
    '',
    '| ingest | devices | keys | wall | devices/s | keys/s | devices/s, last 10% | enroll p50 / p99 | escrow req. p50 / p99 | CPU s server / client |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const i of r.ingests) {
    const s = i.wallMs / 1000;
    lines.push(
      `| ${i.label} | ${i.devices} | ${i.keys} | ${s.toFixed(0)} s | ${fmtRate(i.devices / s)} | ${fmtRate(i.keys / s)} | ${fmtRate(i.tailDevicesPerSecond)} | ${i.enroll ? `${fmtMs(i.enroll.p50)} / ${fmtMs(i.enroll.p99)} ms` : '–'} | ${i.escrow ? `${fmtMs(i.escrow.p50)} / ${fmtMs(i.escrow.p99)} ms` : '–'} | ${cpuCell(i.serverCpu, i.clientCpu)} |`,
    );
  }
  lines.push(
    '',
    '| HTTP request | n | p50 | p99 | max | mean | req/s | found | CPU s server / client |',
    '|---|---|---|---|---|---|---|---|---|',
  );
  for (const p of [...r.lookups, ...r.disclosures]) {
    lines.push(
      `| ${p.name} | ${p.latency.n} | ${fmtMs(p.latency.p50)} ms | ${fmtMs(p.latency.p99)} ms | ${fmtMs(p.latency.max)} ms | ${fmtMs(p.latency.mean)} ms | ${fmtRate((p.latency.n * 1000) / p.wallMs)} | ${p.extra ?? ''} | ${cpuCell(p.serverCpu, p.clientCpu)} |`,
    );
  }
  if (r.disclosures.some((p) => p.databaseCpu !== undefined)) {
    // Where a disclosure's CPU goes, per disclosure: the Node.js side and the database side.
    const perOp = (cpu: number | undefined, n: number) =>
      cpu === undefined ? '?' : ((cpu * 1000) / n).toFixed(2);
    lines.push(
      '',
      '| disclosure phase | n | disclosures/s | CPU ms per disclosure: server process | load generator (in-process: the vault) | PostgreSQL |',
      '|---|---|---|---|---|---|',
      ...r.disclosures.map(
        (p) =>
          `| ${p.name} | ${p.latency.n} | ${fmtRate((p.latency.n * 1000) / p.wallMs)} | ${perOp(p.serverCpu, p.latency.n)} | ${perOp(p.clientCpu, p.latency.n)} | ${perOp(p.databaseCpu, p.latency.n)} |`,
      ),
    );
  }
  if (r.disclosureFailure) lines.push('', `Disclosures stopped: ${r.disclosureFailure}`);
  lines.push('', "Query plans (statements mirroring the repositories' WHERE and ORDER BY):", '');
  for (const p of r.plans) lines.push(`- ${p}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------
// Entry: the server child (`vault.ts --serve`, configured from the environment like `bdevault
// serve`), or the benchmark.
// ---------------------------------------------------------------------------------------------
if (process.argv[2] === '--serve') {
  const config = loadConfig({ ...configInputFromEnv(process.env), host: '127.0.0.1', port: 0 });
  const server = await startServer(config);
  const stop = () => void server.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
  process.send!({ url: server.url });
} else {
  setInterval(() => loadSamples.push(loadavg()[0]!), 5_000).unref();
  await main();
}
