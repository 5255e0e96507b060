/**
 * PostgreSQL only: a disclosure's writes in one statement instead of a transaction of five (BEGIN,
 * the key UPDATE, the rotation INSERT, the audit INSERT, COMMIT). On PostgreSQL every statement is a
 * round trip, and round trips are most of what a disclosure costs (bench/RESULTS.md).
 *
 * The statement is a data-modifying CTE: it stamps the key, and only if that matched inserts the
 * rotation request and the audit row, all committed together or not at all. Its audit row is
 * linked into the chain at commit by the same trigger as every other row (migration 0011).
 *
 * It writes what the caller computed from the key as read just before (the audit row's digest
 * covers the key id, the device and the rotation request id), so the key must still be as read:
 * the UPDATE matches only the same status and device, and in the caller's scope. When it is not
 * (another disclosure marked it meanwhile, it was superseded), or another disclosure opened its
 * rotation request first (a unique violation on `open_key`, classified as a conflict), nothing is written and `write`
 * answers false: the caller then takes the transactional path, which handles every case.
 */
import { sql, type RawBuilder } from 'kysely';
import type { Executor } from '../../db/database.js';
import { classifyDatabaseFailure } from '../../lib/database-errors.js';
import type { RecoveryKeysTable, RotationRequestsTable } from '../../db/schema.js';
import { keyDeviceInScope } from '../access/access.repo.js';
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

export type OneStatementDisclosure = ReturnType<typeof createOneStatementDisclosure>;

/** `insert into <table> (<columns>) select <values> from k`: the row, only if the key was stamped. */
function insertIfStamped(table: string, row: object): RawBuilder<unknown> {
  const entries = Object.entries(row);
  // Every column written here is text (timestamps are ISO strings), so the untyped parameters
  // resolve to text and need no casts.
  return sql`insert into ${sql.table(table)} (${sql.join(entries.map(([c]) => sql.ref(c)))}) select ${sql.join(entries.map(([, v]) => sql`${v}`))} from k`;
}

export function createOneStatementDisclosure(db: Executor) {
  return {
    /** True when the disclosure is written (and committed); false when the caller must fall back. */
    async write(input: OneStatementDisclosureWrite): Promise<boolean> {
      const { key } = input;
      const inScope = keyDeviceInScope(input.scope, key.organization_id, 'recovery_keys.device_id');
      const rotation = input.rotation
        ? sql`, r as (${insertIfStamped('rotation_requests', input.rotation)})`
        : sql``;
      const statement = sql<{ written: string }>`with k as (
          update recovery_keys set last_disclosed_at = ${input.at}, status = ${input.newStatus}
          where organization_id = ${key.organization_id} and id = ${key.id}
            and status = ${key.status} and device_id = ${key.device_id} and ${inScope}
          returning id
        )${rotation}, a as (${insertIfStamped('audit_log', input.audit)})
        select count(*) as written from k`;
      try {
        const { rows } = await statement.execute(db);
        return Number(rows[0]?.written ?? 0) === 1;
      } catch (err) {
        // A lost race (the unique key on open_key, a serialization failure, a deadlock) rolled the
        // whole statement back: the transaction path takes it from there.
        if (classifyDatabaseFailure(err) === 'conflict') return false;
        throw err;
      }
    },
  };
}
