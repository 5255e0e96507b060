/**
 * The durable notification outbox. Sinks turn events and alerts into delivery rows after commit
 * (reading settings, the device owner and the webhooks once); the dispatcher claims due rows with
 * a lease, sends outside any transaction, and records each attempt with exponential backoff, so
 * retries survive restarts and several instances never send one row at the same time.
 */
import type { Db } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import type { Envelope } from '../../lib/envelope.js';
import type { DomainEvent, EventSink } from '../../lib/events.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { MailSender } from '../../lib/mail.js';
import type { RandomSource } from '../../lib/random.js';
import { base32 } from '../../lib/ids.js';
import type { AlertSink, SecurityAlert } from '../access/alerts.js';
import { systemSyncTimer, type SyncTimer } from '../directory-import/directory-sync.scheduler.js';
import {
  audienceOf,
  fromAlert,
  fromDomainEvent,
  renderMail,
  renderWebhookBody,
  subscribes,
  type NotificationEvent,
} from './notification-messages.js';
import { describeMailError } from './smtp-mail-sender.js';
import {
  createNotificationsRepo,
  type DeliveryRow,
  type Routing,
  type WebhookRow,
} from './notifications.repo.js';
import type { RoutingReads } from './routing-read-batcher.js';
import { DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signWebhookBody } from './webhook-signature.js';

export const DELIVERY_POLICY = {
  /** Attempts before a delivery is given up as failed. */
  maxAttempts: 8,
  /** Wait before the second attempt; doubles each time, up to `maxDelayMs`. */
  baseDelayMs: 30_000,
  maxDelayMs: 3_600_000,
  /** Longer than any single send may take (SMTP and HTTP timeouts are shorter). */
  leaseMs: 120_000,
  batch: 50,
  webhookTimeoutMs: 10_000,
} as const;

export function retryDelayMs(attemptsSoFar: number): number {
  return Math.min(
    DELIVERY_POLICY.baseDelayMs * 2 ** Math.max(0, attemptsSoFar - 1),
    DELIVERY_POLICY.maxDelayMs,
  );
}

export const webhookSecretBinding = (organizationId: string, webhookId: string) => ({
  organizationId,
  recordId: webhookId,
  purpose: 'webhook-secret' as const,
});

export function openWebhookSecret(envelope: Envelope, row: WebhookRow): string {
  return envelope.open(webhookSecretBinding(row.organization_id, row.id), {
    ciphertext: row.secret_ciphertext,
    wrappedKey: row.secret_wrapped_key,
    kekId: row.secret_kek_id,
  });
}

export interface WebhookAttempt {
  ok: boolean;
  status: string;
  error: string | null;
}

/** One signed POST; never follows a redirect (the configured URL is the only destination). */
export async function postWebhook(
  url: string,
  secret: string,
  body: string,
  headers: { deliveryId: string; eventType: string; unixSeconds: number },
): Promise<WebhookAttempt> {
  try {
    const response = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(DELIVERY_POLICY.webhookTimeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'bdevault-webhooks/1',
        [SIGNATURE_HEADER]: signWebhookBody(secret, body, headers.unixSeconds),
        [DELIVERY_HEADER]: headers.deliveryId,
        [EVENT_HEADER]: headers.eventType,
      },
      body,
    });
    await response.body?.cancel();
    const ok = response.status >= 200 && response.status < 300;
    return { ok, status: String(response.status), error: ok ? null : `HTTP ${response.status}` };
  } catch (err) {
    const e = err as { name?: string; cause?: { code?: string } };
    const reason = e.name === 'TimeoutError' ? 'timed out' : (e.cause?.code ?? 'request failed');
    return { ok: false, status: 'error', error: `webhook ${reason}` };
  }
}

export interface NotificationDispatcher {
  /** Starts a delivery run in the background (after an event was queued). */
  kick(): void;
  /** Claims and delivers every due row now; resolves with how many attempts were made. */
  runDue(): Promise<number>;
  /** Resolves when the run in progress (if any) has finished. */
  idle(): Promise<void>;
  /** Polls for due rows (retries, rows left by a stopped instance) until stopped. */
  start(options?: { timer?: SyncTimer; tickMs?: number }): { stop(): Promise<void> };
}

export function createNotificationDispatcher(deps: {
  db: Db;
  clock: Clock;
  envelope: Envelope;
  mail: MailSender;
  random: RandomSource;
}): NotificationDispatcher {
  const { db, clock, envelope, mail } = deps;
  const repo = createNotificationsRepo(db);
  // Names this process in the lease columns; random so two instances never share one.
  const holder = `notify_${base32(deps.random.bytes(10))}`;
  let running: Promise<number> | undefined;
  let again = false;

  async function attempt(row: DeliveryRow): Promise<WebhookAttempt> {
    if (row.channel === 'email') {
      const message = JSON.parse(row.payload) as { subject: string; text: string };
      try {
        await mail.send(row.organization_id, { to: [row.recipient], ...message });
        return { ok: true, status: 'sent', error: null };
      } catch (err) {
        const { status, message: error } = describeMailError(err);
        return { ok: false, status, error };
      }
    }
    const webhook = await repo.findWebhook(row.organization_id, row.recipient);
    if (!webhook) return { ok: false, status: 'gone', error: 'the webhook was deleted' };
    if (webhook.enabled !== 1) return { ok: false, status: 'disabled', error: 'the webhook is disabled' };
    return postWebhook(webhook.url, openWebhookSecret(envelope, webhook), row.payload, {
      deliveryId: row.id,
      eventType: row.event_type,
      unixSeconds: Math.floor(clock.now().getTime() / 1000),
    });
  }

  async function deliver(row: DeliveryRow): Promise<void> {
    const result = await attempt(row);
    const now = clock.now();
    const attempts = row.attempts + 1;
    const giveUp = !result.ok && (attempts >= DELIVERY_POLICY.maxAttempts || result.status === 'gone');
    await repo.finishAttempt(row.id, holder, {
      status: result.ok ? 'delivered' : giveUp ? 'failed' : 'pending',
      attempts,
      next_attempt_at:
        result.ok || giveUp ? null : new Date(now.getTime() + retryDelayMs(attempts)).toISOString(),
      last_status: result.status,
      last_error: result.error,
      updated_at: now.toISOString(),
      delivered_at: result.ok ? now.toISOString() : null,
    });
  }

  async function runOnce(): Promise<number> {
    let total = 0;
    for (;;) {
      const now = clock.now();
      const rows = await repo.claimDue(
        holder,
        now.toISOString(),
        new Date(now.getTime() + DELIVERY_POLICY.leaseMs).toISOString(),
        DELIVERY_POLICY.batch,
      );
      for (const row of rows) await deliver(row);
      total += rows.length;
      if (rows.length < DELIVERY_POLICY.batch) return total;
    }
  }

  function runDue(): Promise<number> {
    if (running) {
      // A kick during a run: look again once it ends, so a row queued meanwhile is not left waiting.
      again = true;
      return running;
    }
    running = (async () => {
      let total = 0;
      do {
        again = false;
        total += await runOnce();
      } while (again);
      return total;
    })().finally(() => (running = undefined));
    return running;
  }

  return {
    kick() {
      // Errors stay in the rows (attempts, last_error) or leave them due for the next poll.
      runDue().catch(() => undefined);
    },
    runDue,
    async idle() {
      while (running) await running.catch(() => undefined);
    },
    start(options = {}) {
      const handle = (options.timer ?? systemSyncTimer).every(options.tickMs ?? 15_000, async () => {
        await runDue().catch(() => undefined);
      });
      return {
        async stop() {
          handle.cancel();
          while (running) await running.catch(() => undefined);
        },
      };
    },
  };
}

/** An event or alert that was not queued; its key names the audit entry it came from. */
export interface LostNotification {
  eventType: string;
  eventKey: string | null;
  err: unknown;
}

/** Events and alerts in, delivery rows out; then a kick so the first attempt happens at once. */
export function createNotificationSinks(deps: {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  dispatcher: Pick<NotificationDispatcher, 'kick'>;
  /**
   * Told of an event or alert whose deliveries could not be queued (the database failed after the
   * change committed): nothing will be sent for it, and the operator should know.
   */
  onLost?: (lost: LostNotification) => void;
  /** The routing read; on PostgreSQL a batcher shared by the process (routing-read-batcher.ts). */
  routingReads?: RoutingReads;
}): { events: EventSink; alerts: AlertSink } {
  const { db, clock, ids, dispatcher } = deps;
  const repo = createNotificationsRepo(db);
  const routingReads = deps.routingReads ?? repo;

  /** Routing of the events of one emit: events of one change share the organization and device. */
  type RoutingCache = Map<string, Promise<Routing>>;

  function routingOf(event: NotificationEvent, cache: RoutingCache): Promise<Routing> {
    const { deviceId } = event.fields;
    const device = typeof deviceId === 'string' ? deviceId : undefined;
    const key = `${event.organizationId}\n${device ?? ''}`;
    let routing = cache.get(key);
    if (!routing) {
      routing = routingReads.routing(event.organizationId, device);
      cache.set(key, routing);
    }
    return routing;
  }

  /** Who acted (an event's actor, an alert's account): a readable name beside the id. */
  async function withActorNames(event: NotificationEvent): Promise<void> {
    for (const field of ['actor', 'account'] as const) {
      const who = event.fields[field];
      if (!who || typeof who !== 'object') continue;
      const a = who as { type?: unknown; id?: unknown };
      if (typeof a.type !== 'string' || typeof a.id !== 'string') continue;
      const name = await repo.actorName(a.type, a.id);
      if (name !== null) event.fields[field] = { ...a, name };
    }
  }

  async function queue(event: NotificationEvent, cache: RoutingCache = new Map()): Promise<void> {
    const routing = await routingOf(event, cache);
    const webhooks = routing.webhooks.filter((w) =>
      subscribes(JSON.parse(w.eventTypes) as string[], event.type),
    );
    const audience = audienceOf(event.type);
    const security = JSON.parse(routing.securityAddresses ?? '[]') as string[];
    // The routing read brought the device's name and owner too: an organization that configured no
    // recipient pays one read per change; the actor lookup below runs only when someone receives it.
    const addresses = new Map<string, string>();
    if (audience !== 'webhooks-only') for (const a of security) addresses.set(a.toLowerCase(), a);
    if (routing.device) event.fields.deviceName = routing.device.name;
    const ownerEmail = routing.device?.ownerEmail ?? null;
    if (audience === 'owner-and-security' && ownerEmail) addresses.set(ownerEmail.toLowerCase(), ownerEmail);
    if (addresses.size === 0 && webhooks.length === 0) return;
    await withActorNames(event);

    const now = clock.now().toISOString();
    const base = {
      organization_id: event.organizationId,
      event_type: event.type,
      event_key: event.key,
      status: 'pending' as const,
      attempts: 0,
      next_attempt_at: now,
      lease_holder: null,
      lease_expires_at: null,
      last_status: null,
      last_error: null,
      created_at: now,
      updated_at: now,
      delivered_at: null,
    };
    const mailPayload = JSON.stringify(renderMail(event));
    const rows: DeliveryRow[] = [
      ...[...addresses.values()].map((to) => ({
        ...base,
        id: ids('notificationDelivery'),
        channel: 'email' as const,
        recipient: to,
        payload: mailPayload,
      })),
      ...webhooks.map((w) => {
        const id = ids('notificationDelivery');
        return {
          ...base,
          id,
          channel: 'webhook' as const,
          recipient: w.id,
          payload: renderWebhookBody(event, id),
        };
      }),
    ];
    await repo.enqueue(rows);
    dispatcher.kick();
  }

  const safely = async (make: () => NotificationEvent, cache?: RoutingCache) => {
    let event: NotificationEvent | undefined;
    try {
      event = make();
      await queue(event, cache);
    } catch (err) {
      // After commit nothing can be undone: the audit row stays the record of what happened, and
      // the loss is reported (the server logs it) instead of failing the request.
      try {
        deps.onLost?.({ eventType: event?.type ?? 'unknown', eventKey: event?.key ?? null, err });
      } catch {
        // A failing reporter must not fail the request either.
      }
    }
  };
  return {
    events: {
      async emit(...events: DomainEvent[]) {
        const cache: RoutingCache = new Map();
        for (const event of events) await safely(() => fromDomainEvent(event), cache);
      },
    },
    alerts: { emit: (alert: SecurityAlert) => safely(() => fromAlert(alert)) },
  };
}
