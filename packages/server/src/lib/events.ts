/**
 * Domain events leave the core through this narrow sink after their transaction has committed:
 * notifications (mail, webhooks) and the device timeline subscribe to it. Events carry
 * identifiers only, never a recovery password.
 */

export interface DisclosedEvent {
  type: 'recovery-key.disclosed';
  organizationId: string;
  /** The recovery key's record id (`rk_…`), its key id (protector GUID) and its device. */
  recoveryKeyRecordId: string;
  keyId: string;
  deviceId: string;
  actor: { type: string; id: string | null };
  reason: string;
  /** Which path disclosed it: `api`, `graph`, `self-service`, `helpdesk`, `cli`, … */
  channel: string;
  auditEntryId: string;
  occurredAt: string;
}

/** The parts every rotation event shares: which request, which key, which device. */
interface RotationEventBase {
  organizationId: string;
  rotationId: string;
  /** The key being replaced: record id and key id (protector GUID). */
  recoveryKeyRecordId: string;
  keyId: string;
  deviceId: string;
  /** When the emitter had it at hand; subscribers that show it look the device up by id anyway. */
  deviceName?: string;
  /** The audit row that records this step (for a disclosure-triggered request: the disclosure's). */
  auditEntryId: string;
  occurredAt: string;
}

export interface RotationRequestedEvent extends RotationEventBase {
  type: 'rotation.requested';
  trigger: 'disclosure' | 'on-demand';
  dueAt: string;
}

export interface RotationCompletedEvent extends RotationEventBase {
  type: 'rotation.completed';
  newRecoveryKeyRecordId: string;
  newKeyId: string;
}

export interface RotationFailedEvent extends RotationEventBase {
  type: 'rotation.failed';
  /** What the agent reported (free text, bounded; never a password). */
  reason: string;
}

/** Raised once per request, when the sweep finds it past its deadline. */
export interface RotationOverdueEvent extends RotationEventBase {
  type: 'rotation.overdue';
  dueAt: string;
}

/** A batch of BitLocker events from a device was stored (new records only). */
export interface DeviceEventReportedEvent {
  type: 'device.event-reported';
  organizationId: string;
  deviceId: string;
  /** Windows event ids of the newly stored records, in the order received. */
  eventIds: number[];
  /** The cause class suggested from the stored events, when they name one. */
  likelyCause: string | null;
  occurredAt: string;
}

/** Further event types are added here as the features that raise them land. */
export type DomainEvent =
  | DisclosedEvent
  | RotationRequestedEvent
  | RotationCompletedEvent
  | RotationFailedEvent
  | RotationOverdueEvent
  | DeviceEventReportedEvent;

export interface EventSink {
  /**
   * Called after commit; a failure here is logged by the sink and never undoes the change. Events
   * of one change are emitted in one call (a disclosure and the rotation it opened), so a sink can
   * look up what they share once.
   */
  emit(...events: DomainEvent[]): Promise<void>;
}

/** Until a subscriber exists, the audit log is the record and nothing else is sent. */
export const noEventSink: EventSink = { emit: async () => undefined };
