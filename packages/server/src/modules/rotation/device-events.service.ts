/**
 * What the agent tells the vault about BitLocker on the device (its event log), the device
 * timeline that puts it beside escrows, disclosures and rotations, and the post-recovery flag.
 */
import type { Db } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { EventSink } from '../../lib/events.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { Authorizer } from '../access/access.service.js';
import type { Principal } from '../access/principal.js';
import type { DevicesRepo } from '../devices/devices.repo.js';
import {
  BITLOCKER_EVENT_CATALOG,
  likelyCause,
  protectorIdOf,
  scrubEventText,
  type LikelyCause,
} from './bitlocker-events.js';
import type { DeviceEventRow, DeviceEventsRepo, TimelineCursor } from './device-events.repo.js';

/** Two or more recoveries within this window flag a device for post-recovery analysis. */
export const POST_RECOVERY_WINDOW_DAYS = 30;
export const POST_RECOVERY_THRESHOLD = 2;

export interface ReportedDeviceEvent {
  recordId: number;
  eventId: number;
  occurredAt: string;
  level?: string | undefined;
  message?: string | undefined;
}

export function toDeviceEvent(row: DeviceEventRow) {
  const entry = BITLOCKER_EVENT_CATALOG.get(row.event_id);
  return {
    id: row.id,
    recordId: Number(row.record_id),
    eventId: row.event_id,
    role: entry?.role ?? null,
    summary: entry?.summary ?? null,
    occurredAt: row.occurred_at,
    receivedAt: row.received_at,
    level: row.level,
    protectorId: row.protector_id,
    message: row.message,
  };
}

export type DeviceEvent = ReturnType<typeof toDeviceEvent>;

export function encodeCursor(cursor: TimelineCursor): string {
  return Buffer.from(JSON.stringify([cursor.at, cursor.kind, cursor.id])).toString('base64url');
}

export function decodeCursor(text: string): TimelineCursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 3 &&
      parsed.every((p) => typeof p === 'string' && p.length <= 100)
    ) {
      const [at, kind, id] = parsed as [string, string, string];
      return { at, kind, id };
    }
  } catch {
    // Falls through to the same answer as a well-formed but wrong cursor.
  }
  throw new AppError('VALIDATION_FAILED', 'The cursor is not one this server returned');
}

export type DeviceEventsService = ReturnType<typeof createDeviceEventsService>;

export function createDeviceEventsService(deps: {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  events: EventSink;
  deviceEventsRepo: DeviceEventsRepo;
  devicesRepo: Pick<DevicesRepo, 'findById' | 'update'>;
  authorizer: Pick<Authorizer, 'authorize' | 'scopeOf'>;
}) {
  const { db, clock, ids, events, deviceEventsRepo, devicesRepo, authorizer } = deps;
  const windowStart = (days: number) => new Date(clock.now().getTime() - days * 86_400_000).toISOString();

  /** Disclosures of the device's keys in the last 30 days, and whether that flags it. */
  async function postRecoveryStatus(organizationId: string, deviceId: string) {
    const count = await deviceEventsRepo.countDisclosures(
      organizationId,
      deviceId,
      windowStart(POST_RECOVERY_WINDOW_DAYS),
    );
    return {
      flagged: count >= POST_RECOVERY_THRESHOLD,
      recoveriesInWindow: count,
      windowDays: POST_RECOVERY_WINDOW_DAYS,
    };
  }

  return {
    postRecoveryStatus,

    /**
     * Stores a batch from the agent (a record sent twice is kept once), updates last seen, and
     * announces the new records with the cause they suggest.
     */
    async reportEvents(caller: { organizationId: string; deviceId: string }, batch: ReportedDeviceEvent[]) {
      const { organizationId, deviceId } = caller;
      const stored = await db.transaction().execute(async (trx) => {
        const now = clock.now().toISOString();
        const device = await devicesRepo.findById(organizationId, deviceId, trx);
        if (!device || device.deleted_at !== null)
          throw new AppError('DEVICE_NOT_FOUND', 'This device is not registered');
        await devicesRepo.update(deviceId, { last_seen_at: now }, trx);
        const fresh: DeviceEventRow[] = [];
        for (const e of batch) {
          const message = e.message === undefined ? null : scrubEventText(e.message);
          const row: DeviceEventRow = {
            id: ids('deviceEvent'),
            organization_id: organizationId,
            device_id: deviceId,
            record_id: e.recordId,
            event_id: e.eventId,
            occurred_at: new Date(e.occurredAt).toISOString(),
            received_at: now,
            level: e.level ?? null,
            protector_id: protectorIdOf(e.eventId, message),
            message,
          };
          if (await deviceEventsRepo.insertIfNew(row, trx)) fresh.push(row);
        }
        return { fresh, now };
      });
      const cause = likelyCause(stored.fresh.map((r) => ({ eventId: r.event_id, message: r.message })));
      if (stored.fresh.length > 0) {
        await events.emit({
          type: 'device.event-reported',
          organizationId,
          deviceId,
          eventIds: stored.fresh.map((r) => r.event_id),
          likelyCause: cause?.cause ?? null,
          occurredAt: stored.now,
        });
      }
      return {
        accepted: stored.fresh.length,
        duplicates: batch.length - stored.fresh.length,
        likelyCause: cause ?? null,
      };
    },

    /**
     * The device's events since `since`, oldest first (at most 500): what a recovery case attaches.
     * The caller has already authorized the device; this reads without a scope.
     */
    async eventsForDevice(
      organizationId: string,
      deviceId: string,
      since: string,
    ): Promise<{ events: DeviceEvent[]; likelyCause: LikelyCause | undefined }> {
      const rows = await deviceEventsRepo.eventsForDevice(organizationId, deviceId, since, 500);
      return {
        events: rows.map(toDeviceEvent),
        likelyCause: likelyCause(rows.map((r) => ({ eventId: r.event_id, message: r.message }))),
      };
    },

    /**
     * What a recovery case attaches: the device's newest `limit` events since `since`, newest first,
     * and the cause they suggest. Taking the newest (not the oldest) keeps the events closest to the
     * lock-out when an agent reported many. The caller has already authorized the device.
     */
    async caseEvidence(
      organizationId: string,
      deviceId: string,
      since: string,
      limit: number,
    ): Promise<{ events: DeviceEvent[]; likelyCause: LikelyCause | undefined }> {
      const rows = await deviceEventsRepo.latestEventsForDevice(organizationId, deviceId, since, limit);
      // likelyCause breaks ties by the most recent event, so it reads them oldest first.
      const chronological = [...rows].reverse();
      return {
        events: rows.map(toDeviceEvent),
        likelyCause: likelyCause(chronological.map((r) => ({ eventId: r.event_id, message: r.message }))),
      };
    },

    /** The device's history in time order, one page at a time; `devices:read` on the device. */
    async timeline(
      principal: Principal,
      deviceId: string,
      page: { order: 'asc' | 'desc'; cursor?: string | undefined; limit: number },
    ) {
      await authorizer.authorize(principal, 'devices:read', { deviceId });
      const organizationId = principal.organizationId;
      const rows = await deviceEventsRepo.timelinePage({
        organizationId,
        deviceId,
        order: page.order,
        after: page.cursor === undefined ? undefined : decodeCursor(page.cursor),
        limit: page.limit,
      });
      const entries = rows.slice(0, page.limit);
      const last = entries[entries.length - 1];
      return {
        entries,
        nextCursor: rows.length > page.limit && last ? encodeCursor(last) : null,
        postRecovery: await postRecoveryStatus(organizationId, deviceId),
      };
    },
  };
}
