/** Recovery-key lookups (metadata only) and the audited disclosure of a recovery password. */
import type { Transaction } from 'kysely';
import type { Db } from '../../db/database.js';
import type { Database, RecoveryKeysTable } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import type { Envelope } from '../../lib/envelope.js';
import type { EventSink } from '../../lib/events.js';
import { AppError } from '../../lib/errors.js';
import type { DisclosureGuard } from '../access/disclosure-guard.js';
import type { AccessScope } from '../access/permissions.js';
import type { AuditActorType, AuditEntry, AuditWriter } from '../audit/audit.service.js';
import type { DisclosureRotation, DisclosureRotationOutcome } from '../rotation/rotation.service.js';
import type {
  DisclosurePolicy,
  DisclosurePolicyRepo,
  KeyBeforeDisclosure,
} from './disclosure-policy.repo.js';
import type { OneStatementDisclosure } from './one-statement-disclosure.repo.js';
import type { RecoveryKeyFilter, RecoveryKeyMetadataRow, RecoveryKeysRepo } from './recovery-keys.repo.js';

export function toRecoveryKeyMetadata(row: RecoveryKeyMetadataRow) {
  return {
    id: row.id,
    recoveryKeyId: row.key_id,
    status: row.status,
    source: row.source,
    createdAt: row.created_at,
    supersededAt: row.superseded_at,
    lastDisclosedAt: row.last_disclosed_at,
    device: { id: row.device_id, name: row.device_name, deleted: row.device_deleted_at !== null },
    volume: {
      id: row.volume_id,
      volumeGuid: row.volume_guid,
      volumeType: row.volume_type,
      driveLetter: row.drive_letter,
    },
  };
}

export type RecoveryKeyMetadata = ReturnType<typeof toRecoveryKeyMetadata>;

export interface DisclosureRequest {
  organizationId: string;
  recoveryKeyRecordId: string;
  reason: string;
  actor: { type: AuditActorType; id: string | null };
  requestId?: string;
  /** How the request came in (channel, client name), recorded beside the key in the audit row. */
  context?: Record<string, string>;
  /** The disclosing account and address, for the shared disclosure limits (see DisclosureGuard). */
  account?: { type: 'user' | 'api-token'; id: string } | undefined;
  address?: string | undefined;
  /**
   * The caller's scope for `keys:disclose`, when the caller has not authorized the key already. The
   * disclosure's first read checks it (a key outside it is KEY_NOT_FOUND, as a missing one, and is
   * not counted) and the write checks it again, so no separate authorizing read is needed.
   */
  scope?: AccessScope;
  /**
   * Runs inside the disclosure transaction, after the audit row: what the caller records about this
   * disclosure (a case step, a rotation request) commits or rolls back with it.
   */
  inTransaction?: (trx: Transaction<Database>, disclosed: DisclosedKey) => Promise<void>;
}

/** The disclosed key as the in-transaction hook sees it (never the password). */
export interface DisclosedKey {
  id: string;
  keyId: string;
  deviceId: string;
  volumeId: string;
  auditEntryId: string;
  occurredAt: string;
  /** The rotation request this disclosure opened (or found open); null when none is due. */
  rotationRequestId: string | null;
}

/** A disclosure as written, before its events. */
interface Disclosed {
  result: {
    id: string;
    recoveryKeyId: string;
    recoveryPassword: string;
    auditEntryId: string;
    rotationRequestId: string | null;
  };
  deviceId: string;
  occurredAt: string;
  rotation: DisclosureRotationOutcome | undefined;
}

export type RecoveryKeysService = ReturnType<typeof createRecoveryKeysService>;

export function createRecoveryKeysService(deps: {
  db: Db;
  clock: Clock;
  envelope: Envelope;
  auditWriter: AuditWriter;
  recoveryKeysRepo: RecoveryKeysRepo;
  disclosureGuard: Pick<DisclosureGuard, 'admit'>;
  events: EventSink;
  /** Single-use passwords: opens the key's rotation request inside the disclosure transaction. */
  disclosureRotation: DisclosureRotation;
  disclosurePolicyRepo: Pick<DisclosurePolicyRepo, 'findForKey'>;
  /** PostgreSQL only (see one-statement-disclosure.repo.ts); without it every disclosure is a transaction. */
  oneStatementDisclosure?: OneStatementDisclosure | undefined;
}) {
  const {
    db,
    clock,
    envelope,
    auditWriter,
    recoveryKeysRepo,
    disclosureGuard,
    events,
    disclosureRotation,
    disclosurePolicyRepo,
    oneStatementDisclosure,
  } = deps;

  /** The audit entry of a disclosure, the same on both write paths. */
  function disclosureAuditEntry(
    request: DisclosureRequest,
    key: RecoveryKeysTable,
    rotationRequestId: string | null,
  ): AuditEntry {
    return {
      organizationId: request.organizationId,
      actor: request.actor,
      action: 'recovery-key.disclosed',
      target: { type: 'recovery-key', id: key.id },
      outcome: 'success',
      reason: request.reason,
      details: {
        ...request.context,
        recoveryKeyId: key.key_id,
        deviceId: key.device_id,
        rotationRequestId,
      },
      ...(request.requestId === undefined ? {} : { requestId: request.requestId }),
    };
  }

  function openPassword(key: RecoveryKeysTable): string {
    return envelope.open(
      { organizationId: key.organization_id, recordId: key.id, purpose: 'recovery-password' },
      {
        ciphertext: key.password_ciphertext,
        wrappedKey: key.password_wrapped_key,
        kekId: key.password_kek_id,
      },
    );
  }

  function disclosedOf(
    key: RecoveryKeysTable,
    recoveryPassword: string,
    auditEntryId: string,
    occurredAt: string,
    rotation: Disclosed['rotation'],
  ): Disclosed {
    return {
      result: {
        id: key.id,
        recoveryKeyId: key.key_id,
        recoveryPassword,
        auditEntryId,
        rotationRequestId: rotation?.rotationId ?? null,
      },
      deviceId: key.device_id,
      occurredAt,
      rotation,
    };
  }

  /**
   * The one-statement write (PostgreSQL), from the key as read. Undefined when it does not apply
   * (SQLite, an in-transaction hook, a rotation request already open to reuse) or the key changed
   * since it was read: the transaction then does the work.
   */
  async function discloseInOneStatement(
    request: DisclosureRequest,
    before: KeyBeforeDisclosure,
    policy: DisclosurePolicy,
  ): Promise<Disclosed | undefined> {
    if (!oneStatementDisclosure || request.inTransaction) return undefined;
    const occurredAt = clock.now().toISOString();
    const status =
      policy.rotation.singleUsePasswords && before.status === 'active' ? 'rotation_pending' : before.status;
    const { open_rotation_id: openRotationId, ...read } = before;
    const key: RecoveryKeysTable = { ...read, status, last_disclosed_at: occurredAt };
    const rotation = disclosureRotation.plan({
      key,
      actor: request.actor,
      reason: request.reason,
      policy: policy.rotation,
    });
    if (rotation && openRotationId !== null) return undefined;
    // Decrypted before the write, so a key that cannot be opened leaves no disclosure on record.
    const recoveryPassword = openPassword(key);
    const audit = auditWriter.prepare(disclosureAuditEntry(request, key, rotation?.row.id ?? null));
    const written = await oneStatementDisclosure.write({
      key: before,
      at: occurredAt,
      newStatus: status,
      scope: request.scope,
      rotation: rotation?.row,
      audit,
    });
    if (!written) return undefined;
    return disclosedOf(
      key,
      recoveryPassword,
      audit.id,
      occurredAt,
      rotation && { rotationId: rotation.row.id, created: true, event: rotation.event },
    );
  }

  /**
   * Lock order: the key row first, the audit chain head last, as every other audited transaction
   * (escrow, import) does; the opposite order could deadlock against them on PostgreSQL.
   */
  async function discloseInTransaction(
    request: DisclosureRequest,
    policy: DisclosurePolicy,
  ): Promise<Disclosed> {
    const { organizationId, recoveryKeyRecordId, scope } = request;
    return db.transaction().execute(async (trx) => {
      // Reads and locks the key row first (the lock order: key row, then the audit chain head).
      const occurredAt = clock.now().toISOString();
      const key = await recoveryKeysRepo.markDisclosed(organizationId, recoveryKeyRecordId, occurredAt, trx, {
        rotationPending: policy.rotation.singleUsePasswords,
        ...(scope ? { scope } : {}),
      });
      if (!key) throw new AppError('KEY_NOT_FOUND', 'No such recovery key');
      // After the key row is locked, before the audit chain head (the lock order above).
      const rotation = await disclosureRotation.onDisclosure(
        { key, actor: request.actor, reason: request.reason, policy: policy.rotation },
        trx,
      );
      const audit = await auditWriter.append(
        disclosureAuditEntry(request, key, rotation?.rotationId ?? null),
        trx,
      );
      await request.inTransaction?.(trx, {
        id: key.id,
        keyId: key.key_id,
        deviceId: key.device_id,
        volumeId: key.volume_id,
        auditEntryId: audit.id,
        occurredAt,
        rotationRequestId: rotation?.rotationId ?? null,
      });
      return disclosedOf(key, openPassword(key), audit.id, occurredAt, rotation);
    });
  }

  /**
   * After commit: subscribers hear of it only once it is on record, and never get the password.
   * One call for both events: they share the organization and the device.
   */
  async function emitDisclosureEvents(request: DisclosureRequest, disclosed: Disclosed): Promise<void> {
    const rotationRequested = disclosed.rotation?.created
      ? [{ ...disclosed.rotation.event, auditEntryId: disclosed.result.auditEntryId }]
      : [];
    await events.emit(
      {
        type: 'recovery-key.disclosed',
        organizationId: request.organizationId,
        recoveryKeyRecordId: disclosed.result.id,
        keyId: disclosed.result.recoveryKeyId,
        deviceId: disclosed.deviceId,
        actor: request.actor,
        reason: request.reason,
        channel: request.context?.channel ?? 'api',
        auditEntryId: disclosed.result.auditEntryId,
        occurredAt: disclosed.occurredAt,
      },
      ...rotationRequested,
    );
  }

  return {
    /** `scope` is where the caller may read metadata; keys of other devices are not returned. */
    async lookupRecoveryKeys(
      organizationId: string,
      filter: RecoveryKeyFilter,
      limit: number,
      scope: AccessScope,
    ): Promise<RecoveryKeyMetadata[]> {
      return (await recoveryKeysRepo.listMetadata(organizationId, filter, limit, scope)).map(
        toRecoveryKeyMetadata,
      );
    },

    async getRecoveryKey(
      organizationId: string,
      id: string,
      scope: AccessScope,
    ): Promise<RecoveryKeyMetadata> {
      const [row] = await recoveryKeysRepo.listMetadata(organizationId, { id }, 1, scope);
      if (!row) throw new AppError('KEY_NOT_FOUND', 'No such recovery key');
      return toRecoveryKeyMetadata(row);
    },

    /**
     * The disclosure mark, the rotation request (single-use passwords) and the audit row are
     * written together or not at all; the password is handed out only once they are committed. If
     * the audit write fails, nothing is disclosed.
     *
     * On PostgreSQL a disclosure with no in-transaction hook is written by one statement
     * (one-statement-disclosure.repo.ts); when the key changed since it was read, or on SQLite, the
     * transaction below writes it. Both record exactly the same rows.
     */
    async discloseRecoveryPassword(request: DisclosureRequest) {
      const { organizationId, recoveryKeyRecordId, scope } = request;
      // The policy and the key (in the caller's scope), in one read (disclosure-policy.repo.ts).
      const { policy, key } = await disclosurePolicyRepo.findForKey(
        organizationId,
        recoveryKeyRecordId,
        scope,
      );
      // A key the caller may not see is not an attempt: it answers 404 before anything is counted.
      if (!key) throw new AppError('KEY_NOT_FOUND', 'No such recovery key');
      // Every disclosure path counts against the same limits, before anything is opened.
      const admission = await disclosureGuard.admit({
        organizationId,
        account: request.account,
        address: request.address,
        alertPolicy: policy.alerts,
        ...(request.requestId === undefined ? {} : { requestId: request.requestId }),
      });
      let disclosed: Disclosed;
      try {
        disclosed =
          (await discloseInOneStatement(request, key, policy)) ??
          (await discloseInTransaction(request, policy));
      } catch (err) {
        // Nothing was disclosed: the attempt does not count toward the alert threshold. (If the
        // database is gone, taking the count back fails too; the original error is what matters.)
        await admission.withdraw().catch(() => undefined);
        throw err;
      }
      await emitDisclosureEvents(request, disclosed);
      return disclosed.result;
    },
  };
}
