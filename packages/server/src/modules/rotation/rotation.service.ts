/**
 * The rotation lifecycle: a request opens on disclosure (single-use passwords) or on demand, is
 * handed to the device at check-in, and closes when the device escrows the replacement and confirms
 * the old protector removed, or reports failure; past its deadline the sweep marks it overdue.
 */
import { parseKeyId } from '@bdevault/bde';
import type { Db, Executor } from '../../db/database.js';
import type { RecoveryKeysTable, RotationStatus } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { EventSink, RotationRequestedEvent } from '../../lib/events.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { AccessRepo } from '../access/access.repo.js';
import type { Authorizer } from '../access/access.service.js';
import type { Principal } from '../access/principal.js';
import type { AuditActorType, AuditWriter } from '../audit/audit.service.js';
import type { DevicesRepo } from '../devices/devices.repo.js';
import type { RecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import type { DeviceEventsRepo } from './device-events.repo.js';
import type { RotationRepo, RotationRow, RotationView } from './rotation.repo.js';

export const DEFAULT_ROTATION_POLICY = { singleUsePasswords: true, deadlineDays: 7 } as const;

export interface RotationPolicy {
  singleUsePasswords: boolean;
  deadlineDays: number;
}

type Actor = { type: AuditActorType; id: string | null };

/** The most keys one on-demand request opens rotations for; calling again continues with the rest. */
export const MAX_KEYS_PER_REQUEST = 2000;

export function toRotation(row: RotationView) {
  return {
    id: row.id,
    status: row.status,
    trigger: row.trigger,
    reason: row.reason,
    recoveryKey: { id: row.recovery_key_id, recoveryKeyId: row.key_id },
    device: { id: row.device_id, name: row.device_name },
    volume: { id: row.volume_id, volumeGuid: row.volume_guid },
    requestedBy: { type: row.requested_by_type, id: row.requested_by_id },
    requestedAt: row.requested_at,
    dueAt: row.due_at,
    deliveredAt: row.delivered_at,
    lastDeliveredAt: row.last_delivered_at,
    completedAt: row.completed_at,
    failedAt: row.failed_at,
    failureReason: row.failure_reason,
    overdueAt: row.overdue_at,
    newRecoveryKey:
      row.new_recovery_key_id === null
        ? null
        : { id: row.new_recovery_key_id, recoveryKeyId: row.new_key_id ?? '' },
  };
}

export type Rotation = ReturnType<typeof toRotation>;

/**
 * The policy a stored row says, or the defaults when the organization never saved one (no row, or
 * the null columns of a LEFT JOIN that found none).
 */
export function rotationPolicyOf(
  row: { single_use_passwords: number | null; deadline_days: number | null } | undefined,
): RotationPolicy {
  return row?.single_use_passwords == null || row.deadline_days == null
    ? { ...DEFAULT_ROTATION_POLICY }
    : { singleUsePasswords: row.single_use_passwords === 1, deadlineDays: row.deadline_days };
}

async function policyOf(
  rotationRepo: Pick<RotationRepo, 'findPolicy'>,
  organizationId: string,
  trx?: Executor,
) {
  return rotationPolicyOf(await rotationRepo.findPolicy(organizationId, trx));
}

/**
 * Opens the key's rotation request, or returns the one already open (one per key: a second
 * disclosure or request changes nothing). The key's status says it awaits rotation.
 */
async function openRotation(
  deps: { rotationRepo: RotationRepo },
  /** The request to open (newRotationRow), unless one is open already. */
  row: RotationRow,
  trx: Executor,
  /** The caller already marked the key as awaiting rotation in the statement that locked it. */
  keyMarked = false,
): Promise<{ row: RotationRow; created: boolean }> {
  const keyId = row.recovery_key_id;
  // Insert first, look up only on a conflict: one statement when the request is new (the usual
  // case: a key's first disclosure). Twice at most: an open request closed between the two.
  for (let attempt = 0; attempt < 2; attempt++) {
    if (await deps.rotationRepo.insertUnlessOpen(row, trx)) {
      if (!keyMarked) await deps.rotationRepo.markKeyRotationPending(keyId, trx);
      return { row, created: true };
    }
    const existing = await deps.rotationRepo.findOpenForKey(keyId, trx);
    if (existing) return { row: existing, created: false };
  }
  throw new Error(`could not open a rotation request for key ${keyId}`);
}

interface NewRotation {
  key: RecoveryKeysTable;
  trigger: 'disclosure' | 'on-demand';
  reason: string | null;
  actor: Actor;
  deadlineDays: number;
}

/** A new rotation request for the key, as it is inserted. */
function newRotationRow(deps: { clock: Clock; ids: IdGenerator }, input: NewRotation): RotationRow {
  const { key } = input;
  const now = deps.clock.now();
  const at = now.toISOString();
  return {
    id: deps.ids('rotationRequest'),
    organization_id: key.organization_id,
    recovery_key_id: key.id,
    device_id: key.device_id,
    volume_id: key.volume_id,
    status: 'requested',
    trigger: input.trigger,
    reason: input.reason,
    requested_by_type: input.actor.type,
    requested_by_id: input.actor.id,
    requested_at: at,
    due_at: new Date(now.getTime() + input.deadlineDays * 86_400_000).toISOString(),
    delivered_at: null,
    last_delivered_at: null,
    completed_at: null,
    failed_at: null,
    failure_reason: null,
    overdue_at: null,
    new_recovery_key_id: null,
    open_key: key.id,
    updated_at: at,
  };
}

/** The event of a request a disclosure opened (its audit entry id is added once it is known). */
function rotationRequestedEvent(
  row: RotationRow,
  key: RecoveryKeysTable,
): Omit<RotationRequestedEvent, 'auditEntryId'> {
  return {
    type: 'rotation.requested',
    organizationId: key.organization_id,
    rotationId: row.id,
    recoveryKeyRecordId: key.id,
    keyId: key.key_id,
    deviceId: key.device_id,
    trigger: 'disclosure',
    dueAt: row.due_at,
    occurredAt: row.requested_at,
  };
}

/** The rotation request a disclosure opened (`created`) or found open, and its event. */
export interface DisclosureRotationOutcome {
  rotationId: string;
  created: boolean;
  event: Omit<RotationRequestedEvent, 'auditEntryId'>;
}

export interface DisclosureRotation {
  /**
   * Called by the disclosure service inside its transaction, after the key row is locked and before
   * the audit row: opens the key's rotation request when the organization's passwords are
   * single-use. Undefined when no rotation is due (policy off, or the key is already history).
   */
  onDisclosure(
    input: {
      key: RecoveryKeysTable;
      actor: Actor;
      reason: string;
      /**
       * The organization's policy, read before the transaction. Under single-use passwords the
       * statement that locked the key has already marked it `rotation_pending` (markDisclosed).
       */
      policy: RotationPolicy;
    },
    trx: Executor,
  ): Promise<DisclosureRotationOutcome | undefined>;
  /**
   * The request `onDisclosure` would open for a key that has none open, without writing it: for a
   * statement that writes it together with the disclosure (recovery-keys' one-statement
   * disclosure). Undefined when no rotation is due.
   */
  plan(input: {
    key: RecoveryKeysTable;
    actor: Actor;
    reason: string;
    policy: RotationPolicy;
  }): { row: RotationRow; event: Omit<RotationRequestedEvent, 'auditEntryId'> } | undefined;
}

export function createDisclosureRotation(deps: {
  clock: Clock;
  ids: IdGenerator;
  rotationRepo: RotationRepo;
}): DisclosureRotation {
  const plan: DisclosureRotation['plan'] = ({ key, actor, reason, policy }) => {
    if (key.status === 'superseded' || !policy.singleUsePasswords) return undefined;
    const row = newRotationRow(deps, {
      key,
      trigger: 'disclosure',
      reason,
      actor,
      deadlineDays: policy.deadlineDays,
    });
    return { row, event: rotationRequestedEvent(row, key) };
  };
  return {
    plan,
    async onDisclosure(input, trx) {
      const planned = plan(input);
      if (!planned) return undefined;
      const { row, created } = await openRotation(deps, planned.row, trx, true);
      // No device lookup here, inside the disclosure transaction: subscribers read its name.
      return { rotationId: row.id, created, event: rotationRequestedEvent(row, input.key) };
    },
  };
}

/** What the device reports for one rotation. */
export type RotationResult =
  | { outcome: 'completed'; newRecoveryKeyId: string; oldProtectorRemoved: true }
  | { outcome: 'failed'; reason: string };

export type RotationService = ReturnType<typeof createRotationService>;

export function createRotationService(deps: {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  auditWriter: AuditWriter;
  events: EventSink;
  rotationRepo: RotationRepo;
  devicesRepo: Pick<DevicesRepo, 'findById' | 'update'>;
  recoveryKeysRepo: Pick<RecoveryKeysRepo, 'findByKeyId' | 'findById' | 'supersede'>;
  deviceEventsRepo: Pick<DeviceEventsRepo, 'upsertAgentStatus'>;
  authorizer: Pick<Authorizer, 'authorize' | 'authorizeRecoveryKey' | 'scopeOf'>;
  accessRepo: Pick<AccessRepo, 'findGroup'>;
}) {
  const { db, clock, auditWriter, events, rotationRepo, devicesRepo, recoveryKeysRepo, authorizer } = deps;

  const requestedEvent = (view: RotationView, auditEntryId: string): RotationRequestedEvent => ({
    type: 'rotation.requested',
    organizationId: view.organization_id,
    rotationId: view.id,
    recoveryKeyRecordId: view.recovery_key_id,
    keyId: view.key_id,
    deviceId: view.device_id,
    deviceName: view.device_name,
    auditEntryId,
    trigger: view.trigger,
    dueAt: view.due_at,
    occurredAt: view.requested_at,
  });

  /** Opens requests for `keys` in one transaction with one audit row naming the target. */
  async function requestOnDemand(
    principal: Principal,
    target: { type: 'recovery-key' | 'device' | 'device-group'; id: string },
    findKeys: (trx: Executor) => Promise<RecoveryKeysTable[]>,
    options: { reason: string | null; actor: Actor; requestId: string },
  ) {
    const organizationId = principal.organizationId;
    const outcome = await db.transaction().execute(async (trx) => {
      const policy = await policyOf(rotationRepo, organizationId, trx);
      const keys = await findKeys(trx);
      const opened: { row: RotationRow; created: boolean }[] = [];
      for (const key of keys) {
        opened.push(
          await openRotation(
            deps,
            newRotationRow(deps, {
              key,
              trigger: 'on-demand',
              reason: options.reason,
              actor: options.actor,
              deadlineDays: policy.deadlineDays,
            }),
            trx,
          ),
        );
      }
      const created = opened.filter((o) => o.created);
      const audit = await auditWriter.append(
        {
          organizationId,
          actor: options.actor,
          action: 'rotation.requested',
          target,
          outcome: 'success',
          ...(options.reason === null ? {} : { reason: options.reason }),
          details: {
            created: created.length,
            alreadyOpen: opened.length - created.length,
            rotationIds: created
              .slice(0, 20)
              .map((o) => o.row.id)
              .join(' '),
          },
          requestId: options.requestId,
        },
        trx,
      );
      const views: RotationView[] = [];
      for (const o of opened.slice(0, 200)) {
        const view = await rotationRepo.findView(organizationId, o.row.id, trx);
        if (view) views.push(view);
      }
      return { opened, views, auditEntryId: audit.id, truncated: keys.length >= MAX_KEYS_PER_REQUEST };
    });
    const createdIds = new Set(outcome.opened.filter((o) => o.created).map((o) => o.row.id));
    for (const view of outcome.views) {
      if (createdIds.has(view.id)) await events.emit(requestedEvent(view, outcome.auditEntryId));
    }
    return {
      created: createdIds.size,
      alreadyOpen: outcome.opened.length - createdIds.size,
      truncated: outcome.truncated,
      rotations: outcome.views.map(toRotation),
    };
  }

  return {
    async getPolicy(organizationId: string): Promise<RotationPolicy> {
      return policyOf(rotationRepo, organizationId);
    },

    async setPolicy(
      organizationId: string,
      change: Partial<RotationPolicy>,
      actor: Actor,
      requestId: string,
    ): Promise<RotationPolicy> {
      return db.transaction().execute(async (trx) => {
        const current = await policyOf(rotationRepo, organizationId, trx);
        const next = { ...current, ...change };
        await rotationRepo.upsertPolicy(
          {
            organization_id: organizationId,
            single_use_passwords: next.singleUsePasswords ? 1 : 0,
            deadline_days: next.deadlineDays,
            updated_at: clock.now().toISOString(),
          },
          trx,
        );
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'rotation.policy-changed',
            target: { type: 'organization', id: organizationId },
            outcome: 'success',
            details: { singleUsePasswords: next.singleUsePasswords, deadlineDays: next.deadlineDays },
            requestId,
          },
          trx,
        );
        return next;
      });
    },

    /** One key; it must still be current (a superseded key is no longer on the device). */
    async requestForKey(
      principal: Principal,
      recoveryKeyRecordId: string,
      options: { reason: string | null; actor: Actor; requestId: string },
    ) {
      return requestOnDemand(
        principal,
        { type: 'recovery-key', id: recoveryKeyRecordId },
        async (trx) => {
          const { key } = await authorizer.authorizeRecoveryKey(
            principal,
            'rotation:request',
            recoveryKeyRecordId,
            trx,
          );
          if (key.status === 'superseded') {
            throw new AppError(
              'ROTATION_CLOSED',
              'This key is already superseded; there is nothing to rotate',
            );
          }
          return [key];
        },
        options,
      );
    },

    /** Every current key of the device. */
    async requestForDevice(
      principal: Principal,
      deviceId: string,
      options: { reason: string | null; actor: Actor; requestId: string },
    ) {
      return requestOnDemand(
        principal,
        { type: 'device', id: deviceId },
        async (trx) => {
          const device = await authorizer.authorize(principal, 'rotation:request', { deviceId }, trx);
          if (device.deleted_at !== null) throw new AppError('DEVICE_NOT_FOUND', 'No such device');
          const scope = authorizer.scopeOf(principal, 'rotation:request');
          const fresh = await rotationRepo.currentKeysWithoutRequest(
            principal.organizationId,
            { deviceId },
            scope,
            MAX_KEYS_PER_REQUEST,
            trx,
          );
          // Keys that already have an open request are reported too (idempotent answer).
          const open = (await rotationRepo.openForDevice(deviceId, trx)).map((v) => v.recovery_key_id);
          const reopened = [];
          for (const id of open) {
            const key = await recoveryKeysRepo.findById(principal.organizationId, id, trx);
            if (key) reopened.push(key);
          }
          return [...fresh, ...reopened];
        },
        options,
      );
    },

    /**
     * Every current key of the group's devices the caller may rotate. The caller must hold
     * `rotation:request` on the group itself (organization-wide, or scoped to it); else 404.
     */
    async requestForGroup(
      principal: Principal,
      deviceGroupId: string,
      options: { reason: string | null; actor: Actor; requestId: string },
    ) {
      const scope = authorizer.scopeOf(principal, 'rotation:request');
      const covers =
        scope.kind === 'all' ||
        (scope.kind === 'groups' && scope.constraints.every((c) => c.includes(deviceGroupId)));
      const group = await deps.accessRepo.findGroup(principal.organizationId, deviceGroupId);
      if (!group || !covers) throw new AppError('NOT_FOUND', 'No such device group');
      return requestOnDemand(
        principal,
        { type: 'device-group', id: deviceGroupId },
        (trx) =>
          rotationRepo.currentKeysWithoutRequest(
            principal.organizationId,
            { deviceGroupId },
            scope,
            MAX_KEYS_PER_REQUEST,
            trx,
          ),
        options,
      );
    },

    async list(
      principal: Principal,
      filter: { status?: RotationStatus | undefined; deviceId?: string | undefined },
      limit: number,
      before: { at: string; id: string } | undefined,
    ) {
      const rows = await rotationRepo.list(
        principal.organizationId,
        { ...filter, before },
        authorizer.scopeOf(principal, 'keys:read-metadata'),
        limit + 1,
      );
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        rotations: page.map(toRotation),
        next: rows.length > limit && last ? { at: last.requested_at, id: last.id } : undefined,
      };
    },

    async get(principal: Principal, rotationId: string) {
      const view = await rotationRepo.findView(principal.organizationId, rotationId);
      if (!view) throw new AppError('NOT_FOUND', 'No such rotation');
      try {
        await authorizer.authorize(principal, 'keys:read-metadata', { deviceId: view.device_id });
      } catch {
        throw new AppError('NOT_FOUND', 'No such rotation');
      }
      return toRotation(view);
    },

    /** A rotation by id without a caller's scope, for services that already authorized (cases, reports). */
    async findForOrganization(organizationId: string, rotationId: string): Promise<Rotation | undefined> {
      const view = await rotationRepo.findView(organizationId, rotationId);
      return view ? toRotation(view) : undefined;
    },

    /**
     * The agent's heartbeat: records what it reports and hands it every open rotation of the
     * device (again at each check-in until it reports a result, so a crash mid-rotation is retried).
     */
    async checkIn(
      caller: { organizationId: string; deviceId: string },
      input: {
        agentVersion?: string | undefined;
        device?:
          | {
              dnsName?: string | undefined;
              os?: string | undefined;
              serialNumber?: string | undefined;
              registeredOwner?: string | undefined;
            }
          | undefined;
      },
    ) {
      const { organizationId, deviceId } = caller;
      return db.transaction().execute(async (trx) => {
        const now = clock.now().toISOString();
        const device = await devicesRepo.findById(organizationId, deviceId, trx);
        if (!device || device.deleted_at !== null)
          throw new AppError('DEVICE_NOT_FOUND', 'This device is not registered');
        const facts = input.device ?? {};
        await devicesRepo.update(
          deviceId,
          {
            last_seen_at: now,
            ...(facts.dnsName === undefined ? {} : { dns_name: facts.dnsName }),
            ...(facts.os === undefined ? {} : { os: facts.os }),
            ...(facts.serialNumber === undefined ? {} : { serial_number: facts.serialNumber }),
            ...(facts.registeredOwner === undefined ? {} : { registered_owner: facts.registeredOwner }),
          },
          trx,
        );
        await deps.deviceEventsRepo.upsertAgentStatus(
          {
            device_id: deviceId,
            organization_id: organizationId,
            agent_version: input.agentVersion ?? null,
            last_check_in_at: now,
          },
          trx,
        );
        const open = await rotationRepo.openForDevice(deviceId, trx);
        await rotationRepo.markDelivered(
          open.map((r) => r.id),
          now,
          trx,
        );
        return {
          serverTime: now,
          actions: open.map((r) => ({
            type: 'rotate-recovery-password' as const,
            rotationId: r.id,
            recoveryKeyId: r.key_id,
            volumeGuid: r.volume_guid,
            requestedAt: r.requested_at,
            dueAt: r.due_at,
          })),
        };
      });
    },

    /**
     * The device's result. Completion needs the replacement escrowed first (same device and volume)
     * and the old protector confirmed removed; the old key then becomes history. Reporting the same
     * completion again answers the same; anything else on a closed request is a conflict.
     */
    async reportResult(
      caller: { organizationId: string; deviceId: string },
      rotationId: string,
      result: RotationResult,
      requestId: string,
    ): Promise<Rotation> {
      const { organizationId, deviceId } = caller;
      const actor: Actor = { type: 'device', id: deviceId };
      const done = await db.transaction().execute(async (trx) => {
        const view = await rotationRepo.findView(organizationId, rotationId, trx);
        if (!view || view.device_id !== deviceId) throw new AppError('NOT_FOUND', 'No such rotation');
        const now = clock.now().toISOString();
        if (result.outcome === 'completed') {
          const newKeyId = parseKeyId(result.newRecoveryKeyId);
          if (view.status === 'completed' && view.new_key_id === newKeyId) return { view, changed: false };
          if (view.status === 'completed' || view.status === 'failed') {
            throw new AppError('ROTATION_CLOSED', 'This rotation is already closed');
          }
          const replacement = await recoveryKeysRepo.findByKeyId(organizationId, newKeyId, trx);
          if (
            !replacement ||
            replacement.device_id !== deviceId ||
            replacement.volume_id !== view.volume_id ||
            replacement.id === view.recovery_key_id ||
            replacement.status === 'superseded'
          ) {
            throw new AppError(
              'ROTATION_KEY_NOT_ESCROWED',
              'Escrow the new recovery password for this volume before reporting the rotation complete',
            );
          }
          if (
            !(await rotationRepo.close(
              rotationId,
              {
                status: 'completed',
                completed_at: now,
                new_recovery_key_id: replacement.id,
                updated_at: now,
              },
              trx,
            ))
          ) {
            throw new AppError('ROTATION_CLOSED', 'This rotation is already closed');
          }
          const old = await recoveryKeysRepo.findById(organizationId, view.recovery_key_id, trx);
          if (old && old.status !== 'superseded') await recoveryKeysRepo.supersede([old.id], now, trx);
          const audit = await auditWriter.append(
            {
              organizationId,
              actor,
              action: 'rotation.completed',
              target: { type: 'rotation', id: rotationId },
              outcome: 'success',
              details: {
                recoveryKeyId: view.key_id,
                newRecoveryKeyId: replacement.key_id,
                deviceId,
              },
              requestId,
            },
            trx,
          );
          const closed = (await rotationRepo.findView(organizationId, rotationId, trx))!;
          return { view: closed, changed: true, auditEntryId: audit.id };
        }
        if (
          !(await rotationRepo.close(
            rotationId,
            { status: 'failed', failed_at: now, failure_reason: result.reason, updated_at: now },
            trx,
          ))
        ) {
          throw new AppError('ROTATION_CLOSED', 'This rotation is already closed');
        }
        const audit = await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'rotation.failed',
            target: { type: 'rotation', id: rotationId },
            outcome: 'failure',
            reason: result.reason,
            details: { recoveryKeyId: view.key_id, deviceId },
            requestId,
          },
          trx,
        );
        const closed = (await rotationRepo.findView(organizationId, rotationId, trx))!;
        return { view: closed, changed: true, auditEntryId: audit.id };
      });
      const { view } = done;
      if (done.changed && done.auditEntryId !== undefined) {
        const base = {
          organizationId,
          rotationId,
          recoveryKeyRecordId: view.recovery_key_id,
          keyId: view.key_id,
          deviceId,
          deviceName: view.device_name,
          auditEntryId: done.auditEntryId,
          occurredAt: view.updated_at,
        };
        await events.emit(
          view.status === 'completed'
            ? {
                ...base,
                type: 'rotation.completed',
                newRecoveryKeyRecordId: view.new_recovery_key_id ?? '',
                newKeyId: view.new_key_id ?? '',
              }
            : { ...base, type: 'rotation.failed', reason: view.failure_reason ?? '' },
        );
      }
      return toRotation(view);
    },

    /**
     * Marks every open request past its deadline overdue, each once (a guarded update, so two
     * servers sweeping together still raise one event), audits it and emits `rotation.overdue`.
     */
    async sweepOverdue(): Promise<string[]> {
      const marked: string[] = [];
      for (;;) {
        const now = clock.now().toISOString();
        const due = await rotationRepo.dueForOverdue(now, 200);
        for (const row of due) {
          const outcome = await db.transaction().execute(async (trx) => {
            if (!(await rotationRepo.markOverdue(row.id, now, trx))) return undefined;
            const view = (await rotationRepo.findView(row.organization_id, row.id, trx))!;
            const audit = await auditWriter.append(
              {
                organizationId: row.organization_id,
                actor: { type: 'system', id: null },
                action: 'rotation.overdue',
                target: { type: 'rotation', id: row.id },
                outcome: 'failure',
                details: { recoveryKeyId: view.key_id, deviceId: view.device_id, dueAt: view.due_at },
              },
              trx,
            );
            return { view, auditEntryId: audit.id };
          });
          if (!outcome) continue;
          marked.push(row.id);
          const { view } = outcome;
          await events.emit({
            type: 'rotation.overdue',
            organizationId: view.organization_id,
            rotationId: view.id,
            recoveryKeyRecordId: view.recovery_key_id,
            keyId: view.key_id,
            deviceId: view.device_id,
            deviceName: view.device_name,
            auditEntryId: outcome.auditEntryId,
            dueAt: view.due_at,
            occurredAt: now,
          });
        }
        if (due.length < 200) return marked;
      }
    },
  };
}
