/**
 * The helpdesk recovery case: the seven steps of the checklist (verify identity, record the device,
 * record the key id, locate, root cause, provide, rotate), in order, each audited with who and when.
 * The password is provided only through the one disclosure service, and only once identity is verified.
 */
import { parseKeyId, parseKeyIdPrefix } from '@bdevault/bde';
import { sql, type Transaction } from 'kysely';
import type { Db, Executor } from '../../db/database.js';
import type { Database, RecoveryCaseStatus } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import type { Envelope } from '../../lib/envelope.js';
import { AppError, isAppError } from '../../lib/errors.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { MailSender } from '../../lib/mail.js';
import type { RandomSource } from '../../lib/random.js';
import type { Authorizer } from '../access/access.service.js';
import type { Permission } from '../access/permissions.js';
import type { AuditActorType, AuditWriter } from '../audit/audit.service.js';
import type { DevicesRepo } from '../devices/devices.repo.js';
import type { PasswordHasher } from '../identity/password-hasher.js';
import type { RecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import type { RecoveryKeysService } from '../recovery-keys/recovery-keys.service.js';
import type { DeviceEventsService } from '../rotation/device-events.service.js';
import { checkReadBack, readoutOf } from './password-readout.js';
import { disclosureReasonText, type DisclosureReasonCode } from './reason-codes.js';
import type { RecoveryCaseRow, RecoveryCasesRepo, RecoveryCaseStepRow } from './recovery-cases.repo.js';
import type { CaseStep, IdentityMethod } from './recovery-cases.schemas.js';
import {
  classifyRootCause,
  ROOT_CAUSE_CATALOG,
  type RootCauseAnswers,
  type RootCauseClass,
} from './root-causes.js';

/** The account acting on a case (routes accept users and API tokens; a personal token counts as its user). */
export interface CaseCaller {
  organizationId: string;
  account: { type: 'user' | 'api-token'; id: string };
  /** What the audit log records as the actor (the token itself for a personal token). */
  actor: { type: 'user' | 'api-token'; id: string };
  /** Where the caller may use a permission; answers with the device or throws DEVICE_NOT_FOUND. */
  principal: Parameters<Authorizer['authorize']>[0];
  address: string | undefined;
  requestId: string;
}

/**
 * Where a case learns how its rotation went. The disclosure itself opens the rotation request (the
 * rotation module's single-use policy, inside the disclosure transaction); the case keeps its id and
 * asks this when it is read. Without a tracker the case follows the key: superseded means replaced.
 */
export interface RotationTracker {
  stateOf(organizationId: string, rotationRequestId: string): Promise<RotationState | undefined>;
}

export type RotationState = 'pending' | 'completed' | 'failed' | 'not-required';

export interface CasePolicy {
  identityMethods: IdentityMethod[];
  requireDisclosureApproval: boolean;
  allowRootCauseAfterDisclosure: boolean;
}

/** Every method allowed, no second approver, root cause before disclosure: Microsoft's checklist as written. */
export const DEFAULT_CASE_POLICY: CasePolicy = {
  identityMethods: ['email-code', 'second-person', 'attested'],
  requireDisclosureApproval: false,
  allowRootCauseAfterDisclosure: false,
};

/**
 * Which BitLocker events a case shows: those from a week before it was opened (a lock-out often
 * follows a firmware update or PIN failures days earlier) until now, the newest 50 (a screen's worth).
 */
export const CASE_EVENTS_WINDOW_DAYS = 7;
export const CASE_EVENTS_LIMIT = 50;

export const CODE_TTL_MS = 10 * 60 * 1000;
export const CODE_MAX_ATTEMPTS = 5;
const CODES_PER_CASE = 5;
const READ_BACKS_PER_CASE = 20;

type StepKind = CaseStep | 'approval' | 'owner-override' | 'read-back' | 'cancel';
type Details = Record<string, string | number | boolean | null>;

interface Requester {
  id: string;
  username: string;
  display_name: string;
  email: string | null;
}

export type RecoveryCasesService = ReturnType<typeof createRecoveryCasesService>;

function maskEmail(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 1) return '***';
  return `${address[0]}***${address.slice(at)}`;
}

const DONE: readonly RecoveryCaseStatus[] = ['closed', 'cancelled'];

export function createRecoveryCasesService(deps: {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  random: RandomSource;
  envelope: Envelope;
  auditWriter: AuditWriter;
  passwordHasher: PasswordHasher;
  mail: MailSender;
  authorizer: Pick<Authorizer, 'authorize' | 'scopeOf'>;
  repo: RecoveryCasesRepo;
  devicesRepo: Pick<DevicesRepo, 'searchByName'>;
  recoveryKeysRepo: Pick<RecoveryKeysRepo, 'findById' | 'listMetadata'>;
  recoveryKeys: Pick<RecoveryKeysService, 'discloseRecoveryPassword'>;
  rotation?: RotationTracker | undefined;
  /** The agent's BitLocker events; without it a case shows none. */
  deviceEvents?: Pick<DeviceEventsService, 'caseEvidence'> | undefined;
}) {
  const { db, clock, ids, random, envelope, auditWriter, passwordHasher, mail, authorizer, repo } = deps;
  const { devicesRepo, recoveryKeysRepo, recoveryKeys, rotation, deviceEvents } = deps;

  async function policyOf(organizationId: string, trx?: Executor): Promise<CasePolicy> {
    const row = await repo.findPolicy(organizationId, trx);
    if (!row) return DEFAULT_CASE_POLICY;
    return {
      identityMethods: JSON.parse(row.identity_methods) as IdentityMethod[],
      requireDisclosureApproval: row.require_disclosure_approval === 1,
      allowRootCauseAfterDisclosure: row.allow_root_cause_after_disclosure === 1,
    };
  }

  async function requesterOf(organizationId: string, userId: string, trx: Executor = db) {
    return trx
      .selectFrom('users as u')
      .innerJoin('memberships as m', 'm.user_id', 'u.id')
      .select(['u.id', 'u.username', 'u.display_name', 'u.email'])
      .where('m.organization_id', '=', organizationId)
      .where('u.id', '=', userId)
      .where('u.disabled_at', 'is', null)
      .executeTakeFirst() as Promise<Requester | undefined>;
  }

  /** The device's owner decides whether the verified person may be given its password. */
  async function ownerMatchOf(row: RecoveryCaseRow, deviceId: string, trx: Executor) {
    const device = await trx
      .selectFrom('devices')
      .select('owner_user_id')
      .where('id', '=', deviceId)
      .executeTakeFirstOrThrow();
    if (device.owner_user_id === null) return 'unknown' as const;
    return device.owner_user_id === row.requester_user_id ? ('match' as const) : ('mismatch' as const);
  }

  /**
   * A case is visible where the caller may use `permission` on its device; before a device is
   * recorded, to its operator and to callers who hold the permission organization-wide. Anything
   * else answers 404, like a missing case.
   */
  async function visibleCase(caller: CaseCaller, caseId: string, permission: Permission, trx?: Executor) {
    const row = await repo.findCase(caller.organizationId, caseId, trx);
    if (!row) throw new AppError('CASE_NOT_FOUND', 'No such recovery case');
    if (row.device_id !== null) {
      try {
        await authorizer.authorize(caller.principal, permission, { deviceId: row.device_id }, trx);
      } catch (err) {
        if (isAppError(err, 'DEVICE_NOT_FOUND'))
          throw new AppError('CASE_NOT_FOUND', 'No such recovery case');
        throw err;
      }
    } else {
      const orgWide = authorizer.scopeOf(caller.principal, permission).kind === 'all';
      const own = row.operator_type === caller.account.type && row.operator_id === caller.account.id;
      if (!orgWide && !own) throw new AppError('CASE_NOT_FOUND', 'No such recovery case');
    }
    return row;
  }

  function conflict(message: string): AppError {
    return new AppError('CASE_STATE_CONFLICT', message);
  }

  function assertActive(row: RecoveryCaseRow) {
    if (DONE.includes(row.status)) throw conflict(`The case is ${row.status}`);
  }

  function rootCauseOwed(row: RecoveryCaseRow) {
    return row.root_cause_class === null;
  }

  function approved(row: RecoveryCaseRow) {
    return row.disclosure_approved_by_id !== null;
  }

  /** The stored status after a change; closing on rotation happens when the case is read. */
  function statusAfter(row: RecoveryCaseRow, policy: CasePolicy): RecoveryCaseStatus {
    if (DONE.includes(row.status)) return row.status;
    // Closing (once the rotation is done or none is due) happens when the case is read: viewOf.
    if (row.disclosed_at !== null) return rootCauseOwed(row) ? 'disclosed' : 'awaiting-rotation';
    if (row.identity_method === 'second-person' && row.identity_verified_at === null)
      return 'awaiting-approval';
    const readyForApproval =
      row.located_at !== null && (!rootCauseOwed(row) || policy.allowRootCauseAfterDisclosure);
    if (readyForApproval && policy.requireDisclosureApproval && !approved(row)) return 'awaiting-approval';
    return 'open';
  }

  function nextStepOf(row: RecoveryCaseRow, policy: CasePolicy): string | null {
    if (DONE.includes(row.status)) return null;
    if (row.identity_verified_at === null) {
      return row.identity_method === 'second-person' ? 'approval' : 'identity';
    }
    if (row.device_id === null) return 'device';
    if (row.key_match !== 'this-device') return 'key-id';
    if (row.located_at === null) return 'locate';
    if (row.disclosed_at === null) {
      if (rootCauseOwed(row) && !policy.allowRootCauseAfterDisclosure) return 'root-cause';
      if (row.owner_match === 'mismatch' && row.owner_override_at === null) return 'owner-override';
      if (policy.requireDisclosureApproval && !approved(row)) return 'approval';
      return 'disclose';
    }
    if (rootCauseOwed(row)) return 'root-cause';
    return 'rotate';
  }

  /**
   * Whether the disclosed key has been replaced: the rotation module's answer when it tracks the
   * request, else the key itself (superseded once the device escrowed a new password).
   */
  async function rotationStateOf(row: RecoveryCaseRow): Promise<RotationState | undefined> {
    if (row.disclosed_at === null || row.recovery_key_id === null) return undefined;
    // The organization's policy did not make this password single-use: nothing to wait for.
    if (row.rotation_request_id === null) return 'not-required';
    if (rotation) {
      const state = await rotation.stateOf(row.organization_id, row.rotation_request_id);
      if (state !== undefined) return state;
    }
    const key = await recoveryKeysRepo.findById(row.organization_id, row.recovery_key_id);
    return key?.status === 'superseded' ? 'completed' : 'pending';
  }

  async function appendStep(
    trx: Transaction<Database>,
    row: RecoveryCaseRow,
    caller: { actor: { type: AuditActorType; id: string | null }; requestId: string },
    step: StepKind,
    action: string,
    details: Details,
    outcome: 'success' | 'failure' = 'success',
    reason?: string,
  ) {
    const audit = await auditWriter.append(
      {
        organizationId: row.organization_id,
        actor: caller.actor,
        action: `case.${action}`,
        target: { type: 'recovery-case', id: row.id },
        outcome,
        ...(reason === undefined ? {} : { reason }),
        details: { step, ...details },
        requestId: caller.requestId,
      },
      trx,
    );
    const last = await trx
      .selectFrom('recovery_case_steps')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('case_id', '=', row.id)
      .executeTakeFirst();
    await repo.insertStep(
      {
        id: ids('recoveryCaseStep'),
        case_id: row.id,
        seq: Number(last?.seq ?? 0) + 1,
        step,
        action,
        actor_type: caller.actor.type,
        actor_id: caller.actor.id,
        occurred_at: clock.now().toISOString(),
        details: JSON.stringify({ ...details, ...(outcome === 'failure' ? { outcome } : {}) }),
        audit_entry_id: audit.id,
      },
      trx,
    );
    return audit;
  }

  /**
   * One step on one case, in one transaction: lock the case, check the order, apply the change,
   * recompute the status, audit and record the step. Whatever fails rolls all of it back.
   */
  async function step<T>(
    caller: CaseCaller,
    caseId: string,
    permission: Permission,
    apply: (
      row: RecoveryCaseRow,
      policy: CasePolicy,
      trx: Transaction<Database>,
    ) => Promise<{
      changes: Partial<RecoveryCaseRow>;
      kind: StepKind;
      action: string;
      details: Details;
      result: T;
    }>,
  ): Promise<{ view: Awaited<ReturnType<typeof renderCase>>; result: T }> {
    await visibleCase(caller, caseId, permission);
    const policy = await policyOf(caller.organizationId);
    const result = await db.transaction().execute(async (trx) => {
      const now = clock.now().toISOString();
      const row = await repo.lockCase(caller.organizationId, caseId, now, trx);
      if (!row) throw new AppError('CASE_NOT_FOUND', 'No such recovery case');
      assertActive(row);
      const outcome = await apply(row, policy, trx);
      const next = { ...row, ...outcome.changes, updated_at: now };
      next.status = outcome.changes.status ?? statusAfter(next, policy);
      await repo.updateCase(row.id, { ...outcome.changes, status: next.status, updated_at: now }, trx);
      await appendStep(trx, next, caller, outcome.kind, outcome.action, outcome.details);
      return outcome.result;
    });
    return { view: await viewOf(caller, caseId, permission), result };
  }

  /** Distinct people: the approver must not be the operator or anyone who worked the case. */
  async function assertSecondPerson(row: RecoveryCaseRow, caller: CaseCaller, trx: Executor) {
    const same = (type: string, id: string | null) =>
      type === caller.account.type && id === caller.account.id;
    if (same(row.operator_type, row.operator_id)) {
      throw new AppError('FORBIDDEN', 'The operator of a case cannot approve it; a second person must');
    }
    const steps = await repo.stepsOf(row.id, trx);
    if (steps.some((s) => s.step !== 'approval' && same(s.actor_type, accountIdOfStep(s)))) {
      throw new AppError('FORBIDDEN', 'Someone who worked this case cannot approve it; a second person must');
    }
  }

  /** A step records the audit actor; a personal token's steps count as its user (stored in details). */
  function accountIdOfStep(s: RecoveryCaseStepRow): string | null {
    const details = JSON.parse(s.details) as { accountId?: string };
    return details.accountId ?? s.actor_id;
  }

  async function viewOf(caller: CaseCaller, caseId: string, permission: Permission = 'cases:work') {
    let row = await visibleCase(caller, caseId, permission);
    const policy = await policyOf(row.organization_id);
    const rotationState = await rotationStateOf(row);
    // The case follows its rotation: it closes once the device has replaced the disclosed key.
    if (
      row.status === 'awaiting-rotation' &&
      (rotationState === 'completed' || rotationState === 'not-required')
    ) {
      row = await db.transaction().execute(async (trx) => {
        const now = clock.now().toISOString();
        const locked = await repo.lockCase(row.organization_id, row.id, now, trx);
        if (!locked || locked.status !== 'awaiting-rotation') return locked ?? row;
        await repo.updateCase(locked.id, { status: 'closed', closed_at: now }, trx);
        await appendStep(
          trx,
          locked,
          { actor: { type: 'system', id: null }, requestId: caller.requestId },
          'rotate',
          'closed',
          { rotationRequestId: locked.rotation_request_id, recoveryKeyRecordId: locked.recovery_key_id },
        );
        return { ...locked, status: 'closed' as const, closed_at: now };
      });
    }
    return renderCase(row, policy, rotationState);
  }

  /**
   * The recorded device's BitLocker events and the cause they suggest, beside the root-cause step.
   * Only a suggestion: the helpdesk still records its own answers. Event text is left out (the
   * summary says what each id means), so a case shows no more than the checklist needs.
   */
  async function deviceEventsOf(row: RecoveryCaseRow) {
    if (row.device_id === null || !deviceEvents) return null;
    const since = new Date(
      new Date(row.created_at).getTime() - CASE_EVENTS_WINDOW_DAYS * 86_400_000,
    ).toISOString();
    const found = await deviceEvents.caseEvidence(
      row.organization_id,
      row.device_id,
      since,
      CASE_EVENTS_LIMIT,
    );
    return {
      since,
      events: found.events.map((e) => ({
        id: e.id,
        eventId: e.eventId,
        role: e.role,
        summary: e.summary,
        occurredAt: e.occurredAt,
        level: e.level,
        protectorId: e.protectorId,
      })),
      suggestedRootCause: found.likelyCause
        ? {
            ...found.likelyCause,
            title: ROOT_CAUSE_CATALOG[found.likelyCause.cause].title,
          }
        : null,
    };
  }

  async function renderCase(
    row: RecoveryCaseRow,
    policy: CasePolicy,
    rotationState: RotationState | undefined,
  ) {
    const requester = await requesterOf(row.organization_id, row.requester_user_id);
    const device =
      row.device_id === null
        ? null
        : await db
            .selectFrom('devices')
            .select(['id', 'name'])
            .where('id', '=', row.device_id)
            .executeTakeFirst();
    const steps = await repo.stepsOf(row.id);
    const warnings: string[] = [];
    if (row.owner_match === 'mismatch') {
      warnings.push(
        row.owner_override_at === null
          ? 'The device does not belong to the verified user: an override (cases:override-owner) is needed before disclosure'
          : 'The device does not belong to the verified user; the mismatch was overridden',
      );
    }
    if (row.owner_match === 'unknown')
      warnings.push('The device has no recorded owner: check it belongs to the user');
    if (row.key_match === 'other-device') {
      warnings.push('The key id belongs to another device: the drive may have moved');
    }
    if (rotationState === 'failed')
      warnings.push('The rotation failed: the disclosed password is still valid');
    if (row.root_cause_class === 'malware-suspected') {
      warnings.push('Malware or tampering suspected: apply the incident policy');
    }
    const answers =
      row.root_cause_answers === null ? null : (JSON.parse(row.root_cause_answers) as RootCauseAnswers);
    const resolution =
      row.root_cause_class === null ? null : ROOT_CAUSE_CATALOG[row.root_cause_class as RootCauseClass];
    return {
      id: row.id,
      status: row.status,
      reference: row.reference,
      requester: {
        id: row.requester_user_id,
        username: requester?.username ?? '',
        displayName: requester?.display_name ?? '',
      },
      operator: { type: row.operator_type, id: row.operator_id },
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      closedAt: row.closed_at,
      nextStep: nextStepOf(row, policy),
      warnings,
      identity: {
        method: row.identity_method as IdentityMethod | null,
        verified: row.identity_verified_at !== null,
        verifiedAt: row.identity_verified_at,
        ownerMatch: row.owner_match,
        ownerOverridden: row.owner_override_at !== null,
      },
      device: device ? { id: device.id, name: device.name } : null,
      key: {
        entered: row.key_id_entered,
        match: row.key_match,
        recoveryKeyRecordId: row.key_match === 'this-device' ? row.recovery_key_id : null,
        located: row.located_at !== null,
      },
      deviceEvents: await deviceEventsOf(row),
      rootCause:
        answers && resolution
          ? { answers, resolution: { ...resolution, steps: [...resolution.steps] } }
          : null,
      approval: {
        required: policy.requireDisclosureApproval,
        approved: approved(row),
        approvedBy:
          row.disclosure_approved_by_type === null
            ? null
            : { type: row.disclosure_approved_by_type, id: row.disclosure_approved_by_id },
      },
      disclosure:
        row.disclosed_at === null
          ? null
          : {
              disclosedAt: row.disclosed_at,
              reasonCode: row.reason_code,
              auditEntryId: row.disclosure_audit_id,
            },
      rotation:
        rotationState === undefined ? null : { requestId: row.rotation_request_id, state: rotationState },
      steps: steps.map((s) => {
        const details = JSON.parse(s.details) as Details;
        delete details.accountId;
        return {
          step: s.step as StepKind,
          action: s.action,
          actor: { type: s.actor_type, id: s.actor_id },
          occurredAt: s.occurred_at,
          auditEntryId: s.audit_entry_id,
          details,
        };
      }),
    };
  }

  function sixDigits(): string {
    // Rejection sampling keeps the code uniform over 000000–999999.
    for (;;) {
      const n = random.bytes(4).readUInt32BE(0);
      if (n < 4_294_000_000) return String(n % 1_000_000).padStart(6, '0');
    }
  }

  const codeSecret = (caseId: string, code: string) => `${caseId}:${code}`;

  /** Details every step records about who acted (a personal token's user is the person who acted). */
  const by = (caller: CaseCaller): Details =>
    caller.account.id === caller.actor.id ? {} : { accountId: caller.account.id };

  return {
    policyOf,

    async setPolicy(caller: CaseCaller, changes: Partial<CasePolicy>): Promise<CasePolicy> {
      const current = await policyOf(caller.organizationId);
      const next = { ...current, ...changes };
      next.identityMethods = [...new Set(next.identityMethods)];
      await db.transaction().execute(async (trx) => {
        const now = clock.now().toISOString();
        await repo.upsertPolicy(
          {
            organization_id: caller.organizationId,
            identity_methods: JSON.stringify(next.identityMethods),
            require_disclosure_approval: next.requireDisclosureApproval ? 1 : 0,
            allow_root_cause_after_disclosure: next.allowRootCauseAfterDisclosure ? 1 : 0,
            updated_at: now,
          },
          trx,
        );
        await auditWriter.append(
          {
            organizationId: caller.organizationId,
            actor: caller.actor,
            action: 'case.policy-changed',
            target: { type: 'organization', id: caller.organizationId },
            outcome: 'success',
            details: {
              identityMethods: next.identityMethods.join(','),
              requireDisclosureApproval: next.requireDisclosureApproval,
              allowRootCauseAfterDisclosure: next.allowRootCauseAfterDisclosure,
            },
            requestId: caller.requestId,
          },
          trx,
        );
      });
      return next;
    },

    /**
     * Active members of the caller's organization whose username or display name starts with
     * `query` (case-insensitive), so the helpdesk can pick the locked-out person. Only whether an
     * address is registered is told, never the address: the code goes there, not to the caller.
     */
    async findRequesters(caller: CaseCaller, query: string, limit: number) {
      const pattern = `${query.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      const rows = await db
        .selectFrom('users as u')
        .innerJoin('memberships as m', 'm.user_id', 'u.id')
        .select(['u.id', 'u.username', 'u.display_name', 'u.email'])
        .where('m.organization_id', '=', caller.organizationId)
        .where('u.disabled_at', 'is', null)
        .where(
          sql<boolean>`(lower(u.username) like ${pattern} escape '\\' or lower(u.display_name) like ${pattern} escape '\\')`,
        )
        .orderBy('u.username')
        .orderBy('u.id')
        .limit(limit)
        .execute();
      return rows.map((r) => ({
        userId: r.id,
        username: r.username,
        displayName: r.display_name,
        hasEmail: typeof r.email === 'string' && r.email !== '',
      }));
    },
    async createCase(caller: CaseCaller, input: { requesterUserId: string; reference?: string | undefined }) {
      const requester = await requesterOf(caller.organizationId, input.requesterUserId);
      if (!requester) throw new AppError('NOT_FOUND', 'No such user in this organization');
      const policy = await policyOf(caller.organizationId);
      const id = ids('recoveryCase');
      await db.transaction().execute(async (trx) => {
        const now = clock.now().toISOString();
        const row: RecoveryCaseRow = {
          id,
          organization_id: caller.organizationId,
          requester_user_id: requester.id,
          operator_type: caller.account.type,
          operator_id: caller.account.id,
          reference: input.reference ?? null,
          status: 'open',
          identity_method: null,
          identity_verified_at: null,
          device_id: null,
          owner_match: null,
          owner_override_at: null,
          key_id_entered: null,
          key_match: null,
          recovery_key_id: null,
          located_at: null,
          root_cause_class: null,
          root_cause_answers: null,
          disclosure_approved_by_type: null,
          disclosure_approved_by_id: null,
          identity_approver_type: null,
          identity_approver_id: null,
          disclosed_at: null,
          disclosure_audit_id: null,
          reason_code: null,
          rotation_request_id: null,
          read_back_count: 0,
          closed_at: null,
          created_at: now,
          updated_at: now,
        };
        row.status = statusAfter(row, policy);
        await repo.insertCase(row, trx);
        await appendStep(trx, row, caller, 'identity', 'created', {
          requesterUserId: requester.id,
          ...by(caller),
        });
      });
      return viewOf(caller, id);
    },

    get: (caller: CaseCaller, caseId: string) => viewOf(caller, caseId),

    async list(
      caller: CaseCaller,
      filter: {
        status: string;
        deviceId?: string | undefined;
        requesterUserId?: string | undefined;
        limit: number;
      },
    ) {
      const statuses: RecoveryCaseStatus[] | undefined =
        filter.status === 'all'
          ? undefined
          : filter.status === 'active'
            ? ['open', 'awaiting-approval', 'disclosed', 'awaiting-rotation']
            : [filter.status as RecoveryCaseStatus];
      const rows = await repo.listCases(
        caller.organizationId,
        { statuses, deviceId: filter.deviceId, requesterUserId: filter.requesterUserId, limit: filter.limit },
        { scope: authorizer.scopeOf(caller.principal, 'cases:work'), operator: caller.account },
      );
      const policy = await policyOf(caller.organizationId);
      return rows.map((r) => ({
        id: r.id,
        status: r.status,
        reference: r.reference,
        requesterUserId: r.requester_user_id,
        deviceId: r.device_id,
        nextStep: nextStepOf(r, policy),
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      }));
    },

    /** Step 1 by attestation or second person; `email-code` sends a code (see sendIdentityCode). */
    async startIdentity(
      caller: CaseCaller,
      caseId: string,
      input:
        | { method: 'second-person'; note?: string | undefined }
        | { method: 'attested'; attestation: 'in-person' | 'call-back'; note: string },
    ) {
      return (
        await step(caller, caseId, 'cases:work', async (row, policy) => {
          if (row.identity_verified_at !== null) throw conflict("The user's identity is already verified");
          if (!policy.identityMethods.includes(input.method)) {
            throw new AppError(
              'FORBIDDEN',
              `The organization does not allow identity verification by ${input.method}`,
            );
          }
          const now = clock.now().toISOString();
          if (input.method === 'attested') {
            return {
              changes: { identity_method: 'attested', identity_verified_at: now },
              kind: 'identity',
              action: 'identity-attested',
              details: {
                method: 'attested',
                attestation: input.attestation,
                note: input.note,
                ...by(caller),
              },
              result: undefined,
            };
          }
          return {
            changes: { identity_method: 'second-person' },
            kind: 'identity',
            action: 'identity-approval-requested',
            details: { method: 'second-person', note: input.note ?? null, ...by(caller) },
            result: undefined,
          };
        })
      ).view;
    },

    /**
     * Step 1 by e-mail: a 6-digit code to the requester's registered address, which the user reads
     * back to the helpdesk. Hashing and sending happen outside the transaction; a failed send voids
     * the code.
     */
    async sendIdentityCode(caller: CaseCaller, caseId: string) {
      const row0 = await visibleCase(caller, caseId, 'cases:work');
      const requester = await requesterOf(caller.organizationId, row0.requester_user_id);
      if (!requester?.email) {
        throw new AppError(
          'EMAIL_NOT_REGISTERED',
          'The user has no registered e-mail address; use another method',
        );
      }
      const code = sixDigits();
      const codeHash = await passwordHasher.hash(codeSecret(caseId, code));
      const codeId = ids('recoveryCaseCode');
      const expiresAt = new Date(clock.now().getTime() + CODE_TTL_MS).toISOString();
      const sentTo = maskEmail(requester.email);
      const { view } = await step(caller, caseId, 'cases:work', async (row, policy, trx) => {
        if (row.identity_verified_at !== null) throw conflict("The user's identity is already verified");
        if (!policy.identityMethods.includes('email-code')) {
          throw new AppError(
            'FORBIDDEN',
            'The organization does not allow identity verification by email-code',
          );
        }
        if ((await repo.countCodes(row.id, trx)) >= CODES_PER_CASE) {
          throw conflict('Too many codes were sent for this case; verify the identity another way');
        }
        const live = await repo.liveCode(row.id, trx);
        const now = clock.now().toISOString();
        // A new code replaces the previous one: only the latest can be read back.
        if (live) await repo.updateCode(live.id, { voided_at: now }, trx);
        await repo.insertCode(
          {
            id: codeId,
            case_id: row.id,
            code_hash: codeHash,
            expires_at: expiresAt,
            attempts: 0,
            consumed_at: null,
            voided_at: null,
            created_at: now,
          },
          trx,
        );
        return {
          changes: { identity_method: 'email-code' },
          kind: 'identity',
          action: 'identity-code-sent',
          details: { method: 'email-code', sentTo, expiresAt, ...by(caller) },
          result: undefined,
        };
      });
      try {
        await mail.send(caller.organizationId, {
          to: [requester.email],
          subject: 'Your identity code for the BitLocker recovery helpdesk',
          text: [
            `Hello ${requester.display_name},`,
            '',
            `The helpdesk is verifying your identity for recovery case ${caseId}.`,
            `Read this code to the helpdesk: ${code}`,
            '',
            'It expires in 10 minutes. If you did not contact the helpdesk, tell your IT security team.',
          ].join('\n'),
        });
      } catch (err) {
        await db.transaction().execute(async (trx) => {
          const row = await repo.lockCase(caller.organizationId, caseId, clock.now().toISOString(), trx);
          await repo.updateCode(codeId, { voided_at: clock.now().toISOString() }, trx);
          if (row) {
            await appendStep(
              trx,
              row,
              caller,
              'identity',
              'identity-code-send-failed',
              { method: 'email-code', ...by(caller) },
              'failure',
            );
          }
        });
        throw err;
      }
      return { case: view, sentTo, expiresAt };
    },

    /** The code as the user read it back; wrong, expired, used or exhausted codes are refused and audited. */
    async verifyIdentityCode(caller: CaseCaller, caseId: string, typed: string) {
      const row0 = await visibleCase(caller, caseId, 'cases:work');
      assertActive(row0);
      if (row0.identity_verified_at !== null) throw conflict("The user's identity is already verified");
      const code = typed.replace(/[^0-9]/g, '');
      // The live code if there is one (sending voids the previous one); else the newest, to say why not.
      const latest =
        (await repo.liveCode(caseId)) ??
        (await db
          .selectFrom('recovery_case_codes')
          .selectAll()
          .where('case_id', '=', caseId)
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .executeTakeFirst());
      const now = clock.now().toISOString();
      let failure: string | undefined;
      if (!latest || row0.identity_method !== 'email-code') failure = 'no-code';
      else if (latest.consumed_at !== null) failure = 'used';
      else if (latest.attempts >= CODE_MAX_ATTEMPTS) failure = 'too-many-attempts';
      else if (latest.voided_at !== null) failure = 'void';
      else if (latest.expires_at <= now) failure = 'expired';
      const matches =
        failure === undefined && latest !== undefined && code.length === 6
          ? await passwordHasher.verify(latest.code_hash, codeSecret(caseId, code))
          : false;
      if (failure === undefined && !matches) failure = 'wrong';

      let attemptsLeft = 0;
      const { view } = await step(caller, caseId, 'cases:work', async (row, _policy, trx) => {
        if (row.identity_verified_at !== null) throw conflict("The user's identity is already verified");
        if (failure === undefined && latest) {
          // Only one request can use the code: the update matches only while it is unused.
          const used = await trx
            .updateTable('recovery_case_codes')
            .set({ consumed_at: now, attempts: latest.attempts + 1 })
            .where('id', '=', latest.id)
            .where('consumed_at', 'is', null)
            .where('voided_at', 'is', null)
            .executeTakeFirst();
          if (Number(used.numUpdatedRows) === 1) {
            return {
              changes: { identity_verified_at: now },
              kind: 'identity',
              action: 'identity-code-verified',
              details: { method: 'email-code', ...by(caller) },
              result: undefined,
            };
          }
          failure = 'used';
        }
        if (failure === 'wrong' && latest) {
          const attempts = latest.attempts + 1;
          attemptsLeft = Math.max(0, CODE_MAX_ATTEMPTS - attempts);
          await repo.updateCode(
            latest.id,
            { attempts, ...(attemptsLeft === 0 ? { voided_at: now } : {}) },
            trx,
          );
        }
        return {
          changes: {},
          kind: 'identity',
          action: 'identity-code-refused',
          details: { method: 'email-code', reason: failure ?? 'wrong', attemptsLeft, ...by(caller) },
          result: undefined,
        };
      });
      if (failure !== undefined) {
        throw new AppError('VERIFICATION_CODE_INVALID', 'The code is not valid for this case', {
          details: { reason: failure, attemptsLeft },
        });
      }
      return view;
    },

    /** Step 2: the device the user names, which must be one the caller may work cases on. */
    async recordDevice(caller: CaseCaller, caseId: string, deviceName: string) {
      const scope = authorizer.scopeOf(caller.principal, 'cases:work');
      const [device] = await devicesRepo.searchByName(
        caller.organizationId,
        { name: deviceName.trim(), match: 'exact', limit: 1, includeDeleted: false },
        scope,
      );
      if (!device) throw new AppError('DEVICE_NOT_FOUND', 'No such device');
      return (
        await step(caller, caseId, 'cases:work', async (row, _policy, trx) => {
          if (row.identity_verified_at === null) throw conflict("Verify the user's identity first");
          if (row.located_at !== null)
            throw conflict('The recovery password is already located; open a new case');
          const ownerMatch = await ownerMatchOf(row, device.id, trx);
          return {
            changes: {
              device_id: device.id,
              owner_match: ownerMatch,
              owner_override_at: null,
              key_id_entered: null,
              key_match: null,
              recovery_key_id: null,
            },
            kind: 'device',
            action: 'device-recorded',
            details: { deviceId: device.id, deviceName: device.name, ownerMatch, ...by(caller) },
            result: undefined,
          };
        })
      ).view;
    },

    /**
     * Step 3: the key id from the preboot screen, matched against the recorded device's keys. A key
     * id that belongs to another device is reported as such; that device is named only when the
     * caller may see it.
     */
    async recordKeyId(caller: CaseCaller, caseId: string, input: string) {
      const text = input.trim().replace(/^\{|\}$/g, '');
      const full = text.replace(/-/g, '').length === 32;
      const entered = full ? parseKeyId(text) : parseKeyIdPrefix(text);
      const filter = full ? { keyId: entered } : { keyIdPrefix: entered };
      const row0 = await visibleCase(caller, caseId, 'cases:work');
      const everywhere = await recoveryKeysRepo.listMetadata(caller.organizationId, filter, 20, {
        kind: 'all',
      });
      const current = (k: { status: string }) => (k.status === 'superseded' ? 1 : 0);
      const onDevice = everywhere
        .filter((k) => k.device_id === row0.device_id)
        .sort((a, b) => current(a) - current(b) || b.created_at.localeCompare(a.created_at));
      let match: 'this-device' | 'other-device' | 'not-found' = 'not-found';
      let otherDevice: { id: string; name: string } | null = null;
      if (onDevice.length > 0) match = 'this-device';
      else if (everywhere.length > 0) {
        match = 'other-device';
        const scope = authorizer.scopeOf(caller.principal, 'cases:work');
        const visible = await recoveryKeysRepo.listMetadata(caller.organizationId, filter, 20, scope);
        const other = visible.find((k) => k.device_id !== row0.device_id);
        otherDevice = other ? { id: other.device_id, name: other.device_name } : null;
      }
      const { view } = await step(caller, caseId, 'cases:work', async (row) => {
        if (row.device_id === null) throw conflict('Record the device first');
        if (row.device_id !== row0.device_id) throw conflict('The device changed meanwhile; try again');
        if (row.located_at !== null)
          throw conflict('The recovery password is already located; open a new case');
        return {
          changes: {
            key_id_entered: entered,
            key_match: match,
            recovery_key_id: match === 'this-device' ? onDevice[0]!.id : null,
          },
          kind: 'key-id',
          action: 'key-id-recorded',
          details: { keyId: entered, match, otherDeviceId: otherDevice?.id ?? null, ...by(caller) },
          result: undefined,
        };
      });
      const message =
        match === 'this-device'
          ? 'The key id matches a key of this device'
          : match === 'other-device'
            ? otherDevice
              ? `The key id belongs to another device (${otherDevice.name}): the drive may have moved; record that device instead`
              : 'The key id belongs to another device you cannot work on: the drive may have moved; escalate'
            : 'No key with this key id is stored; check the digits on the recovery screen';
      return { case: view, match, otherDevice, message };
    },

    /** Step 4: the matched key's metadata, within the caller's scope; never the password. */
    async locate(caller: CaseCaller, caseId: string) {
      let located: Awaited<ReturnType<RecoveryKeysRepo['listMetadata']>>[number] | undefined;
      const { view } = await step(caller, caseId, 'cases:work', async (row, _policy, trx) => {
        if (row.key_match !== 'this-device' || row.recovery_key_id === null) {
          throw conflict('Record a key id that matches the device first');
        }
        if (row.located_at !== null) throw conflict('The recovery password is already located');
        const scope = authorizer.scopeOf(caller.principal, 'cases:work');
        [located] = await recoveryKeysRepo.listMetadata(
          row.organization_id,
          { id: row.recovery_key_id },
          1,
          scope,
          trx,
        );
        if (!located) throw new AppError('KEY_NOT_FOUND', 'No such recovery key');
        return {
          changes: { located_at: clock.now().toISOString() },
          kind: 'locate',
          action: 'key-located',
          details: {
            recoveryKeyRecordId: located.id,
            keyId: located.key_id,
            keyStatus: located.status,
            ...by(caller),
          },
          result: undefined,
        };
      });
      const k = located!;
      return {
        case: view,
        recoveryKey: {
          id: k.id,
          recoveryKeyId: k.key_id,
          status: k.status,
          createdAt: k.created_at,
          lastDisclosedAt: k.last_disclosed_at,
          volume: {
            id: k.volume_id,
            volumeGuid: k.volume_guid,
            volumeType: k.volume_type,
            driveLetter: k.drive_letter,
          },
        },
      };
    },

    /** Step 5: the seven answers, the class they point to and its resolution steps. */
    async recordRootCause(caller: CaseCaller, caseId: string, answers: RootCauseAnswers, note?: string) {
      const cls = classifyRootCause(answers);
      const { view } = await step(caller, caseId, 'cases:work', async (row) => {
        if (row.located_at === null) throw conflict('Locate the recovery password first');
        return {
          changes: { root_cause_class: cls, root_cause_answers: JSON.stringify(answers) },
          kind: 'root-cause',
          action: 'root-cause-recorded',
          details: {
            rootCauseClass: cls,
            protectionMode: answers.protectionMode,
            changeCause: answers.changeCause,
            afterDisclosure: row.disclosed_at !== null,
            note: note ?? null,
            ...by(caller),
          },
          result: undefined,
        };
      });
      const resolution = ROOT_CAUSE_CATALOG[cls];
      return { case: view, resolution: { ...resolution, steps: [...resolution.steps] } };
    },

    /** Identity by a second person, or the disclosure approval the policy asks for. */
    async approve(caller: CaseCaller, caseId: string, subject: 'identity' | 'disclosure', note?: string) {
      return (
        await step(caller, caseId, 'cases:approve', async (row, _policy, trx) => {
          await assertSecondPerson(row, caller, trx);
          const now = clock.now().toISOString();
          if (subject === 'identity') {
            if (row.identity_method !== 'second-person' || row.identity_verified_at !== null) {
              throw conflict('No identity approval is pending on this case');
            }
            return {
              changes: {
                identity_verified_at: now,
                identity_approver_type: caller.account.type,
                identity_approver_id: caller.account.id,
              },
              kind: 'approval',
              action: 'identity-approved',
              details: { subject, note: note ?? null, ...by(caller) },
              result: undefined,
            };
          }
          if (row.located_at === null)
            throw conflict('Locate the recovery password before approving its disclosure');
          if (row.disclosed_at !== null) throw conflict('The password is already disclosed');
          if (approved(row)) throw conflict('The disclosure is already approved');
          return {
            changes: {
              disclosure_approved_by_type: caller.account.type,
              disclosure_approved_by_id: caller.account.id,
            },
            kind: 'approval',
            action: 'disclosure-approved',
            details: { subject, note: note ?? null, ...by(caller) },
            result: undefined,
          };
        })
      ).view;
    },

    async overrideOwner(caller: CaseCaller, caseId: string, note: string) {
      return (
        await step(caller, caseId, 'cases:override-owner', async (row) => {
          if (row.owner_match !== 'mismatch') throw conflict('The device does not belong to someone else');
          if (row.disclosed_at !== null) throw conflict('The password is already disclosed');
          return {
            changes: { owner_override_at: clock.now().toISOString() },
            kind: 'owner-override',
            action: 'owner-overridden',
            details: { note, deviceId: row.device_id, ...by(caller) },
            result: undefined,
          };
        })
      ).view;
    },

    /**
     * Step 6 (and 7): through the one disclosure service, with the case's step, its status and the
     * rotation request written in the disclosure's own transaction, after its audit row.
     */
    async disclose(
      caller: CaseCaller,
      caseId: string,
      reasonCode: DisclosureReasonCode,
      reasonText?: string,
    ) {
      const row0 = await visibleCase(caller, caseId, 'cases:work');
      const policy = await policyOf(caller.organizationId);
      assertActive(row0);
      if (row0.disclosed_at !== null) throw conflict('The password was already provided in this case');
      if (row0.identity_verified_at === null) {
        throw new AppError(
          'IDENTITY_NOT_VERIFIED',
          "No verified identity, no disclosure: verify the user's identity first",
        );
      }
      if (row0.located_at === null || row0.recovery_key_id === null)
        throw conflict('Locate the recovery password first');
      if (row0.owner_match === 'mismatch' && row0.owner_override_at === null) {
        throw new AppError(
          'OWNER_MISMATCH',
          'The device does not belong to the verified user; an override is needed',
        );
      }
      if (rootCauseOwed(row0) && !policy.allowRootCauseAfterDisclosure) {
        throw conflict('Answer the root-cause questions first');
      }
      if (policy.requireDisclosureApproval && !approved(row0)) {
        throw new AppError(
          'APPROVAL_REQUIRED',
          'A second person (cases:approve) must approve this disclosure first',
        );
      }
      if (
        row0.disclosure_approved_by_id === caller.account.id &&
        row0.disclosure_approved_by_type === caller.account.type
      ) {
        throw new AppError('FORBIDDEN', 'The approver of a disclosure cannot also perform it');
      }
      const recoveryKeyRecordId = row0.recovery_key_id;
      const disclosed = await recoveryKeys.discloseRecoveryPassword({
        organizationId: caller.organizationId,
        recoveryKeyRecordId,
        reason: disclosureReasonText(reasonCode, reasonText),
        actor: caller.actor,
        account: caller.account,
        address: caller.address,
        requestId: caller.requestId,
        context: { channel: 'helpdesk', caseId, reasonCode },
        inTransaction: async (trx, key) => {
          const row = await repo.lockCase(caller.organizationId, caseId, key.occurredAt, trx);
          // Re-checked under the lock: a second click, a cancel or a device change in between loses.
          if (
            !row ||
            DONE.includes(row.status) ||
            row.disclosed_at !== null ||
            row.recovery_key_id !== key.id
          ) {
            throw conflict('The case changed meanwhile; nothing was disclosed');
          }
          const changes = {
            disclosed_at: key.occurredAt,
            disclosure_audit_id: key.auditEntryId,
            reason_code: reasonCode,
            rotation_request_id: key.rotationRequestId,
          };
          const next = { ...row, ...changes };
          const status = statusAfter(next, policy);
          await repo.updateCase(row.id, { ...changes, status, updated_at: key.occurredAt }, trx);
          await appendStep(trx, next, caller, 'disclose', 'disclosed', {
            recoveryKeyRecordId: key.id,
            keyId: key.keyId,
            reasonCode,
            disclosureAuditId: key.auditEntryId,
            ...by(caller),
          });
          await appendStep(
            trx,
            next,
            caller,
            'rotate',
            key.rotationRequestId === null ? 'rotation-not-required' : 'rotation-requested',
            { recoveryKeyRecordId: key.id, rotationRequestId: key.rotationRequestId, ...by(caller) },
          );
        },
      });
      const readout = readoutOf(disclosed.recoveryPassword);
      return {
        case: await viewOf(caller, caseId),
        recoveryKeyRecordId: disclosed.id,
        recoveryKeyId: disclosed.recoveryKeyId,
        recoveryPassword: disclosed.recoveryPassword,
        groups: readout.groups,
        readAloud: readout.readAloud,
        auditEntryId: disclosed.auditEntryId,
      };
    },

    /**
     * What the user typed, checked group by group against the disclosed password: each group is
     * `ok`, fails its checksum, is the wrong valid group, or is missing. Only after disclosure in
     * this case (the caller already has the password, so this is no guessing oracle), and bounded.
     */
    async readBack(caller: CaseCaller, caseId: string, typed: string) {
      let verdict: ReturnType<typeof checkReadBack> | undefined;
      await step(caller, caseId, 'cases:work', async (row, _policy, trx) => {
        if (row.disclosed_at === null || row.recovery_key_id === null) {
          throw conflict('The password has not been provided in this case');
        }
        if (row.read_back_count >= READ_BACKS_PER_CASE)
          throw conflict('Too many read-back checks on this case');
        const key = await recoveryKeysRepo.findById(row.organization_id, row.recovery_key_id, trx);
        if (!key) throw new AppError('KEY_NOT_FOUND', 'No such recovery key');
        const password = envelope.open(
          { organizationId: key.organization_id, recordId: key.id, purpose: 'recovery-password' },
          {
            ciphertext: key.password_ciphertext,
            wrappedKey: key.password_wrapped_key,
            kekId: key.password_kek_id,
          },
        );
        verdict = checkReadBack(typed, password);
        const wrong = verdict.groups.filter((g) => g.verdict !== 'ok').map((g) => g.group);
        return {
          changes: { read_back_count: row.read_back_count + 1 },
          kind: 'read-back',
          action: 'read-back-checked',
          details: { ok: verdict.ok, wrongGroups: wrong.join(','), ...by(caller) },
          result: undefined,
        };
      });
      return verdict!;
    },

    async cancel(caller: CaseCaller, caseId: string, note: string) {
      return (
        await step(caller, caseId, 'cases:work', async (row) => {
          if (row.disclosed_at !== null) {
            throw conflict('The password was provided: the case stays open until the key is rotated');
          }
          return {
            changes: { status: 'cancelled', closed_at: clock.now().toISOString() },
            kind: 'cancel',
            action: 'cancelled',
            details: { note, ...by(caller) },
            result: undefined,
          };
        })
      ).view;
    },
  };
}
