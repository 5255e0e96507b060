/** Device escrow: enrollment tokens, device registration, and idempotent escrow of recovery keys. */
import { checkRecoveryPassword, parseKeyId } from '@bdevault/bde';
import type { Db } from '../../db/database.js';
import type { RecoveryKeySource, RecoveryKeyStatus } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import type { Envelope } from '../../lib/envelope.js';
import { AppError } from '../../lib/errors.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { RandomSource } from '../../lib/random.js';
import { issueToken, parseToken, tokenMatches } from '../../lib/tokens.js';
import type { AuditActorType, AuditWriter } from '../audit/audit.service.js';
import { deviceNameKey, type DevicesRepo } from '../devices/devices.repo.js';
import type { RecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import type { EscrowRepo } from './escrow.repo.js';
import type { DeviceFacts, EscrowInput } from './escrow.schemas.js';

/** Where a problem with one escrowed password is: positions and reasons only, never digits. */
export interface PasswordProblemReport {
  volumeIndex: number;
  keyIndex: number;
  problems: { group: number; reason: string }[];
}

export type EscrowService = ReturnType<typeof createEscrowService>;

export function createEscrowService(deps: {
  db: Db;
  clock: Clock;
  random: RandomSource;
  ids: IdGenerator;
  envelope: Envelope;
  auditWriter: AuditWriter;
  escrowRepo: EscrowRepo;
  devicesRepo: DevicesRepo;
  recoveryKeysRepo: RecoveryKeysRepo;
}) {
  const { db, clock, random, ids, envelope, auditWriter, escrowRepo, devicesRepo, recoveryKeysRepo } = deps;
  const invalidToken = () =>
    new AppError('ENROLLMENT_TOKEN_INVALID', 'The enrollment token is missing, unknown, expired or used up');

  return {
    async createEnrollmentToken(options: {
      organizationId: string;
      description: string;
      deviceGroupName?: string | undefined;
      expiresInHours: number;
      maxUses: number;
      actor: { type: AuditActorType; id: string | null };
      requestId?: string;
    }) {
      const issued = issueToken('enrollmentToken', random);
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + options.expiresInHours * 3_600_000).toISOString();
      const id = ids('enrollmentToken');
      const deviceGroupId = await db.transaction().execute(async (trx) => {
        let groupId: string | null = null;
        if (options.deviceGroupName !== undefined) {
          const group = await escrowRepo.findGroupByName(
            options.organizationId,
            options.deviceGroupName,
            trx,
          );
          groupId = group?.id ?? ids('deviceGroup');
          if (!group) {
            await escrowRepo.insertGroup(
              {
                id: groupId,
                organization_id: options.organizationId,
                name: options.deviceGroupName,
                created_at: now.toISOString(),
              },
              trx,
            );
          }
        }
        await escrowRepo.insertEnrollmentToken(
          {
            id,
            organization_id: options.organizationId,
            device_group_id: groupId,
            description: options.description,
            lookup_prefix: issued.lookupPrefix,
            token_hash: issued.hash,
            expires_at: expiresAt,
            max_uses: options.maxUses,
            use_count: 0,
            created_by: `${options.actor.type}:${options.actor.id ?? ''}`,
            created_at: now.toISOString(),
            revoked_at: null,
          },
          trx,
        );
        await auditWriter.append(
          {
            organizationId: options.organizationId,
            actor: options.actor,
            action: 'enrollment-token.created',
            target: { type: 'enrollment-token', id },
            outcome: 'success',
            details: { maxUses: options.maxUses, expiresAt, deviceGroupId: groupId },
            ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
          },
          trx,
        );
        return groupId;
      });
      return { id, enrollmentToken: issued.token, deviceGroupId, expiresAt, maxUses: options.maxUses };
    },

    /** The organization's enrollment tokens (never the token itself: only its hash is stored). */
    async listEnrollmentTokens(organizationId: string) {
      const now = clock.now().toISOString();
      const rows = await escrowRepo.listEnrollmentTokens(organizationId, 500);
      return rows.map((r) => ({
        id: r.id,
        description: r.description,
        deviceGroupId: r.device_group_id,
        createdAt: r.created_at,
        expiresAt: r.expires_at,
        maxUses: Number(r.max_uses),
        useCount: Number(r.use_count),
        revokedAt: r.revoked_at,
        status:
          r.revoked_at !== null
            ? ('revoked' as const)
            : r.expires_at <= now
              ? ('expired' as const)
              : Number(r.use_count) >= Number(r.max_uses)
                ? ('used-up' as const)
                : ('active' as const),
      }));
    },

    /** Revokes an enrollment token: devices enrolled with it keep their credentials. */
    async revokeEnrollmentToken(options: {
      organizationId: string;
      id: string;
      actor: { type: AuditActorType; id: string | null };
      requestId?: string;
    }) {
      await db.transaction().execute(async (trx) => {
        const at = clock.now().toISOString();
        if (!(await escrowRepo.revokeEnrollmentToken(options.organizationId, options.id, at, trx))) {
          throw new AppError('NOT_FOUND', 'No such enrollment token, or it is already revoked');
        }
        await auditWriter.append(
          {
            organizationId: options.organizationId,
            actor: options.actor,
            action: 'enrollment-token.revoked',
            target: { type: 'enrollment-token', id: options.id },
            outcome: 'success',
            ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
          },
          trx,
        );
      });
    },

    /**
     * Registers a device with an enrollment token. Every enrollment makes a new device record: a
     * token holder must not be able to attach keys to (and supersede the keys of) an existing device.
     */
    async enrollDevice(enrollmentToken: string | undefined, facts: DeviceFacts, requestId?: string) {
      const parsed = enrollmentToken === undefined ? undefined : parseToken(enrollmentToken);
      if (!enrollmentToken || parsed?.kind !== 'enrollmentToken') throw invalidToken();
      const token = await escrowRepo.findEnrollmentTokenByLookupPrefix(parsed.lookupPrefix);
      const now = clock.now().toISOString();
      if (
        !token ||
        !tokenMatches(enrollmentToken, token.token_hash) ||
        token.revoked_at !== null ||
        token.expires_at <= now
      ) {
        throw invalidToken();
      }
      const credential = issueToken('deviceCredential', random);
      const deviceId = ids('device');
      await db.transaction().execute(async (trx) => {
        if (!(await escrowRepo.consumeEnrollmentToken(token.id, now, trx))) throw invalidToken();
        await devicesRepo.insert(
          {
            id: deviceId,
            organization_id: token.organization_id,
            name: facts.name,
            name_key: deviceNameKey(facts.name),
            dns_name: facts.dnsName ?? null,
            os: facts.os ?? null,
            serial_number: facts.serialNumber ?? null,
            registered_owner: facts.registeredOwner ?? null,
            owner_user_id: null,
            first_seen_at: now,
            last_seen_at: now,
            created_at: now,
            deleted_at: null,
          },
          trx,
        );
        if (token.device_group_id !== null)
          await devicesRepo.addToGroup(token.device_group_id, deviceId, trx);
        await escrowRepo.insertDeviceCredential(
          {
            id: ids('deviceCredential'),
            organization_id: token.organization_id,
            device_id: deviceId,
            lookup_prefix: credential.lookupPrefix,
            token_hash: credential.hash,
            created_at: now,
            last_used_at: null,
            revoked_at: null,
          },
          trx,
        );
        await auditWriter.append(
          {
            organizationId: token.organization_id,
            actor: { type: 'device', id: deviceId },
            action: 'device.enrolled',
            target: { type: 'device', id: deviceId },
            outcome: 'success',
            details: { enrollmentTokenId: token.id, name: facts.name },
            ...(requestId === undefined ? {} : { requestId }),
          },
          trx,
        );
      });
      return { deviceId, deviceCredential: credential.token };
    },

    /**
     * Escrows volumes and their recovery passwords in one transaction. The same key twice changes
     * nothing; a new key for a volume becomes active and the volume's previous keys are superseded
     * (kept as history). Any invalid password refuses the whole request before anything is written.
     */
    async escrowRecoveryKeys(
      caller: { organizationId: string; deviceId: string },
      input: EscrowInput,
      options: { source: RecoveryKeySource; requestId?: string } = { source: 'agent' },
    ) {
      const { organizationId, deviceId } = caller;
      const problems: PasswordProblemReport[] = [];
      const volumes = input.volumes.map((volume, volumeIndex) => ({
        ...volume,
        volumeGuid: parseKeyId(volume.volumeGuid),
        recoveryKeys: volume.recoveryKeys.map((key, keyIndex) => {
          const check = checkRecoveryPassword(key.recoveryPassword);
          if (!check.valid || check.password === undefined) {
            problems.push({
              volumeIndex,
              keyIndex,
              problems: check.problems.map((p) => ({ group: p.group, reason: p.reason })),
            });
          }
          return { recoveryKeyId: parseKeyId(key.recoveryKeyId), recoveryPassword: check.password ?? '' };
        }),
      }));
      if (problems.length > 0) {
        throw new AppError(
          'INVALID_RECOVERY_PASSWORD',
          'One or more recovery passwords are invalid; nothing was stored',
          {
            details: { passwords: problems },
          },
        );
      }
      const seen = new Map<string, string>();
      for (const key of volumes.flatMap((v) => v.recoveryKeys)) {
        if (seen.has(key.recoveryKeyId)) {
          throw new AppError('VALIDATION_FAILED', `Key id ${key.recoveryKeyId} appears more than once`);
        }
        seen.set(key.recoveryKeyId, key.recoveryPassword);
      }

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

        const results = [];
        for (const volume of volumes) {
          const metadata = {
            volume_type: volume.volumeType,
            drive_letter:
              volume.driveLetter === undefined ? null : volume.driveLetter.slice(0, 1).toUpperCase() + ':',
            encryption_method: volume.encryptionMethod ?? null,
            protection_status: volume.protectionStatus ?? null,
          };
          let stored = await devicesRepo.findVolume(deviceId, volume.volumeGuid, trx);
          if (!stored) {
            stored = {
              id: ids('volume'),
              organization_id: organizationId,
              device_id: deviceId,
              volume_guid: volume.volumeGuid,
              ...metadata,
              created_at: now,
              updated_at: now,
            };
            await devicesRepo.insertVolume(stored, trx);
          } else if (
            (Object.keys(metadata) as (keyof typeof metadata)[]).some((k) => stored![k] !== metadata[k])
          ) {
            await devicesRepo.updateVolume(stored.id, { ...metadata, updated_at: now }, trx);
          }
          const volumeId = stored.id;

          const keys: { id: string; recoveryKeyId: string; status: RecoveryKeyStatus; created: boolean }[] =
            [];
          for (const key of volume.recoveryKeys) {
            const existing = await recoveryKeysRepo.findByKeyId(organizationId, key.recoveryKeyId, trx);
            if (existing) {
              const samePassword =
                existing.volume_id === volumeId &&
                envelope.open(
                  { organizationId, recordId: existing.id, purpose: 'recovery-password' },
                  {
                    ciphertext: existing.password_ciphertext,
                    wrappedKey: existing.password_wrapped_key,
                    kekId: existing.password_kek_id,
                  },
                ) === key.recoveryPassword;
              if (!samePassword) {
                throw new AppError(
                  'RECOVERY_KEY_CONFLICT',
                  `Key id ${key.recoveryKeyId} is already escrowed with other data`,
                );
              }
              keys.push({
                id: existing.id,
                recoveryKeyId: existing.key_id,
                status: existing.status,
                created: false,
              });
              continue;
            }
            const id = ids('recoveryKey');
            const sealed = envelope.seal(
              { organizationId, recordId: id, purpose: 'recovery-password' },
              key.recoveryPassword,
            );
            await recoveryKeysRepo.insert(
              {
                id,
                organization_id: organizationId,
                device_id: deviceId,
                volume_id: volumeId,
                key_id: key.recoveryKeyId,
                key_id_prefix: key.recoveryKeyId.slice(0, 8),
                source: options.source,
                status: 'active',
                password_ciphertext: sealed.ciphertext,
                password_wrapped_key: sealed.wrappedKey,
                password_kek_id: sealed.kekId,
                created_at: now,
                superseded_at: null,
                last_disclosed_at: null,
              },
              trx,
            );
            await auditWriter.append(
              {
                organizationId,
                actor: { type: 'device', id: deviceId },
                action: 'recovery-key.escrowed',
                target: { type: 'recovery-key', id },
                outcome: 'success',
                details: {
                  recoveryKeyId: key.recoveryKeyId,
                  volumeGuid: volume.volumeGuid,
                  source: options.source,
                },
                ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
              },
              trx,
            );
            keys.push({ id, recoveryKeyId: key.recoveryKeyId, status: 'active', created: true });
          }

          if (keys.some((k) => k.created)) {
            const listed = new Set(keys.map((k) => k.id));
            const previous = (await recoveryKeysRepo.currentOfVolume(volumeId, trx)).filter(
              (k) => !listed.has(k.id),
            );
            await recoveryKeysRepo.supersede(
              previous.map((k) => k.id),
              now,
              trx,
            );
          }
          results.push({ volumeId, volumeGuid: volume.volumeGuid, recoveryKeys: keys });
        }
        return { deviceId, volumes: results };
      });
    },
  };
}
