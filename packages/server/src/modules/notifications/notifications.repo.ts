/** Notification settings, webhooks and the delivery outbox (with its claim lease), per organization. */
import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import { jsonItems } from '../../db/json-items.js';
import type {
  NotificationDeliveriesTable,
  NotificationDeliveryStatus,
  NotificationSettingsTable,
  NotificationWebhooksTable,
} from '../../db/schema.js';

export type NotificationSettingsRow = NotificationSettingsTable;
export type WebhookRow = NotificationWebhooksTable;
export type DeliveryRow = NotificationDeliveriesTable;

export interface DeliveryFilter {
  status?: NotificationDeliveryStatus | undefined;
  channel?: DeliveryRow['channel'] | undefined;
  eventType?: string | undefined;
  limit: number;
}

/** Whose events: an organization's, and the device the event is about (if any). */
export interface RoutingTarget {
  organizationId: string;
  deviceId?: string | undefined;
}

/** One row of the routing read: the settings, one enabled webhook (or none), the device and owner. */
interface RoutingRow {
  security_addresses: string | null;
  webhook_id: string | null;
  event_types: string | null;
  created_at: string | null;
  device_name: string | null;
  owner_email?: string | null | undefined;
}

/** The rows of one organization's routing read (none: no such organization) as who hears of it. */
function routingOf(rows: readonly RoutingRow[], deviceId: string | undefined) {
  const first = rows[0];
  return {
    securityAddresses: first?.security_addresses ?? null,
    webhooks: rows.flatMap((r) =>
      r.webhook_id === null || r.event_types === null
        ? []
        : [{ id: r.webhook_id, eventTypes: r.event_types }],
    ),
    device:
      deviceId === undefined || first?.device_name == null
        ? undefined
        : { name: first.device_name, ownerEmail: first.owner_email ?? null },
  };
}

export type Routing = ReturnType<typeof routingOf>;

export type NotificationsRepo = ReturnType<typeof createNotificationsRepo>;

export function createNotificationsRepo(db: Executor) {
  return {
    /**
     * Who hears of an organization's events, in one statement: its security addresses (JSON text,
     * null before mail is configured) and its enabled webhooks with the event types they take; with
     * a device id, also that device's name and its owner's address (undefined: no such device).
     */
    async routing(organizationId: string, deviceId?: string, trx: Executor = db) {
      // One statement text with or without a device (no device has the empty id): one prepared plan.
      const rows = await trx
        .selectFrom('organizations as o')
        .leftJoin('notification_settings as s', 's.organization_id', 'o.id')
        .leftJoin('notification_webhooks as w', (join) =>
          join.onRef('w.organization_id', '=', 'o.id').on('w.enabled', '=', 1),
        )
        .leftJoin('devices as d', (join) =>
          join.onRef('d.organization_id', '=', 'o.id').on('d.id', '=', deviceId ?? ''),
        )
        .leftJoin('users as u', 'u.id', 'd.owner_user_id')
        .select([
          's.security_addresses',
          'w.id as webhook_id',
          'w.event_types',
          'w.created_at',
          'd.name as device_name',
          'u.email as owner_email',
        ])
        .where('o.id', '=', organizationId)
        .orderBy('w.created_at')
        .orderBy('w.id')
        .execute();
      return routingOf(rows, deviceId);
    },

    /**
     * `routing` for several (organization, device) pairs in one statement (PostgreSQL only: the
     * pairs travel as one JSON parameter), answered in their order; for routing-read-batcher.ts.
     */
    async routingMany(targets: readonly RoutingTarget[], trx: Executor = db): Promise<Routing[]> {
      if (targets.length === 0) return [];
      const items = targets.map((target, n) => ({
        n,
        organization_id: target.organizationId,
        device_id: target.deviceId ?? '',
      }));
      const { rows } = await sql<
        RoutingRow & { n: number }
      >`with i as (${jsonItems(items, 'n int, organization_id text, device_id text')})
        select i.n, s.security_addresses, w.id as webhook_id, w.event_types, w.created_at,
          d.name as device_name, u.email as owner_email
        from i
        join organizations as o on o.id = i.organization_id
        left join notification_settings as s on s.organization_id = o.id
        left join notification_webhooks as w on w.organization_id = o.id and w.enabled = 1
        left join devices as d on d.organization_id = o.id and d.id = i.device_id
        left join users as u on u.id = d.owner_user_id
        order by i.n, w.created_at, w.id`.execute(trx);
      const byTarget = targets.map((): RoutingRow[] => []);
      for (const { n, ...row } of rows) byTarget[Number(n)]!.push(row);
      return targets.map((target, n) => routingOf(byTarget[n]!, target.deviceId));
    },

    async getSettings(organizationId: string, trx: Executor = db) {
      return trx
        .selectFrom('notification_settings')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .executeTakeFirst();
    },

    async upsertSettings(row: NotificationSettingsRow, trx: Executor = db): Promise<void> {
      const { organization_id: _, ...changes } = row;
      await trx
        .insertInto('notification_settings')
        .values(row)
        .onConflict((oc) => oc.column('organization_id').doUpdateSet(changes))
        .execute();
    },

    async listWebhooks(organizationId: string, trx: Executor = db): Promise<WebhookRow[]> {
      return trx
        .selectFrom('notification_webhooks')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
    },

    async findWebhook(organizationId: string, id: string, trx: Executor = db) {
      return trx
        .selectFrom('notification_webhooks')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .executeTakeFirst();
    },

    async insertWebhook(row: WebhookRow, trx: Executor = db): Promise<void> {
      await trx.insertInto('notification_webhooks').values(row).execute();
    },

    async updateWebhook(
      id: string,
      changes: Partial<Omit<WebhookRow, 'id' | 'organization_id' | 'created_at'>>,
      trx: Executor = db,
    ): Promise<void> {
      await trx.updateTable('notification_webhooks').set(changes).where('id', '=', id).execute();
    },

    async deleteWebhook(organizationId: string, id: string, trx: Executor = db): Promise<boolean> {
      const result = await trx
        .deleteFrom('notification_webhooks')
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },

    /** Queues deliveries; a row for the same event, channel and recipient already queued is kept. */
    async enqueue(rows: DeliveryRow[], trx: Executor = db): Promise<void> {
      if (rows.length === 0) return;
      await trx
        .insertInto('notification_deliveries')
        .values(rows)
        .onConflict((oc) => oc.columns(['organization_id', 'event_key', 'channel', 'recipient']).doNothing())
        .execute();
    },

    /**
     * Claims up to `limit` due rows for `holder` until `leaseUntil`. Each claim is one conditional
     * UPDATE, so two instances racing for a row cannot both win it; an expired lease (a crashed
     * sender) makes the row claimable again.
     */
    async claimDue(holder: string, now: string, leaseUntil: string, limit: number): Promise<DeliveryRow[]> {
      const candidates = await db
        .selectFrom('notification_deliveries')
        .select('id')
        .where('status', '=', 'pending')
        .where('next_attempt_at', '<=', now)
        .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', now)]))
        .orderBy('next_attempt_at')
        .orderBy('id')
        .limit(limit)
        .execute();
      const claimed: string[] = [];
      for (const { id } of candidates) {
        const result = await db
          .updateTable('notification_deliveries')
          .set({ lease_holder: holder, lease_expires_at: leaseUntil })
          .where('id', '=', id)
          .where('status', '=', 'pending')
          .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', now)]))
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) === 1) claimed.push(id);
      }
      if (claimed.length === 0) return [];
      return db
        .selectFrom('notification_deliveries')
        .selectAll()
        .where('id', 'in', claimed)
        .where('lease_holder', '=', holder)
        .orderBy('next_attempt_at')
        .orderBy('id')
        .execute();
    },

    /** Records an attempt's outcome and releases the lease, only while `holder` still holds it. */
    async finishAttempt(
      id: string,
      holder: string,
      changes: Pick<
        DeliveryRow,
        | 'status'
        | 'attempts'
        | 'next_attempt_at'
        | 'last_status'
        | 'last_error'
        | 'updated_at'
        | 'delivered_at'
      >,
    ): Promise<void> {
      await db
        .updateTable('notification_deliveries')
        .set({ ...changes, lease_holder: null, lease_expires_at: null })
        .where('id', '=', id)
        .where('lease_holder', '=', holder)
        .execute();
    },

    async listDeliveries(organizationId: string, filter: DeliveryFilter): Promise<DeliveryRow[]> {
      let query = db
        .selectFrom('notification_deliveries')
        .selectAll()
        .where('organization_id', '=', organizationId);
      if (filter.status !== undefined) query = query.where('status', '=', filter.status);
      if (filter.channel !== undefined) query = query.where('channel', '=', filter.channel);
      if (filter.eventType !== undefined) query = query.where('event_type', '=', filter.eventType);
      return query.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(filter.limit).execute();
    },

    /** The device's name and its owner's e-mail address (either may be missing). */
    /** A readable name for an audit actor: the username or the API token's name. */
    async actorName(type: string, id: string | null): Promise<string | null> {
      if (id === null) return null;
      if (type === 'user') {
        const row = await db.selectFrom('users').select('username').where('id', '=', id).executeTakeFirst();
        return row?.username ?? null;
      }
      if (type === 'api-token') {
        const row = await db.selectFrom('api_tokens').select('name').where('id', '=', id).executeTakeFirst();
        return row?.name ?? null;
      }
      return null;
    },
  };
}
