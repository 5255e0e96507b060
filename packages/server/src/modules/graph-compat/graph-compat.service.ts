/**
 * The Graph-shaped view of keys and devices. Disclosure is not reimplemented here: it calls the one
 * recovery-keys disclosure service, so audit, rotation marking and the commit-before-reveal rule
 * are the same as on every other path.
 */
import { parseKeyId } from '@bdevault/bde';
import { AppError } from '../../lib/errors.js';
import { accountOf, type Authorizer } from '../access/access.service.js';
import { hasPermission, type Permission } from '../access/permissions.js';
import { actorOf, type Principal } from '../access/principal.js';
import type { DevicesRepo } from '../devices/devices.repo.js';
import type { RecoveryKeysService } from '../recovery-keys/recovery-keys.service.js';
import type { GraphCompatRepo, GraphKeyRow } from './graph-compat.repo.js';
import { decodeCursor, encodeCursor } from './graph-compat.odata.js';
import { deviceRecordIdOf, graphDeviceIdOf, normalizeGuid } from './graph-ids.js';

/** Graph's `volumeType` codes (bitlockerRecoveryVolumeType serialised as text). */
const VOLUME_TYPE = { os: '1', fixed: '2', removable: '3' } as const;

/** What Graph scripts see when no reason can be given through the Graph API. */
export const GRAPH_DISCLOSURE_REASON = 'Read through the Microsoft Graph-compatible API ($select=key)';

export function toGraphRecoveryKey(row: GraphKeyRow) {
  return {
    id: row.key_id.toLowerCase(),
    createdDateTime: row.created_at,
    deviceId: graphDeviceIdOf(row.device_id) ?? null,
    volumeType: VOLUME_TYPE[row.volume_type],
  };
}

export type GraphRecoveryKey = ReturnType<typeof toGraphRecoveryKey>;

export type GraphCompatService = ReturnType<typeof createGraphCompatService>;

export function createGraphCompatService(deps: {
  graphRepo: GraphCompatRepo;
  devicesRepo: Pick<DevicesRepo, 'searchByName' | 'findInScope'>;
  recoveryKeys: Pick<RecoveryKeysService, 'discloseRecoveryPassword'>;
  authorizer: Pick<Authorizer, 'scopeOf' | 'authorizeRecoveryKey'>;
}) {
  const { graphRepo, devicesRepo, recoveryKeys, authorizer } = deps;

  /** Lacking the permission at all is a 403 as on the JSON API; a key outside the scope is a 404. */
  function requirePermission(principal: Principal, permission: Permission) {
    if (!hasPermission(principal.permissions, permission)) {
      throw new AppError('FORBIDDEN', `This action needs the ${permission} permission`);
    }
  }

  async function findKey(organizationId: string, graphKeyId: string): Promise<GraphKeyRow> {
    const guid = normalizeGuid(graphKeyId);
    if (guid === undefined) throw new AppError('VALIDATION_FAILED', 'The recovery key id must be a GUID');
    const row = await graphRepo.findByKeyId(organizationId, parseKeyId(guid));
    if (!row) throw new AppError('KEY_NOT_FOUND', 'No such recovery key');
    return row;
  }

  return {
    async listRecoveryKeys(
      principal: Principal,
      options: { graphDeviceId?: string; top: number; skipToken?: string },
    ): Promise<{ keys: GraphRecoveryKey[]; skipToken: string | undefined }> {
      let deviceRecordId: string | undefined;
      if (options.graphDeviceId !== undefined) {
        deviceRecordId = deviceRecordIdOf(options.graphDeviceId);
        if (deviceRecordId === undefined) throw new AppError('VALIDATION_FAILED', 'deviceId must be a GUID');
      }
      const after = options.skipToken === undefined ? undefined : decodeCursor(options.skipToken);
      // One extra row says whether another page exists without a count query.
      const rows = await graphRepo.page(principal.organizationId, {
        scope: authorizer.scopeOf(principal, 'keys:read-metadata'),
        ...(deviceRecordId === undefined ? {} : { deviceRecordId }),
        ...(after === undefined ? {} : { after }),
        limit: options.top + 1,
      });
      const pageRows = rows.slice(0, options.top);
      const last = pageRows[pageRows.length - 1];
      return {
        keys: pageRows.map(toGraphRecoveryKey),
        skipToken:
          rows.length > options.top && last ? encodeCursor({ c: last.created_at, i: last.id }) : undefined,
      };
    },

    /**
     * One key's metadata, or with `disclose` the key itself through the one disclosure service
     * (disclosure limits, audit row committed first, rotation marking), never a second path.
     */
    async readRecoveryKey(
      principal: Principal,
      graphKeyId: string,
      request: { disclose: boolean; requestId: string; address: string; context: Record<string, string> },
    ): Promise<GraphRecoveryKey & { key?: string }> {
      const permission = request.disclose ? 'keys:disclose' : 'keys:read-metadata';
      requirePermission(principal, permission);
      const row = await findKey(principal.organizationId, graphKeyId);
      if (!request.disclose) {
        await authorizer.authorizeRecoveryKey(principal, permission, row.id);
        return toGraphRecoveryKey(row);
      }
      const disclosed = await recoveryKeys.discloseRecoveryPassword({
        organizationId: principal.organizationId,
        // Authorized by the statement that marks the key, as on the bdevault route.
        scope: authorizer.scopeOf(principal, permission),
        recoveryKeyRecordId: row.id,
        reason: GRAPH_DISCLOSURE_REASON,
        actor: actorOf(principal),
        requestId: request.requestId,
        context: request.context,
        account: accountOf(principal),
        address: request.address,
      });
      return { ...toGraphRecoveryKey(row), key: disclosed.recoveryPassword };
    },

    async findDevices(
      principal: Principal,
      filter: { property: 'displayName' | 'deviceId'; value: string },
      top: number,
    ) {
      const scope = authorizer.scopeOf(principal, 'devices:read');
      if (filter.property === 'deviceId') {
        const recordId = deviceRecordIdOf(filter.value);
        if (recordId === undefined) throw new AppError('VALIDATION_FAILED', 'deviceId must be a GUID');
        const device = await devicesRepo.findInScope(principal.organizationId, recordId, scope);
        return device && device.deleted_at === null ? [toGraphDevice(device)] : [];
      }
      if (filter.value.length === 0 || filter.value.length > 256) return [];
      const devices = await devicesRepo.searchByName(
        principal.organizationId,
        { name: filter.value, match: 'exact', limit: top, includeDeleted: false },
        scope,
      );
      return devices.map(toGraphDevice);
    },
  };
}

function toGraphDevice(device: { id: string; name: string }) {
  return { id: device.id, deviceId: graphDeviceIdOf(device.id) ?? null, displayName: device.name };
}
