// Device-name prefix search must use an index on every database, or it scans the whole organization.
import { sql } from 'kysely';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createTestVault, type TestVault } from './helpers.js';

let t: TestVault;
beforeEach(async () => {
  t = await createTestVault();
});
afterEach(async () => {
  await t.close();
});

it('plans a name-prefix search as an index range, not a scan', async () => {
  // Enough rows, and fresh statistics, that the planner's choice reflects a real fleet.
  const now = new Date().toISOString();
  const rows = Array.from({ length: 2000 }, (_, i) => ({
    id: `dev_bench${String(i).padStart(8, '0')}`,
    organization_id: t.organizationId,
    name: `DESKTOP-${i}`,
    name_key: `DESKTOP-${i}`,
    dns_name: null,
    os: null,
    serial_number: null,
    registered_owner: null,
    owner_user_id: null,
    first_seen_at: now,
    last_seen_at: now,
    created_at: now,
    deleted_at: null,
  }));
  for (let i = 0; i < rows.length; i += 200) {
    await t.vault.db
      .insertInto('devices')
      .values(rows.slice(i, i + 200))
      .execute();
  }
  await sql`analyze`.execute(t.vault.db);
  const query = t.vault.db
    .selectFrom('devices')
    .selectAll()
    .where('organization_id', '=', t.organizationId)
    .where(sql<boolean>`name_key like ${'DESKTOP-4%'} escape '\\'`)
    .compile();
  const plan = await t.vault.db.transaction().execute(async (trx) => {
    if (t.config.database.dialect === 'postgres') {
      const rows = await trx.executeQuery<Record<string, string>>({
        ...query,
        sql: `explain ${query.sql}`,
      });
      return rows.rows.map((r) => Object.values(r).join(' ')).join('\n');
    }
    const rows = await trx.executeQuery<{ detail: string }>({
      ...query,
      sql: `explain query plan ${query.sql}`,
    });
    return rows.rows.map((r) => r.detail).join('\n');
  });
  expect(plan).toContain('devices_org_name_prefix');
});
