/** The audit_log table and its chain head; rows are only ever inserted. */
import { PostgresAdapter, sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { AuditLogRow, Database } from '../../db/schema.js';
import { linkHash, type EntryContent } from './audit.chain.js';

/** A row as the writer hands it over: content and its digest; the repository links it. */
export type PendingAuditRow = EntryContent & { entry_hash: string };

/** What a reader narrows the log by; every field optional, all combined with AND. */
export interface AuditFilter {
  organizationId?: string;
  action?: string;
  /** Actions starting with this text. */
  actionPrefix?: string;
  outcome?: string;
  actorType?: string;
  /** Any of these actor ids (never empty: the service resolves a name to the ids it names). */
  actorIds?: readonly string[];
  targetType?: string;
  targetId?: string;
  /** Rows whose target is one of these (a device's own targets: see `deviceTargets`). */
  targets?: readonly { type: string; ids: readonly string[] }[];
  /** occurred_at ≥ from (UTC ISO text, as stored). */
  from?: string;
  /** occurred_at < to. */
  to?: string;
}

export interface AuditRowsQuery {
  filter: AuditFilter;
  order: 'asc' | 'desc';
  /** Rows strictly beyond this seq in the order's direction (after it ascending, before it descending). */
  beyondSeq?: number;
  /** Ascending walks stop here: rows appended after a walk began stay out of it. */
  upToSeq?: number;
  limit: number;
}

export interface AuditRepo {
  /**
   * Adds a row at the end of the chain, inside the caller's transaction.
   *
   * PostgreSQL: the row is inserted unlinked and a deferred trigger links it at commit (migration
   * 0011), so the chain head's row lock is held for the commit alone, never across a round trip to
   * this process: concurrent disclosures on several servers wait for each other only that long.
   * SQLite: the head is claimed and the link computed here; SQLite's single writer serializes it.
   */
  append(row: PendingAuditRow, trx: Executor): Promise<void>;
  head(trx?: Executor): Promise<{ seq: number; last_hash: string }>;
  /**
   * One page of rows matching the filter, in `seq` order or its reverse. Keyset paging on `seq`:
   * rows are linked in commit order (on PostgreSQL the head's lock is released only once the
   * commit is visible), so no row can appear later below a `seq` a reader has already passed.
   */
  rows(query: AuditRowsQuery, trx?: Executor): Promise<AuditLogRow[]>;
  /** Ids of the users, API tokens and devices called `name` (case-insensitive), at most 50. */
  actorIdsNamed(organizationId: string, name: string, trx?: Executor): Promise<string[]>;
  /** The targets that are about a device: itself, its recovery keys, rotation requests and cases. */
  deviceTargets(
    deviceId: string,
    trx?: Executor,
  ): Promise<{ type: 'device' | 'recovery-key' | 'rotation' | 'recovery-case'; ids: string[] }[]>;
  /** The distinct actions in one organization's log, sorted, at most `limit`. */
  actions(organizationId: string, limit: number, trx?: Executor): Promise<string[]>;
  hashExists(hash: string, trx?: Executor): Promise<boolean>;
}

/**
 * Whether the filter names a device or one target: few rows, best found through audit_log_target
 * and sorted. Both databases would otherwise walk the organization's whole log in seq order to
 * avoid that sort (SQLite keeps no statistics here to know better).
 */
function findsFewRows(f: AuditFilter): boolean {
  return f.targets !== undefined || (f.targetType !== undefined && f.targetId !== undefined);
}

/** The filter as one condition (undefined when it filters nothing). */
function filterCondition(
  eb: ExpressionBuilder<Database, 'audit_log'>,
  f: AuditFilter,
): Expression<SqlBool> | undefined {
  const all: Expression<SqlBool>[] = [];
  if (f.organizationId !== undefined) {
    // `|| ''` keeps the organization's indexes out of the choice when the target index should win.
    all.push(
      findsFewRows(f)
        ? sql<SqlBool>`(audit_log.organization_id || '') = ${f.organizationId}`
        : eb('audit_log.organization_id', '=', f.organizationId),
    );
  }
  if (f.action !== undefined) all.push(eb('audit_log.action', '=', f.action));
  if (f.actionPrefix !== undefined) {
    // substr, not LIKE: exact on both databases (SQLite's LIKE ignores case, and _ is a wildcard).
    const head = eb.fn<string>('substr', ['audit_log.action', eb.val(1), eb.val(f.actionPrefix.length)]);
    all.push(eb(head, '=', f.actionPrefix));
  }
  if (f.outcome !== undefined) all.push(eb('audit_log.outcome', '=', f.outcome));
  if (f.actorType !== undefined) all.push(eb('audit_log.actor_type', '=', f.actorType));
  if (f.actorIds !== undefined) all.push(eb('audit_log.actor_id', 'in', [...f.actorIds]));
  if (f.targetType !== undefined) all.push(eb('audit_log.target_type', '=', f.targetType));
  if (f.targetId !== undefined) all.push(eb('audit_log.target_id', '=', f.targetId));
  if (f.targets !== undefined) {
    const pairs = f.targets.filter((t) => t.ids.length > 0);
    all.push(
      pairs.length === 0
        ? sql<SqlBool>`1 = 0`
        : eb.or(
            pairs.map((t) =>
              eb.and([eb('audit_log.target_type', '=', t.type), eb('audit_log.target_id', 'in', [...t.ids])]),
            ),
          ),
    );
  }
  if (f.from !== undefined) all.push(eb('audit_log.occurred_at', '>=', f.from));
  if (f.to !== undefined) all.push(eb('audit_log.occurred_at', '<', f.to));
  return all.length === 0 ? undefined : eb.and(all);
}

export function createAuditRepo(db: Executor): AuditRepo {
  const linkedAtCommit = db.getExecutor().adapter instanceof PostgresAdapter;
  return {
    async append(row, trx) {
      if (linkedAtCommit) {
        await trx
          .insertInto('audit_log')
          .values({ ...row, seq: null, prev_hash: null, hash: null })
          .execute();
        return;
      }
      const tip = await trx
        .updateTable('audit_chain_head')
        .set((eb) => ({ seq: eb('seq', '+', 1) }))
        .where('id', '=', 1)
        .returning(['seq', 'last_hash'])
        .executeTakeFirstOrThrow();
      const hash = linkHash(tip.last_hash, row.entry_hash);
      await trx
        .insertInto('audit_log')
        .values({ ...row, seq: Number(tip.seq), prev_hash: tip.last_hash, hash })
        .execute();
      await trx.updateTable('audit_chain_head').set({ last_hash: hash }).where('id', '=', 1).execute();
    },
    async head(trx = db) {
      const row = await trx
        .selectFrom('audit_chain_head')
        .select(['seq', 'last_hash'])
        .where('id', '=', 1)
        .executeTakeFirstOrThrow();
      return { seq: Number(row.seq), last_hash: row.last_hash };
    },
    async rows({ filter, order, beyondSeq, upToSeq, limit }, trx = db) {
      let query = trx.selectFrom('audit_log').selectAll();
      if (beyondSeq !== undefined) query = query.where('seq', order === 'asc' ? '>' : '<', beyondSeq);
      if (upToSeq !== undefined) query = query.where('seq', '<=', upToSeq);
      query = query.where((eb) => filterCondition(eb, filter) ?? sql<SqlBool>`1 = 1`);
      // `seq + 0`: sorted after the lookup, not read in index order (see findsFewRows).
      const rows = await query
        .orderBy(findsFewRows(filter) ? sql`audit_log.seq + 0` : 'seq', order)
        .limit(limit)
        .execute();
      return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
    },
    async actorIdsNamed(organizationId, name, trx = db) {
      const key = name.toLowerCase();
      const rows = await trx
        .selectFrom('users')
        .select('users.id')
        .where((eb) =>
          eb.or([
            eb(eb.fn('lower', ['users.username']), '=', key),
            eb(eb.fn('lower', ['users.display_name']), '=', key),
          ]),
        )
        // Only people who act in this organization's log (former members too), so namesakes in
        // other organizations cannot crowd them out of the limit below (index on org, actor_id).
        .where((eb) =>
          eb.exists(
            eb
              .selectFrom('audit_log as al')
              .select('al.seq')
              .where('al.organization_id', '=', organizationId)
              .whereRef('al.actor_id', '=', 'users.id'),
          ),
        )
        .union(
          trx
            .selectFrom('api_tokens')
            .select('api_tokens.id')
            .where('api_tokens.organization_id', '=', organizationId)
            .where((eb) => eb(eb.fn('lower', ['api_tokens.name']), '=', key)),
        )
        .union(
          trx
            .selectFrom('devices')
            .select('devices.id')
            .where('devices.organization_id', '=', organizationId)
            .where('devices.name_key', '=', name.toUpperCase()),
        )
        .limit(50)
        .execute();
      return rows.map((r) => r.id);
    },
    async deviceTargets(deviceId, trx = db) {
      // Keys through their volumes: volumes are indexed by device, recovery keys by volume. No
      // organization here: ids are unique, and the log is narrowed to the caller's organization.
      const rows = await trx
        .selectFrom('recovery_keys')
        .select([sql<string>`'recovery-key'`.as('type'), 'recovery_keys.id'])
        .where('recovery_keys.volume_id', 'in', (eb) =>
          eb.selectFrom('volumes').select('volumes.id').where('volumes.device_id', '=', deviceId),
        )
        .unionAll(
          trx
            .selectFrom('rotation_requests')
            .select([sql<string>`'rotation'`.as('type'), 'rotation_requests.id'])
            .where('rotation_requests.device_id', '=', deviceId),
        )
        .unionAll(
          trx
            .selectFrom('recovery_cases')
            .select([sql<string>`'recovery-case'`.as('type'), 'recovery_cases.id'])
            .where('recovery_cases.device_id', '=', deviceId),
        )
        .execute();
      const ids = (type: string) => rows.filter((r) => r.type === type).map((r) => r.id);
      return [
        { type: 'device' as const, ids: [deviceId] },
        { type: 'recovery-key' as const, ids: ids('recovery-key') },
        { type: 'rotation' as const, ids: ids('rotation') },
        { type: 'recovery-case' as const, ids: ids('recovery-case') },
      ];
    },
    async actions(organizationId, limit, trx = db) {
      // A loose index scan: one index seek per distinct action (audit_log_org_action_seq), not a
      // pass over every row of the organization.
      const result = await sql<{ action: string }>`
        with recursive found(action, n) as (
          select min(action), 1 from audit_log where organization_id = ${organizationId}
          union all
          select (
            select min(a.action) from audit_log a
            where a.organization_id = ${organizationId} and a.action > found.action
          ), n + 1
          from found where found.action is not null and n < ${limit}
        )
        select action from found where action is not null`.execute(trx);
      return result.rows.map((r) => r.action);
    },
    async hashExists(hash, trx = db) {
      const row = await trx.selectFrom('audit_log').select('id').where('hash', '=', hash).executeTakeFirst();
      return row !== undefined;
    },
  };
}
