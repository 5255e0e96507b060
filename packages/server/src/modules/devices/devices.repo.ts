/** Devices, their volumes and device-group membership, always scoped by organization. */
import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { DevicesTable, VolumesTable } from '../../db/schema.js';
import { deviceInScope } from '../access/access.repo.js';
import type { AccessScope } from '../access/permissions.js';

export type DeviceRow = DevicesTable;
export type VolumeRow = VolumesTable;

/** Escapes LIKE wildcards so a name prefix is matched literally on every dialect. */
function likePrefix(prefix: string): string {
  return `${prefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export function deviceNameKey(name: string): string {
  return name.toUpperCase();
}

export interface DevicesRepo {
  insert(row: DeviceRow, trx?: Executor): Promise<void>;
  findById(organizationId: string, id: string, trx?: Executor): Promise<DeviceRow | undefined>;
  /** The device when it is in the organization and in `scope`; the authorizer's one query. */
  findInScope(
    organizationId: string,
    id: string,
    scope: AccessScope,
    trx?: Executor,
  ): Promise<DeviceRow | undefined>;
  findLiveByName(organizationId: string, name: string, trx?: Executor): Promise<DeviceRow | undefined>;
  searchByName(
    organizationId: string,
    query: {
      name?: string | undefined;
      match: 'exact' | 'prefix';
      owner?: string | undefined;
      limit: number;
      includeDeleted: boolean;
    },
    scope: AccessScope,
    trx?: Executor,
  ): Promise<DeviceRow[]>;
  /** Live devices whose owner is `userId` (self-service). */
  ownedBy(organizationId: string, userId: string, limit: number, trx?: Executor): Promise<DeviceRow[]>;
  update(
    id: string,
    changes: Partial<Omit<DeviceRow, 'id' | 'organization_id'>>,
    trx?: Executor,
  ): Promise<void>;
  addToGroup(deviceGroupId: string, deviceId: string, trx?: Executor): Promise<void>;
  groupIdsOf(deviceId: string, trx?: Executor): Promise<string[]>;
  findVolume(deviceId: string, volumeGuid: string, trx?: Executor): Promise<VolumeRow | undefined>;
  insertVolume(row: VolumeRow, trx?: Executor): Promise<void>;
  updateVolume(
    id: string,
    changes: Partial<Omit<VolumeRow, 'id' | 'organization_id' | 'device_id'>>,
    trx?: Executor,
  ): Promise<void>;
  volumesOf(organizationId: string, deviceId: string, trx?: Executor): Promise<VolumeRow[]>;
}

export function createDevicesRepo(db: Executor): DevicesRepo {
  return {
    async insert(row, trx = db) {
      await trx.insertInto('devices').values(row).execute();
    },
    async findById(organizationId, id, trx = db) {
      return trx
        .selectFrom('devices')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .executeTakeFirst();
    },
    async findInScope(organizationId, id, scope, trx = db) {
      if (scope.kind === 'none') return undefined;
      return trx
        .selectFrom('devices')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .where(deviceInScope(scope, 'devices.id', 'devices.owner_user_id'))
        .executeTakeFirst();
    },
    async ownedBy(organizationId, userId, limit, trx = db) {
      return trx
        .selectFrom('devices')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('owner_user_id', '=', userId)
        .where('deleted_at', 'is', null)
        .orderBy('name_key')
        .orderBy('id')
        .limit(limit)
        .execute();
    },
    async findLiveByName(organizationId, name, trx = db) {
      return trx
        .selectFrom('devices')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('name_key', '=', deviceNameKey(name))
        .where('deleted_at', 'is', null)
        .orderBy('created_at')
        .executeTakeFirst();
    },
    async searchByName(organizationId, { name, match, owner, limit, includeDeleted }, scope, trx = db) {
      if (scope.kind === 'none') return [];
      let query = trx
        .selectFrom('devices')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where(deviceInScope(scope, 'devices.id', 'devices.owner_user_id'));
      if (name !== undefined) {
        const key = deviceNameKey(name);
        query =
          match === 'exact'
            ? query.where('name_key', '=', key)
            : query.where(sql<boolean>`name_key like ${likePrefix(key)} escape '\\'`);
      }
      if (owner !== undefined) {
        // lower() on both sides keeps the match case-insensitive on SQLite and PostgreSQL alike.
        const pattern = likePrefix(owner.toLowerCase());
        query = query.where(
          sql<boolean>`(devices.owner_user_id in (select users.id from users where lower(users.username) like ${pattern} escape '\\' or lower(users.display_name) like ${pattern} escape '\\') or lower(devices.registered_owner) like ${pattern} escape '\\')`,
        );
      }
      if (!includeDeleted) query = query.where('deleted_at', 'is', null);
      return query.orderBy('name_key').orderBy('id').limit(limit).execute();
    },
    async update(id, changes, trx = db) {
      await trx.updateTable('devices').set(changes).where('id', '=', id).execute();
    },
    async addToGroup(deviceGroupId, deviceId, trx = db) {
      const existing = await trx
        .selectFrom('device_group_members')
        .select('device_id')
        .where('device_group_id', '=', deviceGroupId)
        .where('device_id', '=', deviceId)
        .executeTakeFirst();
      if (!existing) {
        await trx
          .insertInto('device_group_members')
          .values({ device_group_id: deviceGroupId, device_id: deviceId })
          .execute();
      }
    },
    async groupIdsOf(deviceId, trx = db) {
      const rows = await trx
        .selectFrom('device_group_members')
        .select('device_group_id')
        .where('device_id', '=', deviceId)
        .execute();
      return rows.map((r) => r.device_group_id);
    },
    async findVolume(deviceId, volumeGuid, trx = db) {
      return trx
        .selectFrom('volumes')
        .selectAll()
        .where('device_id', '=', deviceId)
        .where('volume_guid', '=', volumeGuid)
        .executeTakeFirst();
    },
    async insertVolume(row, trx = db) {
      await trx.insertInto('volumes').values(row).execute();
    },
    async updateVolume(id, changes, trx = db) {
      await trx.updateTable('volumes').set(changes).where('id', '=', id).execute();
    },
    async volumesOf(organizationId, deviceId, trx = db) {
      return trx
        .selectFrom('volumes')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('device_id', '=', deviceId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
    },
  };
}
