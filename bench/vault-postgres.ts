/**
 * Benchmark: the vault on PostgreSQL at scale (issue 7), against a raw pgbench baseline. See
 * bench/README.md.
 *
 *   npx tsx bench/vault-postgres.ts [--devices 1000000] [--http-sample 2000] [--admin-url URL]
 *     [--pgbench-clients 16] [--pgbench-time 20] [--keep] [-- vault.ts options…]
 *
 * 1. Creates a fresh database (`bdevault_bench_<random>`) through the admin URL.
 * 2. Runs bench/vault.ts on it with `--ingest bulk`: migrations (openVault), bulk seed of all but
 *    `--http-sample` devices in multi-row INSERTs with envelope-encrypted passwords, HTTP escrow
 *    ingest of the rest, HTTP lookups and disclosures (server in a child process), EXPLAIN plans.
 * 3. On the same database: a pgbench script doing what a disclosure does in SQL (SELECT the key row
 *    by id, UPDATE last_disclosed_at, INSERT an audit-like row into a scratch copy of audit_log, one
 *    transaction), then a second script that also takes a scratch chain-head row lock like the audit
 *    writer. Reports TPS next to bdevault's concurrent disclosures/s.
 * 4. Drops the database unless --keep.
 *
 * Everything but the Markdown report (stdout) goes to stderr. No secret is written anywhere but the
 * temporary data dir vault.ts deletes and the temporary database this script drops.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AUTOVACUUM_USAGE, autovacuumFlag, BENCH_AUTOVACUUM_NAPTIME, intOption } from './lib/options.js';
import { benchAutovacuum, type BenchAutovacuum } from './lib/bench-autovacuum.js';
import { pinPostgres } from './lib/pin-postgres.js';
import { withClient } from './lib/with-client.js';
import { postgresCpuSeconds } from './lib/postgres-cpu.js';

const vaultScript = fileURLToPath(new URL('./vault.ts', import.meta.url));

interface Options {
  devices: number;
  httpSample: number;
  adminUrl: string;
  pgbenchClients: number;
  pgbenchThreads: number;
  pgbenchTime: number;
  keep: boolean;
  pinPostgres: boolean;
  /** Seconds between autovacuum runs during the bench; undefined: the server's own settings. */
  autovacuumNaptime: number | undefined;
  vaultArgs: string[];
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    devices: 1_000_000,
    httpSample: 2_000,
    adminUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
    pgbenchClients: 16,
    pgbenchThreads: 2,
    pgbenchTime: 20,
    keep: false,
    pinPostgres: false,
    autovacuumNaptime: BENCH_AUTOVACUUM_NAPTIME,
    vaultArgs: [],
  };
  const int = intOption;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--devices':
        o.devices = int(flag, value(), 1);
        break;
      case '--http-sample':
        o.httpSample = int(flag, value(), 0);
        break;
      case '--admin-url':
        o.adminUrl = value() ?? o.adminUrl;
        break;
      case '--pgbench-clients':
        o.pgbenchClients = int(flag, value(), 1);
        break;
      case '--pgbench-threads':
        o.pgbenchThreads = int(flag, value(), 1);
        break;
      case '--pgbench-time':
        o.pgbenchTime = int(flag, value(), 1);
        break;
      case '--keep':
        o.keep = true;
        break;
      case '--pin-postgres':
        o.pinPostgres = true;
        break;
      case '--':
        o.vaultArgs = argv.slice(i + 1);
        i = argv.length;
        break;
      case '--help':
        console.log(
          'npx tsx bench/vault-postgres.ts [--devices N] [--http-sample N] [--admin-url URL]\n' +
            '  [--pgbench-clients C] [--pgbench-threads J] [--pgbench-time S] [--keep] [--pin-postgres]\n' +
            `  ${AUTOVACUUM_USAGE}\n` +
            '  [-- vault.ts options]',
        );
        process.exit(0);
        break;
      default: {
        const naptime = autovacuumFlag(flag, value);
        if (naptime === null)
          throw new Error(`unknown option ${flag} (try --help; vault.ts options go after --)`);
        o.autovacuumNaptime = naptime;
      }
    }
  }
  if (o.httpSample > o.devices) throw new Error('--http-sample cannot exceed --devices');
  return o;
}

const log = (msg: string): void =>
  void process.stderr.write(`[vault-postgres ${new Date().toISOString()}] ${msg}\n`);

function databaseUrl(admin: string, name: string): string {
  const u = new URL(admin);
  u.pathname = `/${name}`;
  return u.href;
}

/** Runs vault.ts, passing its stderr through and collecting its stdout (the report). */
function runVault(args: string[], cpus: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const command = [process.execPath, ...process.execArgv, vaultScript, ...args];
    const [file, ...rest] = cpus === undefined ? command : ['taskset', '-c', cpus, ...command];
    const child = spawn(file!, rest, {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.once('error', reject);
    child.once('exit', (code) => {
      const out = Buffer.concat(chunks).toString('utf8');
      if (code === 0) resolve(out);
      else reject(new Error(`vault.ts exited with ${code}\n${out}`));
    });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.once('SIGINT', forward);
    process.once('SIGTERM', forward);
  });
}

/**
 * The raw equivalent of one disclosure: SELECT the key row (as recoveryKeysRepo.findById), UPDATE
 * last_disclosed_at (markDisclosed), INSERT an audit-like row (into bench_audit_log, shaped like
 * audit_log), one transaction. `bench_keys` maps 1..N to the seeded key ids. With `chain`, also the
 * audit writer's chain-head row: UPDATE … RETURNING before the insert and UPDATE after it (that row
 * lock serializes every audited write, as `audit_chain_head` does).
 */
function pgbenchScript(keys: number, chain: boolean): string {
  return [
    `\\set n random(1, ${keys})`,
    'BEGIN;',
    'SELECT k.* FROM recovery_keys k JOIN bench_keys b ON b.organization_id = k.organization_id AND b.id = k.id WHERE b.n = :n;',
    'UPDATE recovery_keys SET last_disclosed_at = to_char(now() AT TIME ZONE \'UTC\', \'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"\') WHERE id = (SELECT id FROM bench_keys WHERE n = :n);',
    ...(chain ? ['UPDATE bench_chain_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, last_hash;'] : []),
    'INSERT INTO bench_audit_log (id, seq, organization_id, occurred_at, actor_type, actor_id, action, target_type, target_id, outcome, reason, details, request_id, prev_hash, hash) ' +
      "SELECT 'aud_' || md5(random()::text), nextval('bench_audit_seq'), b.organization_id, now()::text, 'api-token', 'tok_pgbench', 'recovery-key.disclosed', 'recovery-key', b.id, 'success', 'pgbench disclosure', " +
      `json_build_object('recoveryKeyId', b.key_id, 'deviceId', b.device_id, 'rotationRequestId', null)::text, null, md5(b.id), encode(sha256(b.id::bytea), 'hex') FROM bench_keys b WHERE b.n = :n;`,
    ...(chain ? ['UPDATE bench_chain_head SET last_hash = md5(random()::text) WHERE id = 1;'] : []),
    'END;',
    '',
  ].join('\n');
}

interface PgbenchResult {
  label: string;
  tps: number;
  latencyMs: number;
  transactions: number;
  command: string;
  /** PostgreSQL's CPU per transaction (all its processes, from /proc), when measurable. */
  databaseCpuMs: number | undefined;
}

const percentOf = (rate: number, tps: number): string =>
  Number.isFinite(rate) ? `${((rate / tps) * 100).toFixed(1)}%` : '?';

function runPgbench(
  o: Options,
  url: string,
  file: string,
  label: string,
  cpus: string | undefined,
): PgbenchResult {
  const args = [
    '-n',
    '-f',
    file,
    '-c',
    `${o.pgbenchClients}`,
    '-j',
    `${o.pgbenchThreads}`,
    '-T',
    `${o.pgbenchTime}`,
    url,
  ];
  log(`pgbench ${label}: pgbench ${args.join(' ')}`);
  const databaseCpu0 = postgresCpuSeconds();
  const r =
    cpus === undefined
      ? spawnSync('pgbench', args, { encoding: 'utf8' })
      : spawnSync('taskset', ['-c', cpus, 'pgbench', ...args], { encoding: 'utf8' });
  const databaseCpu1 = postgresCpuSeconds();
  if (r.status !== 0) throw new Error(`pgbench failed (${r.status}): ${r.stderr}`);
  process.stderr.write(r.stdout);
  const tps = Number(/tps = ([\d.]+)/.exec(r.stdout)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(r.stdout)?.[1]);
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(r.stdout)?.[1]);
  return {
    label,
    tps,
    latencyMs,
    transactions,
    databaseCpuMs:
      databaseCpu0 === undefined || databaseCpu1 === undefined || transactions === 0
        ? undefined
        : ((databaseCpu1 - databaseCpu0) * 1000) / transactions,
    command: `pgbench -n -f ${label.includes('chain') ? 'disclose-chain.sql' : 'disclose.sql'} -c ${o.pgbenchClients} -j ${o.pgbenchThreads} -T ${o.pgbenchTime}`,
  };
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const load0 = loadavg();
  const name = `bdevault_bench_${randomBytes(6).toString('hex')}`;
  const url = databaseUrl(o.adminUrl, name);
  const scratch = mkdtempSync(join(tmpdir(), 'bdevault-pgbench-'));
  const { pgVersion, dataDirectory } = await withClient(o.adminUrl, async (c) => {
    await c.query(`CREATE DATABASE ${name}`);
    return {
      pgVersion: String((await c.query('SHOW server_version')).rows[0].server_version),
      dataDirectory: String((await c.query('SHOW data_directory')).rows[0].data_directory),
    };
  });
  log(`created database ${name} (PostgreSQL ${pgVersion})`);
  const pinned = o.pinPostgres ? pinPostgres(dataDirectory, cpus().length) : undefined;
  if (pinned)
    log(
      `PostgreSQL pinned to CPU ${pinned.postgresCpus}; vault.ts, its server and pgbench to ${pinned.otherCpus}`,
    );
  let autovacuum: BenchAutovacuum | undefined;
  try {
    autovacuum = await benchAutovacuum(o.adminUrl, o.autovacuumNaptime);
    log(autovacuum.description);
    const report = await runVault(
      [
        '--database-url',
        url,
        '--devices',
        `${o.devices}`,
        '--ingest',
        'bulk',
        '--http-sample',
        `${o.httpSample}`,
        ...o.vaultArgs,
      ],
      pinned?.otherCpus,
    );
    process.stdout.write(report);

    // Raw baseline on the same database.
    log(
      'pgbench setup: bench_keys (1..N → the keys bdevault disclosed), bench_audit_log (LIKE audit_log), bench_chain_head',
    );
    const { keys, size } = await withClient(url, async (c) => {
      // The same keys bdevault disclosed, in the same state of the cache: vault.ts looks its keys
      // up just before disclosing them, so at 1,000,000 devices a raw script over all 3,000,000
      // keys would read cold pages where bdevault read warm ones. All keys when none was disclosed.
      await c.query(`CREATE TABLE bench_keys AS
        SELECT row_number() OVER ()::int AS n, id, organization_id, key_id, device_id FROM recovery_keys
        WHERE last_disclosed_at IS NOT NULL OR NOT EXISTS (SELECT 1 FROM recovery_keys WHERE last_disclosed_at IS NOT NULL)`);
      await c.query('ALTER TABLE bench_keys ADD PRIMARY KEY (n)');
      await c.query('CREATE TABLE bench_audit_log (LIKE audit_log INCLUDING ALL)');
      await c.query('CREATE SEQUENCE bench_audit_seq');
      await c.query(
        'CREATE TABLE bench_chain_head (id int PRIMARY KEY, seq bigint NOT NULL, last_hash text NOT NULL)',
      );
      await c.query("INSERT INTO bench_chain_head VALUES (1, 0, '')");
      await c.query('ANALYZE bench_keys');
      const n = Number((await c.query('SELECT count(*) AS n FROM bench_keys')).rows[0].n);
      const bytes = Number((await c.query('SELECT pg_database_size(current_database()) AS s')).rows[0].s);
      return { keys: n, size: bytes };
    });
    const plain = join(scratch, 'disclose.sql');
    const chain = join(scratch, 'disclose-chain.sql');
    writeFileSync(plain, pgbenchScript(keys, false));
    writeFileSync(chain, pgbenchScript(keys, true));
    const results = [
      runPgbench(
        o,
        url,
        plain,
        'SELECT key + UPDATE last_disclosed_at + INSERT audit-like row',
        pinned?.otherCpus,
      ),
      runPgbench(
        o,
        url,
        chain,
        'the same + chain-head row lock (UPDATE … RETURNING, UPDATE)',
        pinned?.otherCpus,
      ),
    ];

    // bdevault's concurrent disclosure rates (HTTP, and the service in-process), from vault.ts's report.
    const rateOf = (prefix: string): number => {
      const row = report.split('\n').find((l) => l.startsWith(prefix) && l.includes('concurrent'));
      return row ? Number(row.split('|')[7]?.trim()) : NaN;
    };
    const bdevault = rateOf('| disclose (POST');
    const service = rateOf('| disclose through the service');
    const load1 = loadavg();
    const lines = [
      '',
      `### Raw baseline: pgbench on the same database (${keys.toLocaleString('en')} keys, ${(size / 2 ** 20).toFixed(0)} MiB before pgbench)`,
      '',
      `- PostgreSQL ${pgVersion}; load average (1 min) ${load0[0]!.toFixed(2)} at the start of vault-postgres.ts, ${load1[0]!.toFixed(2)} at the end.`,
      `- Command: \`npx tsx bench/vault-postgres.ts ${process.argv.slice(2).join(' ')}\``,
      `- PostgreSQL ran with ${autovacuum.description}.`,
      ...(pinned
        ? [
            `- PostgreSQL pinned to CPU ${pinned.postgresCpus} (\`taskset\`, every PostgreSQL process); vault.ts, its server child and pgbench on CPU ${pinned.otherCpus}.`,
          ]
        : []),
      '- Script (`disclose.sql`; `disclose-chain.sql` adds the two `bench_chain_head` lines):',
      '',
      '```sql',
      pgbenchScript(keys, true).trimEnd(),
      '```',
      '',
      '| what | clients | TPS | latency avg | transactions | PostgreSQL CPU ms per transaction | bdevault disclosures/s, HTTP (16 concurrent) | HTTP / raw | bdevault disclosures/s, service in-process (16 concurrent) | service / raw |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...results.map(
        (r) =>
          `| \`${r.command}\`: ${r.label} | ${o.pgbenchClients} | ${r.tps.toFixed(0)} | ${r.latencyMs.toFixed(2)} ms | ${r.transactions} | ${r.databaseCpuMs === undefined ? '?' : r.databaseCpuMs.toFixed(2)} | ${Number.isFinite(bdevault) ? bdevault : '?'} | ${percentOf(bdevault, r.tps)} | ${Number.isFinite(service) ? service : '?'} | ${percentOf(service, r.tps)} |`,
      ),
      '',
    ];
    process.stdout.write(lines.join('\n'));
  } finally {
    pinned?.restore();
    rmSync(scratch, { recursive: true, force: true });
    try {
      await autovacuum?.restore();
    } finally {
      if (o.keep) log(`kept database ${name} (${url})`);
      else {
        await withClient(o.adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
        log(`dropped database ${name}`);
      }
    }
  }
}

await main();
