/** Recovery keys: history rows with an encrypted password, never updated in place except status and wrapping. */
import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { RecoveryKeyPackagesTable, RecoveryKeysTable, RecoveryKeyStatus } from '../../db/schema.js';
import { deviceInScope, keyDeviceInScope } from '../access/access.repo.js';
import type { AccessScope } from '../access/permissions.js';

export type RecoveryKeyRow = RecoveryKeysTable;

/** Key metadata joined with its device and volume: what lookups return, never the ciphertext. */
export interface RecoveryKeyMetadataRow {
  id: string;
  key_id: string;
  status: RecoveryKeyStatus;
  source: RecoveryKeysTable['source'];
  created_at: string;
  superseded_at: string | null;
  last_disclosed_at: string | null;
  device_id: string;
  device_name: string;
  device_deleted_at: string | null;
  volume_id: string;
  volume_guid: string;
  volume_type: 'os' | 'fixed' | 'removable';
  drive_letter: string | null;
}

/**
 * What to find; fields combine with AND. A device or owner gives the lookup a context; a key id or
 * prefix alone has none (that needs `keys:lookup-by-id`, checked by the route).
 */
export interface RecoveryKeyFilter {
  id?: string;
  keyId?: string;
  keyIdPrefix?: string;
  deviceId?: string;
  /** Keys of live devices this user owns (self-service). */
  ownerUserId?: string;
}

export interface RecoveryKeysRepo {
  insert(row: RecoveryKeyRow, trx?: Executor): Promise<void>;
  findById(organizationId: string, id: string, trx?: Executor): Promise<RecoveryKeyRow | undefined>;
  /** The key, when its device is in `scope`; one statement (the authorization of every key route). */
  findByIdInScope(
    organizationId: string,
    id: string,
    scope: AccessScope,
    trx?: Executor,
  ): Promise<RecoveryKeyRow | undefined>;
  findByKeyId(organizationId: string, keyId: string, trx?: Executor): Promise<RecoveryKeyRow | undefined>;
  /** Metadata of keys whose device is in `scope` (the caller's scope for the permission used). */
  listMetadata(
    organizationId: string,
    filter: RecoveryKeyFilter,
    limit: number,
    scope: AccessScope,
    trx?: Executor,
  ): Promise<RecoveryKeyMetadataRow[]>;
  currentOfVolume(volumeId: string, trx?: Executor): Promise<RecoveryKeyRow[]>;
  supersede(ids: string[], at: string, trx?: Executor): Promise<void>;
  /**
   * Stamps the disclosure and returns the key row as it is now (locked until the transaction ends);
   * undefined when there is no such key, or when `scope` is given and the key's device is outside it.
   * - `scope`: the caller's scope for `keys:disclose`. The statement that writes is the
   *   authorization, so no key can change devices between a check and the write, and the disclosure
   *   costs no separate authorizing read.
   * - `rotationPending`: single-use passwords are on, so an active key also becomes
   *   `rotation_pending` in the same statement (the rotation request is opened next, in the same
   *   transaction).
   */
  markDisclosed(
    organizationId: string,
    id: string,
    at: string,
    trx?: Executor,
    options?: { rotationPending?: boolean; scope?: AccessScope },
  ): Promise<RecoveryKeysTable | undefined>;
  insertKeyPackage(row: RecoveryKeyPackagesTable, trx?: Executor): Promise<void>;
  hasKeyPackage(recoveryKeyId: string, trx?: Executor): Promise<boolean>;
  countOfOrganization(organizationId: string, trx?: Executor): Promise<number>;
  /** A page of an organization's keys with device and volume, ordered by id, for export. */
  exportPage(
    organizationId: string,
    afterId: string,
    limit: number,
    trx?: Executor,
  ): Promise<(RecoveryKeyRow & { device_name: string; volume_guid: string; volume_type: string })[]>;
}

export function createRecoveryKeysRepo(db: Executor): RecoveryKeysRepo {
  return {
    async insert(row, trx = db) {
      await trx.insertInto('recovery_keys').values(row).execute();
    },
    async findById(organizationId, id, trx = db) {
      return trx
        .selectFrom('recovery_keys')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .executeTakeFirst();
    },
    async findByIdInScope(organizationId, id, scope, trx = db) {
      if (scope.kind === 'none') return undefined;
      return trx
        .selectFrom('recovery_keys as k')
        .selectAll('k')
        .where('k.organization_id', '=', organizationId)
        .where('k.id', '=', id)
        .where(keyDeviceInScope(scope, organizationId, 'k.device_id'))
        .executeTakeFirst();
    },
    async findByKeyId(organizationId, keyId, trx = db) {
      return trx
        .selectFrom('recovery_keys')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('key_id', '=', keyId)
        .executeTakeFirst();
    },
    async listMetadata(organizationId, filter, limit, scope, trx = db) {
      if (scope.kind === 'none') return [];
      let query = trx
        .selectFrom('recovery_keys as k')
        .innerJoin('devices as d', 'd.id', 'k.device_id')
        .innerJoin('volumes as v', 'v.id', 'k.volume_id')
        .select([
          'k.id',
          'k.key_id',
          'k.status',
          'k.source',
          'k.created_at',
          'k.superseded_at',
          'k.last_disclosed_at',
          'k.device_id',
          'd.name as device_name',
          'd.deleted_at as device_deleted_at',
          'k.volume_id',
          'v.volume_guid',
          'v.volume_type',
          'v.drive_letter',
        ])
        .where('k.organization_id', '=', organizationId)
        .where(deviceInScope(scope, 'd.id', 'd.owner_user_id'));
      if (filter.id !== undefined) query = query.where('k.id', '=', filter.id);
      if (filter.keyId !== undefined) query = query.where('k.key_id', '=', filter.keyId);
      if (filter.keyIdPrefix !== undefined) query = query.where('k.key_id_prefix', '=', filter.keyIdPrefix);
      if (filter.deviceId !== undefined) query = query.where('k.device_id', '=', filter.deviceId);
      if (filter.ownerUserId !== undefined) {
        query = query.where('d.owner_user_id', '=', filter.ownerUserId).where('d.deleted_at', 'is', null);
      }
      return query.orderBy('k.created_at', 'desc').orderBy('k.id').limit(limit).execute();
    },
    async currentOfVolume(volumeId, trx = db) {
      return trx
        .selectFrom('recovery_keys')
        .selectAll()
        .where('volume_id', '=', volumeId)
        .where('status', 'in', ['active', 'rotation_pending'])
        .execute();
    },
    async supersede(ids, at, trx = db) {
      if (ids.length === 0) return;
      await trx
        .updateTable('recovery_keys')
        .set({ status: 'superseded', superseded_at: at })
        .where('id', 'in', ids)
        .execute();
    },
    async markDisclosed(organizationId, id, at, trx = db, options = {}) {
      return trx
        .updateTable('recovery_keys')
        .set((eb) => ({
          last_disclosed_at: at,
          ...(options.rotationPending
            ? {
                status: eb
                  .case()
                  .when('status', '=', 'active')
                  .then(sql.lit('rotation_pending' as const))
                  .else(eb.ref('status'))
                  .end(),
              }
            : {}),
        }))
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .where(keyDeviceInScope(options.scope, organizationId, 'recovery_keys.device_id'))
        .returningAll()
        .executeTakeFirst();
    },
    async insertKeyPackage(row, trx = db) {
      await trx.insertInto('recovery_key_packages').values(row).execute();
    },
    async hasKeyPackage(recoveryKeyId, trx = db) {
      const row = await trx
        .selectFrom('recovery_key_packages')
        .select('recovery_key_id')
        .where('recovery_key_id', '=', recoveryKeyId)
        .executeTakeFirst();
      return row !== undefined;
    },
    async countOfOrganization(organizationId, trx = db) {
      const row = await trx
        .selectFrom('recovery_keys')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('organization_id', '=', organizationId)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async exportPage(organizationId, afterId, limit, trx = db) {
      return trx
        .selectFrom('recovery_keys as k')
        .innerJoin('devices as d', 'd.id', 'k.device_id')
        .innerJoin('volumes as v', 'v.id', 'k.volume_id')
        .selectAll('k')
        .select(['d.name as device_name', 'v.volume_guid', 'v.volume_type'])
        .where('k.organization_id', '=', organizationId)
        .where('k.id', '>', afterId)
        .orderBy('k.id')
        .limit(limit)
        .execute();
    },
  };
}
