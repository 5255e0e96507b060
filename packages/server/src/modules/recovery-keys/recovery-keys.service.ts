/** Recovery-key lookups (metadata only) and the audited disclosure of a recovery password. */
import type { Transaction } from 'kysely';
import type { Db } from '../../db/database.js';
import type { Database } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import type { Envelope } from '../../lib/envelope.js';
import type { EventSink } from '../../lib/events.js';
import { AppError } from '../../lib/errors.js';
import type { DisclosureGuard } from '../access/disclosure-guard.js';
import type { AccessScope } from '../access/permissions.js';
import type { AuditActorType, AuditWriter } from '../audit/audit.service.js';
import type { DisclosureRotation } from '../rotation/rotation.service.js';
import type { DisclosurePolicyRepo } from './disclosure-policy.repo.js';
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
  disclosurePolicyRepo: DisclosurePolicyRepo;
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
  } = deps;
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
     * The disclosure mark and the audit row are written in one transaction; the password is
     * decrypted only after both and handed out only once the transaction has committed. If the audit
     * write fails, the transaction rolls back and nothing is disclosed.
     *
     * Lock order: the key row first, the audit chain head last, as every other audited transaction
     * (escrow, import) does; the opposite order could deadlock against them on PostgreSQL.
     */
    async discloseRecoveryPassword(request: DisclosureRequest) {
      const { organizationId, recoveryKeyRecordId, reason, actor } = request;
      // The guard's alert settings and the rotation policy, in one read (disclosure-policy.repo.ts).
      const policy = await disclosurePolicyRepo.find(organizationId);
      // Every disclosure path counts against the same limits, before anything is opened.
      await disclosureGuard.admit({
        organizationId,
        account: request.account,
        address: request.address,
        alertPolicy: policy.alerts,
        ...(request.requestId === undefined ? {} : { requestId: request.requestId }),
      });
      const disclosed = await db.transaction().execute(async (trx) => {
        // Reads and locks the key row first (the lock order: key row, then the audit chain head).
        const occurredAt = clock.now().toISOString();
        const key = await recoveryKeysRepo.markDisclosed(
          organizationId,
          recoveryKeyRecordId,
          occurredAt,
          trx,
          { rotationPending: policy.rotation.singleUsePasswords },
        );
        if (!key) throw new AppError('KEY_NOT_FOUND', 'No such recovery key');
        // After the key row is locked, before the audit chain head (the lock order above).
        const rotation = await disclosureRotation.onDisclosure(
          { key, actor, reason, policy: policy.rotation },
          trx,
        );
        const audit = await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'recovery-key.disclosed',
            target: { type: 'recovery-key', id: key.id },
            outcome: 'success',
            reason,
            details: {
              ...request.context,
              recoveryKeyId: key.key_id,
              deviceId: key.device_id,
              rotationRequestId: rotation?.rotationId ?? null,
            },
            ...(request.requestId === undefined ? {} : { requestId: request.requestId }),
          },
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
        const recoveryPassword = envelope.open(
          { organizationId, recordId: key.id, purpose: 'recovery-password' },
          {
            ciphertext: key.password_ciphertext,
            wrappedKey: key.password_wrapped_key,
            kekId: key.password_kek_id,
          },
        );
        return {
          result: {
            id: key.id,
            recoveryKeyId: key.key_id,
            recoveryPassword,
            auditEntryId: audit.id,
            rotationRequestId: rotation?.rotationId ?? null,
          },
          deviceId: key.device_id,
          occurredAt,
          rotation,
        };
      });
      // After commit: subscribers hear of it only once it is on record, and never get the password.
      // One call for both events: they share the organization and the device.
      const rotationRequested = disclosed.rotation?.created
        ? [{ ...disclosed.rotation.event, auditEntryId: disclosed.result.auditEntryId }]
        : [];
      await events.emit(
        {
          type: 'recovery-key.disclosed',
          organizationId,
          recoveryKeyRecordId: disclosed.result.id,
          keyId: disclosed.result.recoveryKeyId,
          deviceId: disclosed.deviceId,
          actor,
          reason,
          channel: request.context?.channel ?? 'api',
          auditEntryId: disclosed.result.auditEntryId,
          occurredAt: disclosed.occurredAt,
        },
        ...rotationRequested,
      );
      return disclosed.result;
    },
  };
}
