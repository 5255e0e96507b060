/** Read-only queries behind the reports; plain SQL that runs the same on SQLite and PostgreSQL. */
import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import { deviceInScope } from '../access/access.repo.js';
import type { AccessScope } from '../access/permissions.js';

export interface VolumeCoverageRow {
  device_id: string;
  volume_id: string | null;
  /** 1 when the volume has a usable key (active, or disclosed and awaiting rotation). */
  has_current: number;
  /** 1 when that key is active (not waiting for rotation). */
  has_active: number;
}

export interface DisclosureRow {
  id: string;
  occurred_at: string;
  actor_type: string;
  actor_id: string | null;
  details: string;
  device_id: string;
  device_name: string;
  root_cause_class: string | null;
}

export type ReportsRepo = ReturnType<typeof createReportsRepo>;

export function createReportsRepo(db: Executor) {
  return {
    /** One row per volume of each live device in scope; a device without volumes gives one null row. */
    async volumeCoverage(organizationId: string, scope: AccessScope): Promise<VolumeCoverageRow[]> {
      const rows = await db
        .selectFrom('devices as d')
        .leftJoin('volumes as v', 'v.device_id', 'd.id')
        .select([
          'd.id as device_id',
          'v.id as volume_id',
          sql<number>`case when exists (select 1 from recovery_keys k where k.volume_id = v.id and k.status in ('active', 'rotation_pending')) then 1 else 0 end`.as(
            'has_current',
          ),
          sql<number>`case when exists (select 1 from recovery_keys k where k.volume_id = v.id and k.status = 'active') then 1 else 0 end`.as(
            'has_active',
          ),
        ])
        .where('d.organization_id', '=', organizationId)
        .where('d.deleted_at', 'is', null)
        .where(deviceInScope(scope, 'd.id', 'd.owner_user_id'))
        .execute();
      return rows.map((r) => ({
        ...r,
        has_current: Number(r.has_current),
        has_active: Number(r.has_active),
      }));
    },

    async deviceGroups(organizationId: string) {
      return db
        .selectFrom('device_groups')
        .select(['id', 'name'])
        .where('organization_id', '=', organizationId)
        .orderBy('name')
        .orderBy('id')
        .execute();
    },

    /** (group, device) pairs, directly or through the device's owner, as the access scope counts them. */
    async groupDevicePairs(organizationId: string): Promise<{ group_id: string; device_id: string }[]> {
      const direct = await db
        .selectFrom('device_group_members as m')
        .innerJoin('device_groups as g', 'g.id', 'm.device_group_id')
        .select(['m.device_group_id as group_id', 'm.device_id'])
        .where('g.organization_id', '=', organizationId)
        .execute();
      const viaOwner = await db
        .selectFrom('device_group_user_members as um')
        .innerJoin('device_groups as g', 'g.id', 'um.device_group_id')
        .innerJoin('devices as d', (j) =>
          j.onRef('d.owner_user_id', '=', 'um.user_id').on('d.organization_id', '=', organizationId),
        )
        .select(['um.device_group_id as group_id', 'd.id as device_id'])
        .where('g.organization_id', '=', organizationId)
        .execute();
      return [...direct, ...viaOwner];
    },

    /**
     * Successful disclosures from the audit log (the record of truth) in [from, to), of devices in
     * scope, with the root-cause class the helpdesk case recorded for that disclosure, if any.
     */
    async disclosures(
      organizationId: string,
      from: string,
      to: string,
      scope: AccessScope,
    ): Promise<DisclosureRow[]> {
      return db
        .selectFrom('audit_log as a')
        .innerJoin('recovery_keys as k', (j) =>
          j.onRef('k.id', '=', 'a.target_id').onRef('k.organization_id', '=', 'a.organization_id'),
        )
        .innerJoin('devices as d', 'd.id', 'k.device_id')
        .leftJoin('recovery_cases as c', 'c.disclosure_audit_id', 'a.id')
        .select([
          'a.id',
          'a.occurred_at',
          'a.actor_type',
          'a.actor_id',
          'a.details',
          'k.device_id',
          'd.name as device_name',
          'c.root_cause_class',
        ])
        .where('a.organization_id', '=', organizationId)
        .where('a.action', '=', 'recovery-key.disclosed')
        .where('a.outcome', '=', 'success')
        .where('a.target_type', '=', 'recovery-key')
        .where('a.occurred_at', '>=', from)
        .where('a.occurred_at', '<', to)
        .where(deviceInScope(scope, 'd.id', 'd.owner_user_id'))
        .orderBy('a.seq')
        .execute();
    },

    /** Root-cause classes of cases named in disclosure details (for disclosures the case did not link). */
    async caseRootCauses(organizationId: string, caseIds: string[]) {
      if (caseIds.length === 0) return [];
      return db
        .selectFrom('recovery_cases')
        .select(['id', 'root_cause_class'])
        .where('organization_id', '=', organizationId)
        .where('id', 'in', caseIds)
        .execute();
    },

    async actorNames(userIds: string[], tokenIds: string[]) {
      const users =
        userIds.length === 0
          ? []
          : await db
              .selectFrom('users')
              .select(['id', 'username as name'])
              .where('id', 'in', userIds)
              .execute();
      const tokens =
        tokenIds.length === 0
          ? []
          : await db.selectFrom('api_tokens').select(['id', 'name']).where('id', 'in', tokenIds).execute();
      return new Map([...users, ...tokens].map((r) => [r.id, r.name]));
    },

    /** Rotation requests made in [from, to) for devices in scope. */
    async rotations(organizationId: string, from: string, to: string, scope: AccessScope) {
      return db
        .selectFrom('rotation_requests as r')
        .innerJoin('devices as d', 'd.id', 'r.device_id')
        .select(['r.id', 'r.status', 'r.trigger', 'r.requested_at', 'r.due_at', 'r.completed_at'])
        .where('r.organization_id', '=', organizationId)
        .where('r.requested_at', '>=', from)
        .where('r.requested_at', '<', to)
        .where(deviceInScope(scope, 'd.id', 'd.owner_user_id'))
        .execute();
    },
  };
}
