/** Storing one recovery key (and its key package) by key id: the rules every import path shares. */
import type { Executor } from '../../db/database.js';
import type { RecoveryKeySource, RecoveryKeyStatus } from '../../db/schema.js';
import type { Envelope } from '../../lib/envelope.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { RecoveryKeyRow, RecoveryKeysRepo } from './recovery-keys.repo.js';

export interface StoreRecoveryKeyInput {
  organizationId: string;
  deviceId: string;
  volumeId: string;
  /** Canonical upper-case key id. */
  keyId: string;
  /** Canonical, already validated recovery password. */
  recoveryPassword: string;
  keyPackage?: Uint8Array | undefined;
  source: RecoveryKeySource;
  /** When the key was made (backup time); decides which key of a volume is current. */
  createdAt: string;
  now: string;
}

export type StoreRecoveryKeyResult =
  | { outcome: 'created'; id: string; status: RecoveryKeyStatus }
  /** The same password was already stored; `updated` when a missing key package was added. */
  | { outcome: 'unchanged' | 'updated'; id: string; status: RecoveryKeyStatus }
  /** The key id is stored with a different password: nothing is overwritten. */
  | { outcome: 'conflict'; id: string };

export interface RecoveryKeyWriter {
  store(input: StoreRecoveryKeyInput, trx: Executor): Promise<StoreRecoveryKeyResult>;
}

/**
 * Stores keys idempotently by key id: the same password again changes nothing, a different one is
 * a conflict and is never overwritten. A new key becomes the volume's active key and supersedes the
 * older current ones, unless a newer key is already current (an old backup imported late is history).
 */
export function createRecoveryKeyWriter(deps: {
  ids: IdGenerator;
  envelope: Envelope;
  recoveryKeysRepo: RecoveryKeysRepo;
}): RecoveryKeyWriter {
  const { ids, envelope, recoveryKeysRepo } = deps;

  const samePassword = (row: RecoveryKeyRow, password: string) =>
    envelope.open(
      { organizationId: row.organization_id, recordId: row.id, purpose: 'recovery-password' },
      {
        ciphertext: row.password_ciphertext,
        wrappedKey: row.password_wrapped_key,
        kekId: row.password_kek_id,
      },
    ) === password;

  const storePackage = async (
    organizationId: string,
    recoveryKeyId: string,
    keyPackage: Uint8Array,
    now: string,
    trx: Executor,
  ) => {
    const sealed = envelope.seal(
      { organizationId, recordId: recoveryKeyId, purpose: 'key-package' },
      Buffer.from(keyPackage).toString('base64'),
    );
    await recoveryKeysRepo.insertKeyPackage(
      {
        recovery_key_id: recoveryKeyId,
        organization_id: organizationId,
        ciphertext: sealed.ciphertext,
        wrapped_key: sealed.wrappedKey,
        kek_id: sealed.kekId,
        created_at: now,
      },
      trx,
    );
  };

  return {
    async store(input, trx) {
      const { organizationId, keyId, recoveryPassword, keyPackage, now } = input;
      const existing = await recoveryKeysRepo.findByKeyId(organizationId, keyId, trx);
      if (existing) {
        if (!samePassword(existing, recoveryPassword)) return { outcome: 'conflict', id: existing.id };
        if (
          keyPackage &&
          keyPackage.length > 0 &&
          !(await recoveryKeysRepo.hasKeyPackage(existing.id, trx))
        ) {
          await storePackage(organizationId, existing.id, keyPackage, now, trx);
          return { outcome: 'updated', id: existing.id, status: existing.status };
        }
        return { outcome: 'unchanged', id: existing.id, status: existing.status };
      }

      const current = await recoveryKeysRepo.currentOfVolume(input.volumeId, trx);
      const newer = current.filter((k) => k.created_at > input.createdAt).map((k) => k.created_at);
      const status: RecoveryKeyStatus = newer.length > 0 ? 'superseded' : 'active';
      const id = ids('recoveryKey');
      const sealed = envelope.seal(
        { organizationId, recordId: id, purpose: 'recovery-password' },
        recoveryPassword,
      );
      await recoveryKeysRepo.insert(
        {
          id,
          organization_id: organizationId,
          device_id: input.deviceId,
          volume_id: input.volumeId,
          key_id: keyId,
          key_id_prefix: keyId.slice(0, 8),
          source: input.source,
          status,
          password_ciphertext: sealed.ciphertext,
          password_wrapped_key: sealed.wrappedKey,
          password_kek_id: sealed.kekId,
          created_at: input.createdAt,
          superseded_at: status === 'superseded' ? newer.sort()[0]! : null,
          last_disclosed_at: null,
        },
        trx,
      );
      if (status === 'active') {
        // Keys made at the same instant (one escrow request) stay current together.
        const older = current.filter((k) => k.created_at < input.createdAt).map((k) => k.id);
        await recoveryKeysRepo.supersede(older, now, trx);
      }
      if (keyPackage && keyPackage.length > 0) await storePackage(organizationId, id, keyPackage, now, trx);
      return { outcome: 'created', id, status };
    },
  };
}
