// `bdevault admin migrate-store` copies a SQLite installation to PostgreSQL; keys still open there, the chain verifies.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, openVault } from '@bdevault/server';
import {
  bearer,
  createTestVault,
  enrollDevice,
  escrowPayload,
  fastHasher,
  newKey,
  randomKeyId,
  type TestVault,
} from '../../server/test/helpers.js';
import { createPgDatabase, PG_ADMIN_URL, postgresAvailable } from '../../server/test/support/postgres.js';
import { runBdevault } from './run-bdevault.js';

const pgUp = await postgresAvailable();
if (!pgUp) console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: migrate-store tests are skipped`);

describe.skipIf(!pgUp)('bdevault admin migrate-store', () => {
  let t: TestVault;
  let database: { url: string; drop(): Promise<void> };
  let sqlitePath: string;
  const keys: { keyId: string; password: string }[] = [];

  beforeAll(async () => {
    t = await createTestVault();
    const device = await enrollDevice(t, 'MIGRATE-PC');
    for (let i = 0; i < 3; i += 1) {
      const key = newKey();
      keys.push(key);
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/escrow/recovery-keys',
        headers: bearer(device.credential),
        payload: escrowPayload(randomKeyId(), [key], 'os'),
      });
      expect(res.statusCode).toBe(200);
    }
    const found = await t.app.inject({
      url: `/api/recovery-keys?keyId=${keys[0]!.keyId}`,
      headers: bearer(t.adminToken),
    });
    await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${found.json().recoveryKeys[0].id}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'before the move' },
    });
    sqlitePath = join(t.dir, 'bdevault.sqlite');
    // Stop the "server" first, as the command's help says.
    for (const app of [t.app]) await app.close();
    await t.vault.close();
    database = await createPgDatabase();
  }, 120_000);

  afterAll(async () => {
    await database?.drop();
    if (t) rmSync(t.dir, { recursive: true, force: true });
  });

  it('copies every table, verifies counts and the chain, and the keys open on PostgreSQL with the same KEK', async () => {
    const copied = await runBdevault([
      'admin',
      'migrate-store',
      '--from',
      sqlitePath,
      '--to',
      database.url,
      '--json',
    ]);
    expect(copied.code, copied.stderr).toBe(0);
    const result = JSON.parse(copied.stdout) as {
      tables: { name: string; rows: number }[];
      auditChain: { ok: boolean };
    };
    expect(result.auditChain.ok).toBe(true);
    const rows = Object.fromEntries(result.tables.map((r) => [r.name, r.rows]));
    expect(rows).toMatchObject({ organizations: 1, devices: 1, recovery_keys: 3, audit_chain_head: 1 });
    expect(rows.audit_log).toBeGreaterThan(4);
    // Parents before children.
    const order = result.tables.map((r) => r.name);
    expect(order.indexOf('devices')).toBeLessThan(order.indexOf('recovery_keys'));
    expect(order.indexOf('volumes')).toBeLessThan(order.indexOf('recovery_keys'));
    // The copied tables have planner statistics already. `last_analyze` records only an explicit
    // ANALYZE (autovacuum's go to `last_autoanalyze`), so only the copy itself can have set it.
    const target = new pg.Client({ connectionString: database.url });
    await target.connect();
    const analyzed = await target
      .query<{ relname: string }>(
        `select relname from pg_stat_user_tables where last_analyze is not null and relname = any($1)`,
        [['recovery_keys', 'devices', 'audit_log']],
      )
      .finally(() => target.end());
    expect(analyzed.rows.map((r) => r.relname).sort()).toEqual(['audit_log', 'devices', 'recovery_keys']);

    const verify = await runBdevault([
      'audit',
      'verify',
      '--database-url',
      database.url,
      '--data-dir',
      t.dir,
    ]);
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);

    // The ciphertexts moved as they were: the installation's KEK opens them on PostgreSQL.
    const vault = await openVault(
      loadConfig({ dataDir: t.dir, databaseUrl: database.url, logLevel: 'silent' }),
      {
        passwordHasher: fastHasher,
      },
    );
    try {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      const { rows: stored } = await client.query('select id, key_id from recovery_keys');
      await client.end();
      for (const key of keys) {
        const record = stored.find((r: { key_id: string }) => r.key_id === key.keyId);
        const disclosed = await vault.services.recoveryKeys.discloseRecoveryPassword({
          organizationId: t.organizationId,
          recoveryKeyRecordId: record.id,
          reason: 'after the move',
          actor: { type: 'cli', id: null },
        });
        expect(disclosed.recoveryPassword).toBe(key.password);
      }
      expect(await vault.services.audit.verifyChain()).toMatchObject({ ok: true });
    } finally {
      await vault.close();
    }
  });

  it('refuses a target that already holds an installation unless --force', async () => {
    const refused = await runBdevault(['admin', 'migrate-store', '--from', sqlitePath, '--to', database.url]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/already holds an installation; pass --force/);
    const forced = await runBdevault([
      'admin',
      'migrate-store',
      '--from',
      sqlitePath,
      '--to',
      database.url,
      '--force',
    ]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stdout).toMatch(/Audit chain verified on the target/);
  });

  it('refuses a missing source and a non-PostgreSQL target without touching anything', async () => {
    const missing = await runBdevault([
      'admin',
      'migrate-store',
      '--from',
      '/nonexistent/x.sqlite',
      '--to',
      database.url,
    ]);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/No SQLite database/);
    const notPg = await runBdevault(['admin', 'migrate-store', '--from', sqlitePath, '--to', 'mysql://x']);
    expect(notPg.code).not.toBe(0);
    expect(notPg.stderr).toMatch(/postgres:\/\//);
  });
});
