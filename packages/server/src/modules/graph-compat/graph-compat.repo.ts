/** Keyset-paged reads of recovery-key metadata in the shape the Graph routes need (never ciphertext). */
import type { Executor } from '../../db/database.js';
import type { VolumesTable } from '../../db/schema.js';
import { deviceInScope } from '../access/access.repo.js';
import type { AccessScope } from '../access/permissions.js';
import type { Cursor } from './graph-compat.odata.js';

export interface GraphKeyRow {
  id: string;
  key_id: string;
  created_at: string;
  device_id: string;
  volume_type: VolumesTable['volume_type'];
}

export interface GraphCompatRepo {
  /** Keys of devices in `scope`, in (created_at, id) order after `after`; `limit` rows at most. */
  page(
    organizationId: string,
    options: { scope: AccessScope; deviceRecordId?: string; after?: Cursor; limit: number },
    trx?: Executor,
  ): Promise<GraphKeyRow[]>;
  findByKeyId(organizationId: string, keyId: string, trx?: Executor): Promise<GraphKeyRow | undefined>;
}

export function createGraphCompatRepo(db: Executor): GraphCompatRepo {
  const base = (trx: Executor, organizationId: string) =>
    trx
      .selectFrom('recovery_keys as k')
      .innerJoin('volumes as v', 'v.id', 'k.volume_id')
      .select(['k.id', 'k.key_id', 'k.created_at', 'k.device_id', 'v.volume_type'])
      .where('k.organization_id', '=', organizationId);
  return {
    async page(organizationId, { scope, deviceRecordId, after, limit }, trx = db) {
      let query = base(trx, organizationId)
        .innerJoin('devices as d', 'd.id', 'k.device_id')
        .where(deviceInScope(scope, 'k.device_id', 'd.owner_user_id'));
      if (deviceRecordId !== undefined) query = query.where('k.device_id', '=', deviceRecordId);
      if (after !== undefined) {
        query = query.where((eb) =>
          eb.or([
            eb('k.created_at', '>', after.c),
            eb.and([eb('k.created_at', '=', after.c), eb('k.id', '>', after.i)]),
          ]),
        );
      }
      return query.orderBy('k.created_at').orderBy('k.id').limit(limit).execute();
    },
    async findByKeyId(organizationId, keyId, trx = db) {
      return base(trx, organizationId).where('k.key_id', '=', keyId).executeTakeFirst();
    },
  };
}
