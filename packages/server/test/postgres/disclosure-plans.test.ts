// The batched statements of a disclosure (one-statement-disclosure.repo.ts, disclosure-policy.repo.ts,
// notifications.repo.ts) carry their items as one JSON parameter, which PostgreSQL guesses at 100
// rows whatever it holds. With that guess the disclosure write once hash-joined a seq scan of all of
// `recovery_keys` on every statement, on installations of up to tens of thousands of keys: a cost
// that grew with the table and with every dead row version until the next vacuum (bench/RESULTS.md,
// 2026-12-05). These tests ask PostgreSQL for the plans of the statements a real burst of
// disclosures sends, on a vault with a few thousand keys and the statistics autovacuum would give
// it, and require that the large tables are reached through an index.
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { createNotificationsRepo } from '../../src/modules/notifications/notifications.repo.js';
import { createDisclosurePolicyRepo } from '../../src/modules/recovery-keys/disclosure-policy.repo.js';
import { PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';
import { sentStatementsOf, type SentStatement } from '../support/sent-statements.js';
import {
  discloseAllAtOnce,
  escrowKeysOnNewDevice,
  onFreshPostgresVault,
  type TestVault,
} from '../helpers.js';

const pgUp = await postgresAvailable();
if (!pgUp) console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the disclosure plan tests are skipped`);

/** Tables that grow with the fleet: a statement for a few keys must not read them whole. */
const LARGE_TABLES = ['recovery_keys', 'devices', 'volumes'];
const SEEDED_DEVICES = 3000;

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

function seqScannedTables(node: PlanNode): string[] {
  const own = node['Node Type'] === 'Seq Scan' && node['Relation Name'] ? [node['Relation Name']] : [];
  return [...own, ...(node.Plans ?? []).flatMap(seqScannedTables)];
}

describe.skipIf(!pgUp)('the plans of batched disclosure statements on PostgreSQL', () => {
  let t: TestVault;
  onFreshPostgresVault((vault) => (t = vault));

  /**
   * The large tables PostgreSQL would seq-scan for `statement`, without running it, in the plan
   * made for its values and in the generic plan a prepared statement settles on after five runs.
   */
  async function seqScansOf(statement: SentStatement): Promise<{ custom: string[]; generic: string[] }> {
    const target = t.config.database;
    if (target.dialect !== 'postgres') throw new Error('a PostgreSQL vault was expected');
    const client = new pg.Client({ connectionString: target.url });
    await client.connect();
    const largeOnes = (rows: { 'QUERY PLAN': [{ Plan: PlanNode }] }[]) =>
      seqScannedTables(rows[0]!['QUERY PLAN'][0].Plan).filter((table) => LARGE_TABLES.includes(table));
    try {
      const custom = await client.query(`explain (format json) ${statement.text}`, statement.values);
      await client.query(`prepare probe as ${statement.text}`);
      await client.query('set plan_cache_mode = force_generic_plan');
      // EXPLAIN EXECUTE takes no bound parameters: the values go in as literals.
      const literals = statement.values
        .map((value) => (value === null ? 'null' : client.escapeLiteral(String(value))))
        .join(', ');
      const generic = await client.query(`explain (format json) execute probe(${literals})`);
      return { custom: largeOnes(custom.rows), generic: largeOnes(generic.rows) };
    } finally {
      await client.end();
    }
  }

  /** A fleet of devices with one volume and one key each, then the statistics autovacuum would give it. */
  async function seedFleet(): Promise<void> {
    const at = new Date().toISOString();
    const org = t.organizationId;
    await sql`insert into devices (id, organization_id, name, name_key, first_seen_at, last_seen_at, created_at)
      select 'dev_plan' || n, ${org}, 'PLAN' || n, 'PLAN' || n, ${at}, ${at}, ${at}
      from generate_series(1, ${SEEDED_DEVICES}::int) as n`.execute(t.vault.db);
    await sql`insert into volumes (id, organization_id, device_id, volume_guid, volume_type, drive_letter,
        encryption_method, protection_status, created_at, updated_at)
      select 'vol_plan' || n, ${org}, 'dev_plan' || n, md5(n::text), 'os', 'C:', 'XtsAes256', 'On', ${at}, ${at}
      from generate_series(1, ${SEEDED_DEVICES}::int) as n`.execute(t.vault.db);
    // Ciphertexts of a real one's length: the table's size in pages is what a seq scan costs.
    await sql`insert into recovery_keys (id, organization_id, device_id, volume_id, key_id, key_id_prefix,
        source, status, password_ciphertext, password_wrapped_key, password_kek_id, created_at)
      select 'rk_plan' || n, ${org}, 'dev_plan' || n, 'vol_plan' || n, upper(md5(n::text)),
        upper(left(md5(n::text), 8)), 'agent', 'active', repeat('c', 160), repeat('w', 120), 'kek_plan', ${at}
      from generate_series(1, ${SEEDED_DEVICES}::int) as n`.execute(t.vault.db);
    // What autovacuum leaves: it analyzes a table after 50 changes and 10% more, so the fleet's
    // tables have statistics and a table of a few organizations never gets any (PostgreSQL then
    // guesses hundreds of rows for it, which is what kept the batch's guess at 100 rows).
    await sql`analyze devices, volumes, recovery_keys`.execute(t.vault.db);
  }

  it('the batched write, key read and routing read reach the large tables through their indexes', async () => {
    const keys = await escrowKeysOnNewDevice(t, 12);
    await seedFleet();
    const seeded = Array.from({ length: 6 }, (_, n) => n + 1);

    const sent = await sentStatementsOf(async () => {
      const { responses } = await discloseAllAtOnce(
        t,
        keys.map((k) => k.id),
        'plan test',
      );
      expect(responses.map((r) => r.statusCode)).toEqual(keys.map(() => 200));
      // The reads are batched only while others are in flight: called directly, they always are.
      await createDisclosurePolicyRepo(t.vault.db).findForKeys(
        seeded.map((n) => ({
          organizationId: t.organizationId,
          keyRecordId: `rk_plan${n}`,
          scope: undefined,
        })),
      );
      await createNotificationsRepo(t.vault.db).routingMany(
        seeded.map((n) => ({ organizationId: t.organizationId, deviceId: `dev_plan${n}` })),
      );
    });

    const batched = sent.filter((s) => s.text.includes('json_to_recordset'));
    const kinds = {
      write: batched.filter((s) => s.text.includes('update recovery_keys')),
      keyRead: batched.filter((s) => s.text.includes('disclosure_alert_threshold')),
      routingRead: batched.filter((s) => s.text.includes('security_addresses')),
    };
    const seqScans: Record<string, { custom: string[]; generic: string[] }[]> = {};
    for (const [kind, statements] of Object.entries(kinds)) {
      expect(statements.length, kind).toBeGreaterThan(0);
      seqScans[kind] = [];
      for (const statement of statements) seqScans[kind].push(await seqScansOf(statement));
    }
    const none = Object.fromEntries(
      Object.entries(kinds).map(([kind, statements]) => [
        kind,
        statements.map(() => ({ custom: [], generic: [] })),
      ]),
    );
    expect(seqScans).toEqual(none);
  });
});
