/**
 * What a notification says: events and alerts become one neutral shape, then a mail (subject and
 * text) or a webhook body. Identifiers only; anything that looks like a secret is dropped and
 * anything that looks like a recovery password is blanked, whatever a future event carries.
 */
import type { DomainEvent } from '../../lib/events.js';
import type { SecurityAlert } from '../access/alerts.js';

/** Any event, known or added later: its type, where it belongs, and its other fields. */
export interface NotificationEvent {
  type: string;
  organizationId: string;
  occurredAt: string;
  /** Unique per event (its audit entry id where it has one), so it is queued once. */
  key: string;
  fields: Record<string, unknown>;
}

export type Audience = 'owner-and-security' | 'security' | 'webhooks-only';

/** Who is mailed: disclosures and overdue rotations reach the owner too; alerts the security addresses. */
export function audienceOf(type: string): Audience {
  if (type === 'recovery-key.disclosed' || type.endsWith('.overdue')) return 'owner-and-security';
  if (type.startsWith('alert.')) return 'security';
  return 'webhooks-only';
}

const SECRET_FIELD = /password|secret|token|credential|otp|onetime|^code$/i;
// 8 groups of 6 digits, with or without dashes: a recovery password never leaves in a notification.
const RECOVERY_PASSWORD = /\d{6}(?:-?\d{6}){7}/g;
const MAX_TEXT = 500;

export function scrubText(text: string): string {
  return text.replace(RECOVERY_PASSWORD, '[redacted]').slice(0, MAX_TEXT);
}

/** Keeps plain identifiers: strings (scrubbed), numbers, booleans, small objects and arrays of them. */
export function safeFields(value: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, v] of Object.entries(value)) {
    if (SECRET_FIELD.test(name)) continue;
    const safe = safeValue(v, depth);
    if (safe !== undefined) out[name] = safe;
  }
  return out;
}

function safeValue(v: unknown, depth: number): unknown {
  if (v === null || typeof v === 'number' || typeof v === 'boolean') return v;
  if (typeof v === 'string') return scrubText(v);
  if (depth >= 2) return undefined;
  if (Array.isArray(v)) return v.slice(0, 50).map((x) => safeValue(x, depth + 1) ?? null);
  if (typeof v === 'object') return safeFields(v as Record<string, unknown>, depth + 1);
  return undefined;
}

export function fromDomainEvent(event: DomainEvent): NotificationEvent {
  // Typed as the union today; colleagues add members, so read it as an open record.
  const { type, organizationId, occurredAt, ...rest } = event as unknown as {
    type: string;
    organizationId: string;
    occurredAt?: string;
  } & Record<string, unknown>;
  const auditEntryId = typeof rest.auditEntryId === 'string' ? rest.auditEntryId : undefined;
  const id = typeof rest.id === 'string' ? rest.id : undefined;
  return {
    type,
    organizationId,
    occurredAt: occurredAt ?? new Date(0).toISOString(),
    key: `${type}:${auditEntryId ?? id ?? JSON.stringify(rest).slice(0, 200)}`,
    fields: safeFields(rest),
  };
}

export function fromAlert(alert: SecurityAlert): NotificationEvent {
  const { type, organizationId, occurredAt, ...rest } = alert;
  return {
    type: `alert.${type}`,
    organizationId,
    occurredAt,
    key: `alert.${type}:${alert.auditEntryId}`,
    fields: safeFields(rest as unknown as Record<string, unknown>),
  };
}

function titleOf(event: NotificationEvent): string {
  const device = typeof event.fields.deviceName === 'string' ? event.fields.deviceName : undefined;
  if (event.type === 'recovery-key.disclosed')
    return `Recovery key disclosed${device ? ` for ${device}` : ''}`;
  if (event.type.endsWith('.overdue')) return `Rotation overdue${device ? ` for ${device}` : ''}`;
  if (event.type === 'alert.disclosure_threshold') return 'Security alert: disclosure threshold reached';
  if (event.type.startsWith('alert.')) return `Security alert: ${event.type.slice(6)}`;
  return `Notification: ${event.type}`;
}

function lines(fields: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(fields).flatMap(([name, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? lines(v as Record<string, unknown>, `${prefix}${name}.`)
      : [`${prefix}${name}: ${Array.isArray(v) ? v.join(', ') : String(v)}`],
  );
}

export interface RenderedMail {
  subject: string;
  text: string;
}

export function renderMail(event: NotificationEvent): RenderedMail {
  const intro =
    event.type === 'recovery-key.disclosed'
      ? 'A BitLocker recovery password was disclosed. It is single-use: the device is asked to replace it.'
      : event.type.endsWith('.overdue')
        ? 'A recovery password rotation is overdue: the disclosed password is still valid on the device.'
        : event.type.startsWith('alert.')
          ? 'bdevault raised a security alert.'
          : 'bdevault recorded an event.';
  const text = [
    intro,
    '',
    `event: ${event.type}`,
    `time: ${event.occurredAt}`,
    `organizationId: ${event.organizationId}`,
    ...lines(event.fields),
    '',
    'This message carries identifiers only; recovery passwords are never sent by e-mail or webhook.',
  ].join('\n');
  return { subject: `[bdevault] ${scrubText(titleOf(event))}`, text };
}

/** The webhook body: stable envelope fields, the event's own fields under `data`. */
export function renderWebhookBody(event: NotificationEvent, deliveryId: string): string {
  return JSON.stringify({
    id: deliveryId,
    type: event.type,
    organizationId: event.organizationId,
    occurredAt: event.occurredAt,
    data: event.fields,
  });
}

/** Whether a webhook subscribed to `type`: exact, `area.*`, or `*`. */
export function subscribes(eventTypes: readonly string[], type: string): boolean {
  return eventTypes.some(
    (t) => t === '*' || t === type || (t.endsWith('.*') && type.startsWith(t.slice(0, -1))),
  );
}
