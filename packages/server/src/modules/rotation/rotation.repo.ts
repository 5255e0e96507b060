/** Rotation requests and the rotation policy: every state change is a guarded update, safe across servers. */
import type { Executor } from '../../db/database.js';
import type {
  RecoveryKeysTable,
  RotationPoliciesTable,
  RotationRequestsTable,
  RotationStatus,
} from '../../db/schema.js';
import { deviceInScope } from '../access/access.repo.js';
import type { AccessScope } from '../access/permissions.js';

export type RotationRow = RotationRequestsTable;

/** Statuses in which the device still owes a result (overdue is late, not closed). */
export const OPEN_STATUSES: readonly RotationStatus[] = ['requested', 'delivered', 'overdue'];

/** A request with the key, volume and device it concerns: what lists and check-ins return. */
export interface RotationView extends RotationRow {
  key_id: string;
  volume_guid: string;
  device_name: string;
  new_key_id: string | null;
}

export interface RotationListFilter {
  status?: RotationStatus | undefined;
  deviceId?: string | undefined;
  /** Keyset: rows requested before this (requested_at, id). */
  before?: { at: string; id: string } | undefined;
}

export interface RotationRepo {
  findPolicy(organizationId: string, trx?: Executor): Promise<RotationPoliciesTable | undefined>;
  upsertPolicy(row: RotationPoliciesTable, trx?: Executor): Promise<void>;
  insert(row: RotationRow, trx?: Executor): Promise<void>;
  /** Inserts an open request unless the key has one already (its `open_key`); true when inserted. */
  insertUnlessOpen(row: RotationRow, trx?: Executor): Promise<boolean>;
  findOpenForKey(recoveryKeyId: string, trx?: Executor): Promise<RotationRow | undefined>;
  findView(organizationId: string, id: string, trx?: Executor): Promise<RotationView | undefined>;
  openForDevice(deviceId: string, trx?: Executor): Promise<RotationView[]>;
  /** Records a delivery; `requested` becomes `delivered`, an overdue request stays overdue. */
  markDelivered(ids: string[], at: string, trx?: Executor): Promise<void>;
  /** Closes an open request; false when it was no longer open (another result won). */
  close(
    id: string,
    change: Pick<RotationRow, 'status' | 'updated_at'> &
      Partial<Pick<RotationRow, 'completed_at' | 'failed_at' | 'failure_reason' | 'new_recovery_key_id'>>,
    trx?: Executor,
  ): Promise<boolean>;
  /** Open requests past their deadline and not yet marked, oldest first, across organizations. */
  dueForOverdue(now: string, limit: number, trx?: Executor): Promise<RotationRow[]>;
  /** requested/delivered → overdue; false when someone else marked (or closed) it first. */
  markOverdue(id: string, at: string, trx?: Executor): Promise<boolean>;
  list(
    organizationId: string,
    filter: RotationListFilter,
    scope: AccessScope,
    limit: number,
    trx?: Executor,
  ): Promise<RotationView[]>;
  /** An active key now waits for its rotation (a superseded one stays history). */
  markKeyRotationPending(recoveryKeyId: string, trx?: Executor): Promise<void>;
  /**
   * Current keys (active or awaiting rotation) of live devices, without an open request: of one
   * device, or of a device group's devices (direct members and devices of member users) in `scope`.
   */
  currentKeysWithoutRequest(
    organizationId: string,
    target: { deviceId: string } | { deviceGroupId: string },
    scope: AccessScope,
    limit: number,
    trx?: Executor,
  ): Promise<RecoveryKeysTable[]>;
}

export function createRotationRepo(db: Executor): RotationRepo {
  const views = (trx: Executor) =>
    trx
      .selectFrom('rotation_requests as r')
      .innerJoin('recovery_keys as k', 'k.id', 'r.recovery_key_id')
      .innerJoin('volumes as v', 'v.id', 'r.volume_id')
      .innerJoin('devices as d', 'd.id', 'r.device_id')
      .leftJoin('recovery_keys as nk', 'nk.id', 'r.new_recovery_key_id')
      .selectAll('r')
      .select(['k.key_id', 'v.volume_guid', 'd.name as device_name', 'nk.key_id as new_key_id']);

  return {
    async findPolicy(organizationId, trx = db) {
      return trx
        .selectFrom('rotation_policies')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .executeTakeFirst();
    },
    async upsertPolicy(row, trx = db) {
      await trx
        .insertInto('rotation_policies')
        .values(row)
        .onConflict((oc) =>
          oc.column('organization_id').doUpdateSet({
            single_use_passwords: row.single_use_passwords,
            deadline_days: row.deadline_days,
            updated_at: row.updated_at,
          }),
        )
        .execute();
    },
    async insert(row, trx = db) {
      await trx.insertInto('rotation_requests').values(row).execute();
    },
    async insertUnlessOpen(row, trx = db) {
      const inserted = await trx
        .insertInto('rotation_requests')
        .values(row)
        .onConflict((oc) => oc.column('open_key').doNothing())
        .returning('id')
        .executeTakeFirst();
      return inserted !== undefined;
    },
    async findOpenForKey(recoveryKeyId, trx = db) {
      return trx
        .selectFrom('rotation_requests')
        .selectAll()
        .where('open_key', '=', recoveryKeyId)
        .executeTakeFirst();
    },
    async findView(organizationId, id, trx = db) {
      return views(trx)
        .where('r.organization_id', '=', organizationId)
        .where('r.id', '=', id)
        .executeTakeFirst();
    },
    async openForDevice(deviceId, trx = db) {
      return (
        views(trx)
          .where('r.device_id', '=', deviceId)
          .where('r.status', 'in', OPEN_STATUSES)
          .orderBy('r.requested_at')
          .orderBy('r.id')
          // A device has a handful of volumes and keys; the bound only guards against a runaway loop.
          .limit(100)
          .execute()
      );
    },
    async markDelivered(ids, at, trx = db) {
      if (ids.length === 0) return;
      await trx
        .updateTable('rotation_requests')
        .set((eb) => ({
          status: eb
            .case()
            .when('status', '=', 'requested')
            .then('delivered' as RotationStatus)
            .else(eb.ref('status'))
            .end(),
          delivered_at: eb.fn.coalesce('delivered_at', eb.val(at)),
          last_delivered_at: at,
          updated_at: at,
        }))
        .where('id', 'in', ids)
        .where('status', 'in', OPEN_STATUSES)
        .execute();
    },
    async close(id, change, trx = db) {
      const result = await trx
        .updateTable('rotation_requests')
        .set({ ...change, open_key: null })
        .where('id', '=', id)
        .where('status', 'in', OPEN_STATUSES)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async dueForOverdue(now, limit, trx = db) {
      return trx
        .selectFrom('rotation_requests')
        .selectAll()
        .where('status', 'in', ['requested', 'delivered'])
        .where('due_at', '<=', now)
        .orderBy('due_at')
        .orderBy('id')
        .limit(limit)
        .execute();
    },
    async markOverdue(id, at, trx = db) {
      const result = await trx
        .updateTable('rotation_requests')
        .set({ status: 'overdue', overdue_at: at, updated_at: at })
        .where('id', '=', id)
        .where('status', 'in', ['requested', 'delivered'])
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async list(organizationId, filter, scope, limit, trx = db) {
      if (scope.kind === 'none') return [];
      let query = views(trx)
        .where('r.organization_id', '=', organizationId)
        .where(deviceInScope(scope, 'd.id', 'd.owner_user_id'));
      if (filter.status !== undefined) query = query.where('r.status', '=', filter.status);
      if (filter.deviceId !== undefined) query = query.where('r.device_id', '=', filter.deviceId);
      if (filter.before !== undefined) {
        const { at, id } = filter.before;
        query = query.where((eb) =>
          eb.or([
            eb('r.requested_at', '<', at),
            eb.and([eb('r.requested_at', '=', at), eb('r.id', '<', id)]),
          ]),
        );
      }
      return query.orderBy('r.requested_at', 'desc').orderBy('r.id', 'desc').limit(limit).execute();
    },
    async markKeyRotationPending(recoveryKeyId, trx = db) {
      await trx
        .updateTable('recovery_keys')
        .set({ status: 'rotation_pending' })
        .where('id', '=', recoveryKeyId)
        .where('status', '=', 'active')
        .execute();
    },
    async currentKeysWithoutRequest(organizationId, target, scope, limit, trx = db) {
      if (scope.kind === 'none') return [];
      let query = trx
        .selectFrom('recovery_keys as k')
        .innerJoin('devices as d', 'd.id', 'k.device_id')
        .selectAll('k')
        .where('k.organization_id', '=', organizationId)
        .where('k.status', 'in', ['active', 'rotation_pending'])
        .where('d.deleted_at', 'is', null)
        .where(deviceInScope(scope, 'd.id', 'd.owner_user_id'))
        .where((eb) =>
          eb.not(
            eb.exists(
              eb.selectFrom('rotation_requests as r').select('r.id').whereRef('r.open_key', '=', 'k.id'),
            ),
          ),
        );
      if ('deviceId' in target) {
        query = query.where('k.device_id', '=', target.deviceId);
      } else {
        const groupId = target.deviceGroupId;
        query = query.where((eb) =>
          eb.or([
            eb(
              'd.id',
              'in',
              eb
                .selectFrom('device_group_members')
                .select('device_id')
                .where('device_group_id', '=', groupId),
            ),
            eb(
              'd.owner_user_id',
              'in',
              eb
                .selectFrom('device_group_user_members')
                .select('user_id')
                .where('device_group_id', '=', groupId),
            ),
          ]),
        );
      }
      return query.orderBy('k.device_id').orderBy('k.id').limit(limit).execute();
    },
  };
}
