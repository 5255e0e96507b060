/** The BitLocker-API events the agent forwards, what each tells the helpdesk, and the cause they suggest. */

/**
 * Root-cause classes of a BitLocker recovery, as the recovery desk records them (the resolution
 * steps for each live with the recovery cases).
 */
export type RootCauseClass =
  | 'unknown-pin'
  | 'lost-startup-key'
  | 'boot-or-firmware-change'
  | 'tpm-change'
  | 'malware-suspected'
  | 'unknown';

/** What an event is evidence of: why recovery started, which protector unlocked, a protector change. */
export type EventRole = 'cause' | 'unlock' | 'protector-change';

interface CatalogEntry {
  role: EventRole;
  /** The cause an event of this id suggests on its own; the event text may refine it. */
  suggests?: RootCauseClass;
  summary: string;
}

/**
 * The ids the vault accepts, grouped as the recovery desk reads them: 521–531 and 823/824 say why
 * the boot needed recovery, 782/805 which protector unlocked, 775/776 that a protector was added or
 * removed. Windows words these events differently across builds, so the per-id suggestion is a
 * starting point and the event text (when the agent sends it) takes precedence (see likelyCause).
 */
export const BITLOCKER_EVENT_CATALOG: ReadonlyMap<number, CatalogEntry> = new Map<number, CatalogEntry>([
  [521, { role: 'cause', suggests: 'tpm-change', summary: 'The TPM could not be used to unlock the volume' }],
  [522, { role: 'cause', suggests: 'tpm-change', summary: 'The TPM did not release the volume master key' }],
  [
    523,
    {
      role: 'cause',
      suggests: 'boot-or-firmware-change',
      summary: 'Platform measurements (PCRs) did not match',
    },
  ],
  [
    524,
    { role: 'cause', suggests: 'boot-or-firmware-change', summary: 'The boot configuration (BCD) changed' },
  ],
  [
    525,
    {
      role: 'cause',
      suggests: 'boot-or-firmware-change',
      summary: 'A boot application or boot file changed',
    },
  ],
  [
    526,
    { role: 'cause', suggests: 'boot-or-firmware-change', summary: 'The Secure Boot configuration changed' },
  ],
  [527, { role: 'cause', suggests: 'unknown-pin', summary: 'A wrong PIN was entered' }],
  [528, { role: 'cause', suggests: 'unknown-pin', summary: 'The TPM locked out PIN attempts' }],
  [529, { role: 'cause', suggests: 'lost-startup-key', summary: 'The startup key was not found' }],
  [
    530,
    { role: 'cause', suggests: 'lost-startup-key', summary: 'The startup key did not unlock the volume' },
  ],
  [531, { role: 'cause', suggests: 'unknown', summary: 'Recovery was required for another reason' }],
  [
    823,
    {
      role: 'cause',
      suggests: 'boot-or-firmware-change',
      summary: 'The boot measurements were invalid for Secure Boot',
    },
  ],
  [
    824,
    {
      role: 'cause',
      suggests: 'boot-or-firmware-change',
      summary: 'The firmware or boot manager measurements changed',
    },
  ],
  [782, { role: 'unlock', summary: 'The volume was unlocked with a recovery password' }],
  [805, { role: 'unlock', summary: 'The volume was unlocked with a protector' }],
  [775, { role: 'protector-change', summary: 'A key protector was added' }],
  [776, { role: 'protector-change', summary: 'A key protector was removed' }],
]);

export const ACCEPTED_EVENT_IDS: readonly number[] = [...BITLOCKER_EVENT_CATALOG.keys()];

/** Words in an event's text that name a cause more precisely than its id (checked in this order). */
const TEXT_HINTS: readonly { pattern: RegExp; cause: RootCauseClass }[] = [
  { pattern: /\bPIN\b/i, cause: 'unknown-pin' },
  { pattern: /startup key|external key|USB|key file/i, cause: 'lost-startup-key' },
  {
    pattern: /TPM (was )?(not found|not enabled|disabled|cleared|reset|not present|owner)|\bSRK\b/i,
    cause: 'tpm-change',
  },
  {
    pattern:
      /Secure Boot|boot configuration|\bBCD\b|boot manager|boot application|firmware|BIOS|\bPCR|TCG log/i,
    cause: 'boot-or-firmware-change',
  },
];

export interface BitLockerEventInput {
  eventId: number;
  message?: string | null | undefined;
  recordId?: number | undefined;
}

export interface LikelyCause {
  cause: RootCauseClass;
  /** `high`: two or more events agree, or the text names it; `medium`: one event's id; `low`: nothing specific. */
  confidence: 'high' | 'medium' | 'low';
  /** The event ids that support it, in input order. */
  evidence: number[];
}

function causeOf(event: BitLockerEventInput): { cause: RootCauseClass; fromText: boolean } | undefined {
  const entry = BITLOCKER_EVENT_CATALOG.get(event.eventId);
  if (entry?.role !== 'cause') return undefined;
  const text = event.message ?? '';
  const hint = TEXT_HINTS.find((h) => h.pattern.test(text));
  if (hint) return { cause: hint.cause, fromText: true };
  return { cause: entry.suggests ?? 'unknown', fromText: false };
}

/**
 * The root-cause class the events suggest, or undefined when none of them is a cause event. The
 * class with the most supporting events wins; a tie goes to the most recent event. Malware is never
 * suggested from events alone: that is a judgement for the incident policy, not a log pattern.
 */
export function likelyCause(events: readonly BitLockerEventInput[]): LikelyCause | undefined {
  const tally = new Map<RootCauseClass, { count: number; text: boolean; last: number; evidence: number[] }>();
  events.forEach((event, index) => {
    const found = causeOf(event);
    if (!found) return;
    const entry = tally.get(found.cause) ?? { count: 0, text: false, last: -1, evidence: [] };
    entry.count += 1;
    entry.text ||= found.fromText;
    entry.last = index;
    entry.evidence.push(event.eventId);
    tally.set(found.cause, entry);
  });
  const ranked = [...tally.entries()]
    // A specific class beats `unknown` whatever the counts: `unknown` says nothing.
    .sort(
      ([ca, a], [cb, b]) =>
        Number(ca === 'unknown') - Number(cb === 'unknown') || b.count - a.count || b.last - a.last,
    );
  const best = ranked[0];
  if (!best) return undefined;
  const [cause, entry] = best;
  const confidence = cause === 'unknown' ? 'low' : entry.count >= 2 || entry.text ? 'high' : 'medium';
  return { cause, confidence, evidence: entry.evidence };
}

const GUID = /\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?/;

/** The protector GUID an event names (unlock and protector-change events), upper case. */
export function protectorIdOf(eventId: number, message: string | null | undefined): string | null {
  const role = BITLOCKER_EVENT_CATALOG.get(eventId)?.role;
  if (role !== 'unlock' && role !== 'protector-change') return null;
  const match = GUID.exec(message ?? '');
  return match ? match[1]!.toUpperCase() : null;
}

// Eight groups of six digits, however separated: a recovery password must never be stored from an
// event's text, even if a future Windows build (or a tampered agent) put one there.
const RECOVERY_PASSWORD_LIKE = /\d{6}(?:[\s-]?\d{6}){7}/g;

/** Event text as stored: anything shaped like a recovery password replaced. */
export function scrubEventText(message: string): string {
  return message.replace(RECOVERY_PASSWORD_LIKE, '[redacted]');
}

export function eventSummary(eventId: number): string {
  return BITLOCKER_EVENT_CATALOG.get(eventId)?.summary ?? 'BitLocker event';
}
