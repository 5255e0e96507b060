/**
 * Benchmark: which statements of a disclosure are worth batching across concurrent requests on
 * PostgreSQL (lib/statement-batcher.ts). See bench/README.md.
 *
 *   npx tsx bench/disclosure-batching.ts [--admin-url URL] [--disclosures 2000] [--rounds 4]
 *     [--concurrency 16] [--variants writes,all]
 *
 * One process, one fresh database, one vault; every variant discloses through the real disclosure
 * service (key read, counters, the write, routing) after authenticating with a real API token, as
 * the HTTP route does without HTTP. Variants differ only in which of those go through a batcher:
 *
 *   writes    only the disclosure write (group commit, as before the other batchers existed)
 *   all       token read, key read, counters, write and routing read
 *   tokens, reads, counters, routing: the write and that one
 *   none      nothing batched (one statement per step per disclosure)
 *
 * Rounds alternate the variants' order, so a drift of the machine does not favour one; every
 * disclosure is of a key no round disclosed before (its first disclosure: the one-statement write
 * with a rotation request). Reported per round and as medians: disclosures/s, CPU ms per
 * disclosure of this process and of PostgreSQL, statements per disclosure.
 *
 * Prints a Markdown table on stdout, progress on stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { AppDeps } from '../packages/server/src/deps.js';
import { loadConfig } from '../packages/server/src/lib/config.js';
import { createAccessRepo } from '../packages/server/src/modules/access/access.repo.js';
import { accountOf, createAuthenticator } from '../packages/server/src/modules/access/access.service.js';
import { buildAccess, buildRecoveryKeysService } from '../packages/server/src/modules/access/access.build.js';
import { createCounterBatcher } from '../packages/server/src/modules/access/counter-batcher.js';
import { createApiTokensRepo } from '../packages/server/src/modules/api-tokens/api-tokens.repo.js';
import { createTokenLookupBatcher } from '../packages/server/src/modules/api-tokens/token-lookup-batcher.js';
import { createEscrowRepo } from '../packages/server/src/modules/escrow/escrow.repo.js';
import { createIdentityRepo } from '../packages/server/src/modules/identity/identity.repo.js';
import { createNotificationSinks } from '../packages/server/src/modules/notifications/notifications.outbox.js';
import { createNotificationsRepo } from '../packages/server/src/modules/notifications/notifications.repo.js';
import { createRoutingReadBatcher } from '../packages/server/src/modules/notifications/routing-read-batcher.js';
import { createDisclosurePolicyRepo } from '../packages/server/src/modules/recovery-keys/disclosure-policy.repo.js';
import { createDisclosureReadBatcher } from '../packages/server/src/modules/recovery-keys/disclosure-read-batcher.js';
import { createDisclosureWriteBatcher } from '../packages/server/src/modules/recovery-keys/disclosure-write-batcher.js';
import { createOneStatementDisclosure } from '../packages/server/src/modules/recovery-keys/one-statement-disclosure.repo.js';
import { openVault, type Vault } from '../packages/server/src/vault.js';
import { statementsOf } from '../packages/server/test/support/sent-statements.js';
import { AUTOVACUUM_USAGE, autovacuumFlag, BENCH_AUTOVACUUM_NAPTIME, intOption } from './lib/options.js';
import { benchAutovacuum, type BenchAutovacuum } from './lib/bench-autovacuum.js';
import { median, runPool } from './lib/run-pool.js';
import { createScratchDatabase } from './lib/scratch-database.js';
import { postgresCpuSeconds } from './lib/postgres-cpu.js';

const STEPS = ['tokens', 'reads', 'counters', 'routing'] as const;
type Step = (typeof STEPS)[number];
const VARIANTS: Record<string, { writes: boolean; steps: readonly Step[] }> = {
  none: { writes: false, steps: [] },
  writes: { writes: true, steps: [] },
  all: { writes: true, steps: STEPS },
  ...Object.fromEntries(STEPS.map((step) => [step, { writes: true, steps: [step] }])),
};

interface Options {
  adminUrl: string;
  disclosures: number;
  rounds: number;
  concurrency: number;
  variants: string[];
  /** Seconds between autovacuum runs during the bench; undefined: the server's own settings. */
  autovacuumNaptime: number | undefined;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    adminUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
    disclosures: 2000,
    rounds: 4,
    concurrency: 16,
    variants: ['writes', 'all'],
    autovacuumNaptime: BENCH_AUTOVACUUM_NAPTIME,
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = (): string | undefined => argv[++i];
    switch (flag) {
      case '--admin-url':
        o.adminUrl = value() ?? o.adminUrl;
        break;
      case '--disclosures':
        o.disclosures = intOption(flag, value(), 1);
        break;
      case '--rounds':
        o.rounds = intOption(flag, value(), 1);
        break;
      case '--concurrency':
        o.concurrency = intOption(flag, value(), 1);
        break;
      case '--variants':
        o.variants = (value() ?? '').split(',');
        for (const v of o.variants) if (!(v in VARIANTS)) throw new Error(`unknown variant ${v}`);
        break;
      default: {
        const naptime = autovacuumFlag(flag, value);
        if (naptime === null)
          throw new Error(
            `unknown option ${flag}\nusage: npx tsx bench/disclosure-batching.ts [--admin-url URL] ` +
              `[--disclosures N] [--rounds R] [--concurrency C] [--variants ${Object.keys(VARIANTS).join(',')}] ${AUTOVACUUM_USAGE}`,
          );
        o.autovacuumNaptime = naptime;
      }
    }
  }
  return o;
}

const log = (message: string) =>
  console.error(`[disclosure-batching ${new Date().toISOString()}] ${message}`);

/** `count` devices with one volume and one active key each, the passwords sealed as escrow seals them. */
async function seedKeys(vault: Vault, organizationId: string, count: number): Promise<string[]> {
  const { envelope, ids } = vault.deps;
  const at = new Date().toISOString();
  const ks: { id: string; cipher: string; wrapped: string; kek: string }[] = [];
  for (let n = 0; n < count; n++) {
    const id = ids('recoveryKey');
    const sealed = envelope.seal(
      { organizationId, recordId: id, purpose: 'recovery-password' },
      `${String(n % 1000).padStart(6, '0')}-000000-000000-000000-000000-000000-000000-000000`,
    );
    ks.push({ id, cipher: sealed.ciphertext, wrapped: sealed.wrappedKey, kek: sealed.kekId });
  }
  await sql`insert into devices (id, organization_id, name, name_key, first_seen_at, last_seen_at, created_at)
    select 'dev_b' || n, ${organizationId}, 'B' || n, 'B' || n, ${at}, ${at}, ${at}
    from generate_series(1, ${count}::int) as n`.execute(vault.db);
  await sql`insert into volumes (id, organization_id, device_id, volume_guid, volume_type, drive_letter,
      encryption_method, protection_status, created_at, updated_at)
    select 'vol_b' || n, ${organizationId}, 'dev_b' || n, md5(n::text), 'os', 'C:', 'XtsAes256', 'On', ${at}, ${at}
    from generate_series(1, ${count}::int) as n`.execute(vault.db);
  await sql`insert into recovery_keys (id, organization_id, device_id, volume_id, key_id, key_id_prefix,
      source, status, password_ciphertext, password_wrapped_key, password_kek_id, created_at)
    select u.id, ${organizationId}, 'dev_b' || u.n, 'vol_b' || u.n, upper(md5(u.n::text)), upper(left(md5(u.n::text), 8)),
      'agent', 'active', u.cipher, u.wrapped, u.kek, ${at}
    from unnest(${ks.map((k) => k.id)}::text[], ${ks.map((k) => k.cipher)}::text[],
      ${ks.map((k) => k.wrapped)}::text[], ${ks.map((k) => k.kek)}::text[]) with ordinality as u(id, cipher, wrapped, kek, n)`.execute(
    vault.db,
  );
  await sql`analyze`.execute(vault.db);
  return ks.map((k) => k.id);
}

/** The deps of one variant: the vault's, with each batchable step batched or not. */
function depsOf(vault: Vault, variant: { writes: boolean; steps: readonly Step[] }): AppDeps {
  const { db } = vault;
  const on = (step: Step) => variant.steps.includes(step);
  const oneStatement = createOneStatementDisclosure(db);
  const notificationsRepo = createNotificationsRepo(db);
  return {
    ...vault.deps,
    disclosureWrites: variant.writes ? createDisclosureWriteBatcher(oneStatement) : oneStatement,
    disclosureReads: on('reads')
      ? createDisclosureReadBatcher(createDisclosurePolicyRepo(db))
      : createDisclosurePolicyRepo(db),
    rateCounters: on('counters') ? createCounterBatcher(createAccessRepo(db)) : createAccessRepo(db),
    tokenLookups: on('tokens') ? createTokenLookupBatcher(createApiTokensRepo(db)) : createApiTokensRepo(db),
    events: createNotificationSinks({
      db,
      clock: vault.deps.clock,
      ids: vault.deps.ids,
      dispatcher: { kick: () => undefined },
      routingReads: on('routing') ? createRoutingReadBatcher(notificationsRepo) : notificationsRepo,
    }).events,
  };
}

interface Row {
  round: number;
  variant: string;
  perSecond: number;
  processCpuMs: number;
  databaseCpuMs: number | undefined;
  statements: number;
  load: number;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const database = await createScratchDatabase(o.adminUrl, 'bdevault_bench_batching');
  const dir = mkdtempSync(join(tmpdir(), 'bdevault-bench-batching-'));
  let opened: Vault | undefined;
  let autovacuum: BenchAutovacuum | undefined;
  try {
    autovacuum = await benchAutovacuum(o.adminUrl, o.autovacuumNaptime);
    log(autovacuum.description);
    const vault = await openVault(
      loadConfig({ dataDir: dir, logLevel: 'silent', databaseUrl: database.url }),
    );
    opened = vault;
    const first = await vault.services.identity.bootstrapFirstOrganization({
      organizationName: 'batching bench',
    });
    if (!first) throw new Error('bootstrap did not run on an empty database');
    const { organizationId } = first;
    const needed = o.rounds * o.variants.length * o.disclosures;
    log(`seeding ${needed} devices, volumes and keys`);
    const keys = await seedKeys(vault, organizationId, needed);
    // 20 disclosures per account, as bench/vault.ts: concurrent ones come from different accounts.
    // Each measurement has accounts (and addresses) of its own, so none reaches a limit.
    const accounts = Math.ceil(o.disclosures / 20);
    const measurements = o.rounds * o.variants.length;
    log(`issuing ${accounts * measurements} API tokens`);
    const tokens: string[] = [];
    for (let n = 0; n < accounts * measurements; n++) {
      const token = await vault.services.apiTokens.createApiToken({
        organizationId,
        name: `bench ${n}`,
        permissions: ['keys:disclose'],
        creatorPermissions: undefined,
        actor: { type: 'cli', id: null },
      });
      tokens.push(token.token);
    }
    let nextKey = 0;
    let measured = 0;

    const measure = async (round: number, variant: string): Promise<Row> => {
      const deps = depsOf(vault, VARIANTS[variant]!);
      const service = buildRecoveryKeysService(deps);
      const authenticator = createAuthenticator({
        ...deps,
        identityRepo: createIdentityRepo(deps.db, { sessionIdleMinutes: 60 }),
        apiTokensRepo: createApiTokensRepo(deps.db),
        escrowRepo: createEscrowRepo(deps.db),
        ...buildAccess(deps),
      });
      const batch = keys.slice(nextKey, nextKey + o.disclosures);
      nextKey += o.disclosures;
      const firstAccount = accounts * measured++;
      const cpu0 = process.cpuUsage();
      const db0 = postgresCpuSeconds();
      const started = performance.now();
      const sent = await statementsOf(() =>
        runPool(batch.length, o.concurrency, async (i) => {
          const account = firstAccount + (i % accounts);
          const principal = await authenticator.fromBearerToken(tokens[account]!);
          if (!principal) throw new Error('the bench token was refused');
          await authenticator.assertActive?.(principal, `req_bench_${i}`);
          const disclosed = await service.discloseRecoveryPassword({
            organizationId,
            recoveryKeyRecordId: batch[i]!,
            reason: `batching bench ${i}`,
            actor: { type: 'api-token', id: principal.kind === 'api-token' ? principal.apiTokenId : null },
            account: accountOf(principal),
            address: `127.0.${Math.floor(account / 250)}.${(account % 250) + 1}`,
            scope: { kind: 'all' },
          });
          if (!disclosed.recoveryPassword.endsWith('-000000')) throw new Error('wrong password');
        }),
      );
      const ms = performance.now() - started;
      const cpu = process.cpuUsage(cpu0);
      const db1 = postgresCpuSeconds();
      const row: Row = {
        round,
        variant,
        perSecond: (batch.length * 1000) / ms,
        processCpuMs: (cpu.user + cpu.system) / 1000 / batch.length,
        databaseCpuMs:
          db0 === undefined || db1 === undefined ? undefined : ((db1 - db0) * 1000) / batch.length,
        statements: sent.length / batch.length,
        load: loadavg()[0]!,
      };
      log(
        `round ${round}, ${variant}: ${row.perSecond.toFixed(0)}/s, ${row.statements.toFixed(2)} statements per disclosure`,
      );
      return row;
    };

    const rows: Row[] = [];
    for (let round = 1; round <= o.rounds; round++) {
      const order = round % 2 === 1 ? o.variants : [...o.variants].reverse();
      for (const variant of order) rows.push(await measure(round, variant));
    }
    const verdict = await vault.services.audit.verifyChain();
    if (!verdict.ok) throw new Error(`audit chain broken: ${JSON.stringify(verdict.firstProblem)}`);
    log(`audit chain verified: ${verdict.rowsChecked} rows`);

    console.log(`## ${new Date().toISOString().slice(0, 16)}Z — disclosure batching: which steps to batch`);
    console.log('');
    console.log(
      `- Command: \`npx tsx bench/disclosure-batching.ts --disclosures ${o.disclosures} --rounds ${o.rounds} --concurrency ${o.concurrency} --variants ${o.variants.join(',')}\``,
    );
    console.log(`- Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}`);
    console.log(`- PostgreSQL ran with ${autovacuum.description}.`);
    console.log(`- Audit chain verified over ${verdict.rowsChecked} rows afterwards.`);
    console.log('');
    console.log(
      '| round | variant | disclosures/s | CPU ms per disclosure: this process | PostgreSQL | statements per disclosure | load |',
    );
    console.log('|---|---|---|---|---|---|---|');
    for (const r of rows) {
      console.log(
        `| ${r.round} | ${r.variant} | ${r.perSecond.toFixed(0)} | ${r.processCpuMs.toFixed(2)} | ${r.databaseCpuMs?.toFixed(2) ?? '?'} | ${r.statements.toFixed(2)} | ${r.load.toFixed(2)} |`,
      );
    }
    for (const variant of o.variants) {
      const of = rows.filter((r) => r.variant === variant);
      console.log(
        `| **median** | ${variant} | **${median(of.map((r) => r.perSecond)).toFixed(0)}** | ${median(of.map((r) => r.processCpuMs)).toFixed(2)} | ${median(of.map((r) => r.databaseCpuMs ?? NaN)).toFixed(2)} | ${median(of.map((r) => r.statements)).toFixed(2)} | |`,
      );
    }
  } finally {
    await opened?.close();
    rmSync(dir, { recursive: true, force: true });
    try {
      await autovacuum?.restore();
    } finally {
      await database.drop();
    }
  }
}

await main();
