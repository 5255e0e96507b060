/** Device events from the agent, the agent's last check-in, and the device timeline's sources. */
import { sql, type Expression, type SqlBool } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { DeviceAgentStatusTable, DeviceEventsTable } from '../../db/schema.js';

export type DeviceEventRow = DeviceEventsTable;

export const DISCLOSED_ACTION = 'recovery-key.disclosed';

/** One timeline entry as a source returns it: a time, a kind, the row's id, and flat details. */
export interface TimelineRow {
  at: string;
  kind: TimelineKind;
  id: string;
  details: Record<string, string | number | boolean | null>;
}

export type TimelineKind =
  | 'key.escrowed'
  | 'key.superseded'
  | 'key.disclosed'
  | 'rotation.requested'
  | 'rotation.delivered'
  | 'rotation.completed'
  | 'rotation.failed'
  | 'rotation.overdue'
  | 'agent.event';

/** Position in the merged order (time, then kind, then id): entries after it come next. */
export interface TimelineCursor {
  at: string;
  kind: string;
  id: string;
}

export interface TimelinePageRequest {
  organizationId: string;
  deviceId: string;
  order: 'asc' | 'desc';
  after: TimelineCursor | undefined;
  limit: number;
}

export interface DeviceEventsRepo {
  /** Stores a record unless the device already sent it; true when it was new. */
  insertIfNew(row: DeviceEventRow, trx?: Executor): Promise<boolean>;
  /** Events of the device that occurred at or after `since`, oldest first. */
  eventsForDevice(
    organizationId: string,
    deviceId: string,
    since: string,
    limit: number,
    trx?: Executor,
  ): Promise<DeviceEventRow[]>;
  /** The device's newest `limit` events since `since`, newest first (what a recovery case shows). */
  latestEventsForDevice(
    organizationId: string,
    deviceId: string,
    since: string,
    limit: number,
    trx?: Executor,
  ): Promise<DeviceEventRow[]>;
  upsertAgentStatus(row: DeviceAgentStatusTable, trx?: Executor): Promise<void>;
  findAgentStatus(deviceId: string, trx?: Executor): Promise<DeviceAgentStatusTable | undefined>;
  /** Disclosures of the device's keys since `since` (the audit log is the record of them). */
  countDisclosures(organizationId: string, deviceId: string, since: string, trx?: Executor): Promise<number>;
  /** Devices in scope with at least `minimum` disclosures since `since`, most disclosures first. */
  /** One page of the device's timeline, merged from every source in (time, kind, id) order. */
  timelinePage(request: TimelinePageRequest, trx?: Executor): Promise<TimelineRow[]>;
}

/**
 * The keyset condition for a source whose entries all have one kind: strictly after the cursor in
 * the merged (time, kind, id) order, so a page boundary inside equal timestamps loses nothing.
 */
function afterCursor(
  kind: string,
  atColumn: string,
  idColumn: string,
  cursor: TimelineCursor | undefined,
  order: 'asc' | 'desc',
): Expression<SqlBool> {
  if (!cursor) return sql<SqlBool>`1 = 1`;
  const at = sql.ref(atColumn);
  const id = sql.ref(idColumn);
  const beyond = order === 'desc' ? sql.raw('<') : sql.raw('>');
  const kindBeyond = order === 'desc' ? kind < cursor.kind : kind > cursor.kind;
  if (kind === cursor.kind) {
    return sql<SqlBool>`(${at} ${beyond} ${cursor.at} or (${at} = ${cursor.at} and ${id} ${beyond} ${cursor.id}))`;
  }
  return kindBeyond
    ? sql<SqlBool>`(${at} ${beyond} ${cursor.at} or ${at} = ${cursor.at})`
    : sql<SqlBool>`${at} ${beyond} ${cursor.at}`;
}

export function createDeviceEventsRepo(db: Executor): DeviceEventsRepo {
  return {
    async insertIfNew(row, trx = db) {
      const result = await trx
        .insertInto('device_events')
        .values(row)
        .onConflict((oc) => oc.columns(['device_id', 'record_id']).doNothing())
        .executeTakeFirst();
      return Number(result.numInsertedOrUpdatedRows ?? 0) === 1;
    },
    async eventsForDevice(organizationId, deviceId, since, limit, trx = db) {
      const rows = await trx
        .selectFrom('device_events')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('device_id', '=', deviceId)
        .where('occurred_at', '>=', since)
        .orderBy('occurred_at')
        .orderBy('record_id')
        .limit(limit)
        .execute();
      // PostgreSQL returns bigint as text.
      return rows.map((r) => ({ ...r, record_id: Number(r.record_id) }));
    },
    async latestEventsForDevice(organizationId, deviceId, since, limit, trx = db) {
      const rows = await trx
        .selectFrom('device_events')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('device_id', '=', deviceId)
        .where('occurred_at', '>=', since)
        .orderBy('occurred_at', 'desc')
        .orderBy('record_id', 'desc')
        .limit(limit)
        .execute();
      return rows.map((r) => ({ ...r, record_id: Number(r.record_id) }));
    },
    async upsertAgentStatus(row, trx = db) {
      await trx
        .insertInto('device_agent_status')
        .values(row)
        .onConflict((oc) =>
          oc.column('device_id').doUpdateSet({
            agent_version: row.agent_version,
            last_check_in_at: row.last_check_in_at,
          }),
        )
        .execute();
    },
    async findAgentStatus(deviceId, trx = db) {
      return trx
        .selectFrom('device_agent_status')
        .selectAll()
        .where('device_id', '=', deviceId)
        .executeTakeFirst();
    },
    async countDisclosures(organizationId, deviceId, since, trx = db) {
      const row = await trx
        .selectFrom('audit_log as a')
        .innerJoin('recovery_keys as k', 'k.id', 'a.target_id')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('a.organization_id', '=', organizationId)
        .where('a.action', '=', DISCLOSED_ACTION)
        .where('a.target_type', '=', 'recovery-key')
        .where('a.occurred_at', '>=', since)
        .where('k.device_id', '=', deviceId)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async timelinePage({ organizationId, deviceId, order, after, limit }, trx = db) {
      const take = limit + 1;
      const keys = () =>
        trx
          .selectFrom('recovery_keys as k')
          .innerJoin('volumes as v', 'v.id', 'k.volume_id')
          .where('k.organization_id', '=', organizationId)
          .where('k.device_id', '=', deviceId);
      const rotations = () =>
        trx
          .selectFrom('rotation_requests as r')
          .innerJoin('recovery_keys as k', 'k.id', 'r.recovery_key_id')
          .leftJoin('recovery_keys as nk', 'nk.id', 'r.new_recovery_key_id')
          .where('r.organization_id', '=', organizationId)
          .where('r.device_id', '=', deviceId)
          .select([
            'r.id',
            'r.status',
            'r.trigger',
            'r.due_at',
            'r.failure_reason',
            'k.key_id',
            'nk.key_id as new_key_id',
          ]);

      const escrowed = keys()
        .select(['k.id', 'k.key_id', 'k.source', 'v.volume_guid', 'k.created_at as at'])
        .where(afterCursor('key.escrowed', 'k.created_at', 'k.id', after, order))
        .orderBy('k.created_at', order)
        .orderBy('k.id', order)
        .limit(take)
        .execute();
      const superseded = keys()
        .select(['k.id', 'k.key_id', 'v.volume_guid', 'k.superseded_at as at'])
        .where('k.superseded_at', 'is not', null)
        .where(afterCursor('key.superseded', 'k.superseded_at', 'k.id', after, order))
        .orderBy('k.superseded_at', order)
        .orderBy('k.id', order)
        .limit(take)
        .execute();
      const disclosed = trx
        .selectFrom('audit_log as a')
        .innerJoin('recovery_keys as k', 'k.id', 'a.target_id')
        .select([
          'a.id',
          'a.occurred_at as at',
          'a.actor_type',
          'a.actor_id',
          'a.reason',
          'a.details',
          'k.key_id',
        ])
        .where('a.organization_id', '=', organizationId)
        .where('a.action', '=', DISCLOSED_ACTION)
        .where('a.target_type', '=', 'recovery-key')
        .where('k.device_id', '=', deviceId)
        .where(afterCursor('key.disclosed', 'a.occurred_at', 'a.id', after, order))
        .orderBy('a.occurred_at', order)
        .orderBy('a.id', order)
        .limit(take)
        .execute();
      const rotationStep = (
        kind: TimelineKind,
        column: 'requested_at' | 'delivered_at' | 'completed_at' | 'failed_at' | 'overdue_at',
      ) =>
        rotations()
          .select(`r.${column} as at`)
          .where(`r.${column}`, 'is not', null)
          .where(afterCursor(kind, `r.${column}`, 'r.id', after, order))
          .orderBy(`r.${column}`, order)
          .orderBy('r.id', order)
          .limit(take)
          .execute();
      const events = trx
        .selectFrom('device_events')
        .select(['id', 'event_id', 'record_id', 'level', 'protector_id', 'message', 'occurred_at as at'])
        .where('organization_id', '=', organizationId)
        .where('device_id', '=', deviceId)
        .where(afterCursor('agent.event', 'occurred_at', 'id', after, order))
        .orderBy('occurred_at', order)
        .orderBy('id', order)
        .limit(take)
        .execute();

      const rotationRow =
        (kind: TimelineKind) =>
        (r: Awaited<ReturnType<typeof rotationStep>>[number]): TimelineRow => ({
          at: r.at as string,
          kind,
          id: r.id,
          details: {
            rotationId: r.id,
            recoveryKeyId: r.key_id,
            trigger: r.trigger,
            status: r.status,
            dueAt: r.due_at,
            ...(kind === 'rotation.completed' ? { newRecoveryKeyId: r.new_key_id } : {}),
            ...(kind === 'rotation.failed' ? { failureReason: r.failure_reason } : {}),
          },
        });

      const all: TimelineRow[] = [
        ...(await escrowed).map((r) => ({
          at: r.at,
          kind: 'key.escrowed' as const,
          id: r.id,
          details: { recoveryKeyId: r.key_id, source: r.source, volumeGuid: r.volume_guid },
        })),
        ...(await superseded).map((r) => ({
          at: r.at as string,
          kind: 'key.superseded' as const,
          id: r.id,
          details: { recoveryKeyId: r.key_id, volumeGuid: r.volume_guid },
        })),
        ...(await disclosed).map((r) => ({
          at: r.at,
          kind: 'key.disclosed' as const,
          id: r.id,
          details: {
            recoveryKeyId: r.key_id,
            actorType: r.actor_type,
            actorId: r.actor_id,
            reason: r.reason,
            channel: channelOf(r.details),
          },
        })),
        ...(await rotationStep('rotation.requested', 'requested_at')).map(rotationRow('rotation.requested')),
        ...(await rotationStep('rotation.delivered', 'delivered_at')).map(rotationRow('rotation.delivered')),
        ...(await rotationStep('rotation.completed', 'completed_at')).map(rotationRow('rotation.completed')),
        ...(await rotationStep('rotation.failed', 'failed_at')).map(rotationRow('rotation.failed')),
        ...(await rotationStep('rotation.overdue', 'overdue_at')).map(rotationRow('rotation.overdue')),
        ...(await events).map((r) => ({
          at: r.at,
          kind: 'agent.event' as const,
          id: r.id,
          details: {
            eventId: r.event_id,
            recordId: Number(r.record_id),
            level: r.level,
            protectorId: r.protector_id,
            message: r.message,
          },
        })),
      ];
      const sign = order === 'asc' ? 1 : -1;
      all.sort((a, b) => sign * (cmp(a.at, b.at) || cmp(a.kind, b.kind) || cmp(a.id, b.id)));
      return all.slice(0, take);
    },
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The disclosure path recorded in the audit details (`api`, `self-service`, `graph`, …). */
function channelOf(details: string): string | null {
  try {
    const parsed = JSON.parse(details) as Record<string, unknown>;
    return typeof parsed.channel === 'string' ? parsed.channel.slice(0, 40) : null;
  } catch {
    return null;
  }
}
