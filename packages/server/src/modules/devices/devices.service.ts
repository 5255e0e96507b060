/** Device lookups and soft deletion (keys stay: they are history, not device state). */
import type { Db } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { AccessRepo } from '../access/access.repo.js';
import type { Authorizer } from '../access/access.service.js';
import type { AccessScope } from '../access/permissions.js';
import type { Principal } from '../access/principal.js';
import type { AuditWriter } from '../audit/audit.service.js';
import type { DeviceRow, DevicesRepo, VolumeRow } from './devices.repo.js';

export function toDeviceSummary(d: DeviceRow) {
  return {
    id: d.id,
    name: d.name,
    dnsName: d.dns_name,
    os: d.os,
    serialNumber: d.serial_number,
    registeredOwner: d.registered_owner,
    ownerUserId: d.owner_user_id,
    firstSeenAt: d.first_seen_at,
    lastSeenAt: d.last_seen_at,
    deletedAt: d.deleted_at,
  };
}

export function toVolumeSummary(v: VolumeRow) {
  return {
    id: v.id,
    volumeGuid: v.volume_guid,
    volumeType: v.volume_type,
    driveLetter: v.drive_letter,
    encryptionMethod: v.encryption_method,
    protectionStatus: v.protection_status,
    updatedAt: v.updated_at,
  };
}

export type DevicesService = ReturnType<typeof createDevicesService>;

export function createDevicesService(deps: {
  db: Db;
  clock: Clock;
  auditWriter: AuditWriter;
  devicesRepo: DevicesRepo;
  authorizer: Pick<Authorizer, 'authorize' | 'scopeOf'>;
  accessRepo: Pick<AccessRepo, 'isMember' | 'findGroup' | 'addDeviceMember' | 'removeDeviceMember'>;
}) {
  const { db, clock, auditWriter, devicesRepo, authorizer, accessRepo } = deps;
  type Actor = { type: 'user' | 'api-token'; id: string };
  return {
    /** Only devices the caller may read, filtered in SQL. */
    async searchDevices(
      organizationId: string,
      query: Parameters<DevicesRepo['searchByName']>[1],
      scope: AccessScope,
    ) {
      return (await devicesRepo.searchByName(organizationId, query, scope)).map(toDeviceSummary);
    },
    async getDevice(principal: Principal, deviceId: string) {
      const device = await authorizer.authorize(principal, 'devices:read', { deviceId });
      const organizationId = principal.organizationId;
      const [volumes, groupIds] = await Promise.all([
        devicesRepo.volumesOf(organizationId, deviceId),
        devicesRepo.groupIdsOf(deviceId),
      ]);
      return { ...toDeviceSummary(device), groupIds, volumes: volumes.map(toVolumeSummary) };
    },
    async deleteDevice(principal: Principal, deviceId: string, actor: Actor, requestId: string) {
      const organizationId = principal.organizationId;
      await db.transaction().execute(async (trx) => {
        const device = await authorizer.authorize(principal, 'devices:delete', { deviceId }, trx);
        if (device.deleted_at !== null) throw new AppError('DEVICE_NOT_FOUND', 'No such device');
        await devicesRepo.update(deviceId, { deleted_at: clock.now().toISOString() }, trx);
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'device.deleted',
            target: { type: 'device', id: deviceId },
            outcome: 'success',
            requestId,
          },
          trx,
        );
      });
    },

    /**
     * Gives the device a new owner (a member of the organization) or none. Scopes that reached the
     * device through the previous owner's device groups stop reaching it at once: scope is
     * evaluated at query time from the owner column.
     */
    async setOwner(
      principal: Principal,
      deviceId: string,
      ownerUserId: string | null,
      actor: Actor,
      requestId: string,
    ) {
      const organizationId = principal.organizationId;
      await db.transaction().execute(async (trx) => {
        const device = await authorizer.authorize(principal, 'devices:write', { deviceId }, trx);
        if (ownerUserId !== null && !(await accessRepo.isMember(organizationId, ownerUserId, trx))) {
          throw new AppError('NOT_FOUND', 'No such user in this organization');
        }
        await devicesRepo.update(deviceId, { owner_user_id: ownerUserId }, trx);
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'device.owner-changed',
            target: { type: 'device', id: deviceId },
            outcome: 'success',
            details: { from: device.owner_user_id, to: ownerUserId },
            requestId,
          },
          trx,
        );
      });
    },

    /**
     * Moves a device between device groups. The caller must be allowed `devices:write` on the device
     * and on every group it adds or removes (an organization-wide grant covers all), so nobody moves
     * a device into or out of a unit they do not administer.
     */
    async moveDevice(
      principal: Principal,
      deviceId: string,
      change: { add: string[]; remove: string[] },
      actor: Actor,
      requestId: string,
    ) {
      const organizationId = principal.organizationId;
      const scope = authorizer.scopeOf(principal, 'devices:write');
      const administers = (groupId: string) =>
        scope.kind === 'all' ||
        (scope.kind === 'groups' && scope.constraints.every((c) => c.includes(groupId)));
      await db.transaction().execute(async (trx) => {
        await authorizer.authorize(principal, 'devices:write', { deviceId }, trx);
        for (const groupId of [...change.add, ...change.remove]) {
          if (!(await accessRepo.findGroup(organizationId, groupId, trx)) || !administers(groupId)) {
            throw new AppError('NOT_FOUND', 'No such device group');
          }
        }
        for (const groupId of change.remove) await accessRepo.removeDeviceMember(groupId, deviceId, trx);
        for (const groupId of change.add) await accessRepo.addDeviceMember(groupId, deviceId, trx);
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'device.groups-changed',
            target: { type: 'device', id: deviceId },
            outcome: 'success',
            details: { added: change.add.join(' '), removed: change.remove.join(' ') },
            requestId,
          },
          trx,
        );
      });
      return devicesRepo.groupIdsOf(deviceId);
    },
  };
}
