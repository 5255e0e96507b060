/**
 * PostgreSQL only: a disclosure's writes in one statement instead of a transaction of five (BEGIN,
 * the key UPDATE, the rotation INSERT, the audit INSERT, COMMIT). On PostgreSQL every statement is a
 * round trip, and round trips are most of what a disclosure costs (bench/RESULTS.md).
 *
 * The statement is a data-modifying CTE: it stamps the key, and only if that matched inserts the
 * rotation request and the audit row, all committed together or not at all. Its audit rows are
 * inserted already linked into the chain (`bdevault_audit_link_many`, migration 0014): the chain
 * head is taken once per statement, and held to its commit like the trigger of migration 0011
 * that links every other audited write's rows.
 *
 * It writes what the caller computed from the key as read just before (the audit row's digest
 * covers the key id, the device and the rotation request id), so the key must still be as read:
 * the UPDATE matches only the same status and device, and in the caller's scope. When it is not
 * (another disclosure marked it meanwhile, it was superseded), or another disclosure opened its
 * rotation request first (a unique violation on `open_key`, classified as a conflict), nothing is written and `write`
 * answers false: the caller then takes the transactional path, which handles every case.
 *
 * It never waits for a key row that another transaction holds: it skips it (`skip locked`) and
 * answers false for it. The group-commit batcher (disclosure-write-batcher.ts) writes one statement
 * at a time per server, so a statement waiting on one key would hold up every disclosure behind
 * it; the transaction path waits for that key alone.
 */
import { sql, type RawBuilder } from 'kysely';
import type { Executor } from '../../db/database.js';
import { jsonItems } from '../../db/json-items.js';
import { classifyDatabaseFailure } from '../../lib/database-errors.js';
import type { RecoveryKeysTable, RotationRequestsTable } from '../../db/schema.js';
import { perItemKeyScopes } from '../access/access.repo.js';
import type { AccessScope } from '../access/permissions.js';
import type { PendingAuditRow } from '../audit/audit.repo.js';

export interface OneStatementDisclosureWrite {
  /** The key as read before: the write applies only while its status and device are the same. */
  key: Pick<RecoveryKeysTable, 'id' | 'organization_id' | 'status' | 'device_id'>;
  at: string;
  /** The status the key gets (rotation_pending under single-use passwords). */
  newStatus: RecoveryKeysTable['status'];
  /** The caller's scope for `keys:disclose`, checked again by the write itself. */
  scope: AccessScope | undefined;
  rotation: RotationRequestsTable | undefined;
  audit: PendingAuditRow;
}

export interface OneStatementDisclosure {
  /** True when the disclosure is written (and committed); false when the caller must fall back. */
  write(input: OneStatementDisclosureWrite): Promise<boolean>;
}

export interface OneStatementDisclosureRepo extends OneStatementDisclosure {
  /**
   * Several disclosures of distinct keys in one statement and one commit (the group commit of
   * disclosure-write-batcher.ts): for each, whether it was written. Each is guarded on its own, as
   * by `write`; any error fails them all and is thrown as it is, conflicts included.
   */
  writeMany(inputs: readonly OneStatementDisclosureWrite[]): Promise<boolean[]>;
}

/** Every column any of the rows sets (the rows of one table are built alike; this is only a guard). */
function columnsOf(rows: readonly object[]): string[] {
  return [...new Set(rows.flatMap((row) => Object.keys(row)))];
}

/**
 * `insert into <table> (<columns>) select … from k, json_populate_record(…)`: for every stamped
 * key, the row its item carries in `k.<field>` (none where that is null), typed by the table itself.
 */
function insertCarriedRows(table: string, field: string, rows: readonly object[]): RawBuilder<unknown> {
  const columns = columnsOf(rows);
  return sql`insert into ${sql.table(table)} (${sql.join(columns.map((c) => sql.ref(c)))})
    select ${sql.join(columns.map((c) => sql.ref(`row.${c}`)))}
    from k cross join lateral json_populate_record(null::${sql.table(table)}, k.${sql.ref(field)}) as row
    where k.${sql.ref(field)} is not null
    order by k.n`;
}

/**
 * The CTEs that insert the audit rows of the stamped keys (`k`), in item order, already linked into
 * the chain: `bdevault_audit_link_many` (migration 0014) takes the chain head once for all of
 * them and moves it once, so each row is written once, not inserted and then updated by the
 * commit-time trigger (which leaves linked rows alone).
 */
function insertLinkedAuditRows(rows: readonly PendingAuditRow[]): RawBuilder<unknown> {
  const columns = columnsOf(rows);
  return sql`stamped as (
      select k.audit, (row_number() over (order by k.n))::int as ord from k
    ), links as (
      select * from bdevault_audit_link_many(array(select s.audit->>'entry_hash' from stamped as s order by s.ord))
    ), a as (
      insert into audit_log (${sql.join(columns.map((c) => sql.ref(c)))}, seq, prev_hash, hash)
      select ${sql.join(columns.map((c) => sql.ref(`row.${c}`)))}, l.link_seq, l.link_prev, l.link_hash
      from stamped as s
      join links as l on l.link_ord = s.ord
      cross join lateral json_populate_record(null::audit_log, s.audit) as row
      order by s.ord
    )`;
}

export function createOneStatementDisclosure(db: Executor): OneStatementDisclosureRepo {
  /**
   * The items travel as one JSON parameter, whatever their number. The key rows are locked in
   * key order before they are stamped, and a row another transaction holds is skipped (its item
   * answers false), so the statement neither waits on one key nor deadlocks with another group.
   * Scopes differ between callers: each distinct one is a condition of its own, chosen per item by
   * `scope_no`.
   */
  async function writeMany(inputs: readonly OneStatementDisclosureWrite[]): Promise<boolean[]> {
    if (inputs.length === 0) return [];
    if (new Set(inputs.map((input) => input.key.id)).size !== inputs.length) {
      throw new Error('writeMany: a key may appear only once per statement');
    }
    const scopes = perItemKeyScopes('recovery_keys.device_id');
    const items = inputs.map((input, n) => ({
      n,
      organization_id: input.key.organization_id,
      id: input.key.id,
      status: input.key.status,
      device_id: input.key.device_id,
      new_status: input.newStatus,
      at: input.at,
      scope_no: scopes.numberOf(input.key.organization_id, input.scope),
      rotation: input.rotation ?? null,
      audit: input.audit,
    }));
    const rotations = inputs.flatMap((input) => (input.rotation ? [input.rotation] : []));
    const rotation =
      rotations.length > 0
        ? sql`, r as (${insertCarriedRows('rotation_requests', 'rotation', rotations)})`
        : sql``;
    const statement = sql<{ n: number }>`with i as (${jsonItems(
      items,
      'n int, organization_id text, id text, status text, device_id text, new_status text, at text, scope_no int, rotation json, audit json',
    )}), locked as (
        select recovery_keys.id from recovery_keys join i
          on recovery_keys.organization_id = i.organization_id and recovery_keys.id = i.id
        order by recovery_keys.id
        for update of recovery_keys skip locked
      ), k as (
        update recovery_keys set last_disclosed_at = i.at, status = i.new_status
        from i
        where recovery_keys.id in (select id from locked)
          and recovery_keys.organization_id = i.organization_id and recovery_keys.id = i.id
          and recovery_keys.status = i.status and recovery_keys.device_id = i.device_id and ${scopes.condition('i.scope_no')}
        returning i.n, i.rotation, i.audit
      )${rotation}, ${insertLinkedAuditRows(inputs.map((input) => input.audit))}
      select n from k`;
    const { rows } = await statement.execute(db);
    const written = new Set(rows.map((row) => Number(row.n)));
    return inputs.map((_, n) => written.has(n));
  }

  return {
    writeMany,

    async write(input) {
      try {
        const [written] = await writeMany([input]);
        return written === true;
      } catch (err) {
        // A lost race (the unique key on open_key, a serialization failure, a deadlock) rolled the
        // whole statement back: the transaction path takes it from there.
        if (classifyDatabaseFailure(err) === 'conflict') return false;
        throw err;
      }
    },
  };
}
