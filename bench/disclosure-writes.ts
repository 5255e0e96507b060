/**
 * Benchmark: the disclosure write alone on PostgreSQL, one commit per disclosure against group
 * commit (packages/server/src/modules/recovery-keys/disclosure-write-batcher.ts). See
 * bench/README.md.
 *
 *   npx tsx bench/disclosure-writes.ts [--admin-url URL] [--writes 3000] [--rounds 3]
 *     [--concurrency 16,64] [--max-in-flight 1]
 *
 * Only the write is measured: the statement that stamps the key, opens its rotation request and
 * inserts its audit row, which the audit chain trigger links at commit. Every audited commit holds
 * the chain head, so this is where one disclosure per commit stops scaling; the reads around a
 * disclosure (token, key, counters, routing) take no shared lock and are measured end to end by
 * vault-postgres.ts.
 *
 * 1. Creates a fresh database (`bdevault_bench_writes_<random>`), migrates it, and seeds one
 *    organization with enough devices (one volume, one active key each) for every round to write
 *    keys no round wrote before.
 * 2. For each round and each concurrency: `--writes` writes through `write` (one statement and one
 *    commit each), then as many through the batcher, alternating which goes first. The rows are
 *    built as the disclosure service builds them (auditWriter.prepare, the rotation plan).
 * 3. Checks the audit chain over every row written, then drops the database.
 *
 * Prints a Markdown table on stdout, progress on stderr.
 */
import { cpus, loadavg } from 'node:os';
import { sql } from 'kysely';
import { openDatabase, type Db } from '../packages/server/src/db/database.js';
import { migrateToLatest } from '../packages/server/src/db/migrations.js';
import type { RecoveryKeysTable } from '../packages/server/src/db/schema.js';
import { systemClock } from '../packages/server/src/lib/clock.js';
import { createIdGenerator } from '../packages/server/src/lib/ids.js';
import { cryptoRandom } from '../packages/server/src/lib/random.js';
import { createAuditRepo } from '../packages/server/src/modules/audit/audit.repo.js';
import { createAuditService, createAuditWriter } from '../packages/server/src/modules/audit/audit.service.js';
import { createDisclosureWriteBatcher } from '../packages/server/src/modules/recovery-keys/disclosure-write-batcher.js';
import {
  createOneStatementDisclosure,
  type OneStatementDisclosure,
  type OneStatementDisclosureWrite,
} from '../packages/server/src/modules/recovery-keys/one-statement-disclosure.repo.js';
import { buildDisclosureRotation } from '../packages/server/src/modules/rotation/rotation.build.js';
import { statementsOf } from '../packages/server/test/support/sent-statements.js';
import { AUTOVACUUM_USAGE, autovacuumFlag, BENCH_AUTOVACUUM_NAPTIME, intOption } from './lib/options.js';
import { benchAutovacuum, type BenchAutovacuum } from './lib/bench-autovacuum.js';
import { median, runPool } from './lib/run-pool.js';
import { createScratchDatabase } from './lib/scratch-database.js';
import { postgresCpuSeconds } from './lib/postgres-cpu.js';

interface Options {
  adminUrl: string;
  writes: number;
  rounds: number;
  concurrency: number[];
  maxInFlight: number;
  /** Seconds between autovacuum runs during the bench; undefined: the server's own settings. */
  autovacuumNaptime: number | undefined;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    adminUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
    writes: 3000,
    rounds: 3,
    concurrency: [16, 64],
    maxInFlight: 1,
    autovacuumNaptime: BENCH_AUTOVACUUM_NAPTIME,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--admin-url':
        o.adminUrl = value() ?? o.adminUrl;
        break;
      case '--writes':
        o.writes = intOption(flag, value(), 1);
        break;
      case '--rounds':
        o.rounds = intOption(flag, value(), 1);
        break;
      case '--concurrency':
        o.concurrency = (value() ?? '').split(',').map((c) => intOption(flag, c, 1));
        break;
      case '--max-in-flight':
        o.maxInFlight = intOption(flag, value(), 1);
        break;
      default: {
        const naptime = autovacuumFlag(flag, value);
        if (naptime === null)
          throw new Error(
            `unknown option ${flag}\nusage: npx tsx bench/disclosure-writes.ts [--admin-url URL] [--writes N] ` +
              `[--rounds R] [--concurrency 16,64] [--max-in-flight 1] ${AUTOVACUUM_USAGE}`,
          );
        o.autovacuumNaptime = naptime;
      }
    }
  }
  return o;
}

const log = (message: string) => console.error(`[disclosure-writes ${new Date().toISOString()}] ${message}`);

/** `count` devices, each with one volume and one active key (dummy ciphertext: nothing decrypts it). */
async function seed(db: Db, organizationId: string, count: number): Promise<RecoveryKeysTable[]> {
  const at = new Date().toISOString();
  await db
    .insertInto('organizations')
    .values({ id: organizationId, name: 'write benchmark', created_at: at })
    .execute();
  await sql`insert into devices (id, organization_id, name, name_key, first_seen_at, last_seen_at, created_at)
    select 'dev_w' || n, ${organizationId}, 'W' || n, 'W' || n, ${at}, ${at}, ${at}
    from generate_series(1, ${count}::int) as n`.execute(db);
  await sql`insert into volumes (id, organization_id, device_id, volume_guid, volume_type, drive_letter,
      encryption_method, protection_status, created_at, updated_at)
    select 'vol_w' || n, ${organizationId}, 'dev_w' || n, md5(n::text), 'OperatingSystem', 'C:', 'XtsAes256', 'On', ${at}, ${at}
    from generate_series(1, ${count}::int) as n`.execute(db);
  await sql`insert into recovery_keys (id, organization_id, device_id, volume_id, key_id, key_id_prefix,
      source, status, password_ciphertext, password_wrapped_key, password_kek_id, created_at)
    select 'rk_w' || n, ${organizationId}, 'dev_w' || n, 'vol_w' || n, upper(md5(n::text)), upper(left(md5(n::text), 8)),
      'agent', 'active', 'x', 'x', 'x', ${at}
    from generate_series(1, ${count}::int) as n`.execute(db);
  await sql`analyze`.execute(db);
  return db.selectFrom('recovery_keys').selectAll().orderBy('id').execute();
}

interface Row {
  round: number;
  concurrency: number;
  mode: 'one commit each' | 'group commit';
  perSecond: number;
  databaseCpuMs: number | undefined;
  statements: number;
  load: number;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const database = await createScratchDatabase(o.adminUrl, 'bdevault_bench_writes');
  const db = openDatabase({ dialect: 'postgres', url: database.url });
  let autovacuum: BenchAutovacuum | undefined;
  try {
    autovacuum = await benchAutovacuum(o.adminUrl, o.autovacuumNaptime);
    log(autovacuum.description);
    await migrateToLatest(db);
    const ids = createIdGenerator(cryptoRandom);
    const auditWriter = createAuditWriter({ auditRepo: createAuditRepo(db), clock: systemClock, ids });
    const rotation = buildDisclosureRotation({ db, clock: systemClock, ids });
    const organizationId = ids('organization');
    const needed = o.rounds * o.concurrency.length * 2 * o.writes;
    log(`seeding ${needed} devices, volumes and keys`);
    const keys = await seed(db, organizationId, needed);
    let nextKey = 0;
    const actor = { type: 'api-token' as const, id: 'tok_bench' };
    const policy = { singleUsePasswords: true, deadlineDays: 7 };

    /** What the disclosure service writes for a first disclosure of `key` under single-use passwords. */
    const planned = (key: RecoveryKeysTable): OneStatementDisclosureWrite => {
      const at = new Date().toISOString();
      const stamped = { ...key, status: 'rotation_pending' as const, last_disclosed_at: at };
      const plan = rotation.plan({ key: stamped, actor, reason: 'write benchmark', policy })!;
      return {
        key,
        at,
        newStatus: 'rotation_pending',
        scope: { kind: 'all' },
        rotation: plan.row,
        audit: auditWriter.prepare({
          organizationId,
          actor,
          action: 'recovery-key.disclosed',
          target: { type: 'recovery-key', id: key.id },
          outcome: 'success',
          reason: 'write benchmark',
          details: { recoveryKeyId: key.key_id, deviceId: key.device_id, rotationRequestId: plan.row.id },
        }),
      };
    };

    const repo = createOneStatementDisclosure(db);
    const measure = async (
      round: number,
      concurrency: number,
      mode: Row['mode'],
      writer: OneStatementDisclosure,
    ): Promise<Row> => {
      const batch = keys.slice(nextKey, nextKey + o.writes);
      nextKey += o.writes;
      const cpu0 = postgresCpuSeconds();
      const started = performance.now();
      // Statements sent, counted on the client (each write or group is one).
      const sent = await statementsOf(() =>
        runPool(batch.length, concurrency, async (i) => {
          if (!(await writer.write(planned(batch[i]!))))
            throw new Error(`write of ${batch[i]!.id} fell back`);
        }),
      );
      const ms = performance.now() - started;
      const cpu1 = postgresCpuSeconds();
      const row: Row = {
        round,
        concurrency,
        mode,
        perSecond: (batch.length * 1000) / ms,
        databaseCpuMs:
          cpu0 === undefined || cpu1 === undefined ? undefined : ((cpu1 - cpu0) * 1000) / batch.length,
        statements: sent.length,
        load: loadavg()[0]!,
      };
      log(
        `round ${round}, ${concurrency} concurrent, ${mode}: ${row.perSecond.toFixed(0)} writes/s, ${row.statements} statements`,
      );
      return row;
    };

    const rows: Row[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      for (const concurrency of o.concurrency) {
        const single = () => measure(round, concurrency, 'one commit each', repo);
        const grouped = () =>
          measure(
            round,
            concurrency,
            'group commit',
            createDisclosureWriteBatcher(repo, { maxInFlight: o.maxInFlight }),
          );
        // Alternate which goes first, so a drift of the machine does not favour one.
        if (round % 2 === 1) rows.push(await single(), await grouped());
        else rows.push(await grouped(), await single());
      }
    }

    const verdict = await createAuditService({ auditRepo: createAuditRepo(db) }).verifyChain();
    if (!verdict.ok) throw new Error(`audit chain broken: ${JSON.stringify(verdict.firstProblem)}`);
    log(`audit chain verified: ${verdict.rowsChecked} rows`);

    const cpu = cpus()[0];
    console.log(
      `## ${new Date().toISOString().slice(0, 16)}Z — disclosure writes: one commit each against group commit`,
    );
    console.log('');
    console.log(
      `- Command: \`npx tsx bench/disclosure-writes.ts --writes ${o.writes} --rounds ${o.rounds} --concurrency ${o.concurrency.join(',')} --max-in-flight ${o.maxInFlight}\``,
    );
    console.log(`- Machine: ${cpus().length} × ${cpu?.model ?? '?'}, Node ${process.version}`);
    console.log(`- PostgreSQL ran with ${autovacuum.description}.`);
    console.log(`- Audit chain verified over ${verdict.rowsChecked} rows afterwards.`);
    console.log('');
    console.log(
      '| round | concurrent | mode | writes/s | PostgreSQL CPU ms per write | statements per write | load |',
    );
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| ${r.round} | ${r.concurrency} | ${r.mode} | ${r.perSecond.toFixed(0)} | ${r.databaseCpuMs?.toFixed(2) ?? '?'} | ${(r.statements / o.writes).toFixed(2)} | ${r.load.toFixed(2)} |`,
      );
    }
    for (const concurrency of o.concurrency) {
      for (const mode of ['one commit each', 'group commit'] as const) {
        const of = rows.filter((r) => r.concurrency === concurrency && r.mode === mode);
        console.log(
          `| **median** | ${concurrency} | ${mode} | **${median(of.map((r) => r.perSecond)).toFixed(0)}** | ${median(of.map((r) => r.databaseCpuMs ?? NaN)).toFixed(2)} | ${median(of.map((r) => r.statements / o.writes)).toFixed(2)} | |`,
        );
      }
    }
  } finally {
    await db.destroy();
    try {
      await autovacuum?.restore();
    } finally {
      await database.drop();
    }
  }
}

await main();
