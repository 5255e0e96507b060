/** Roles, role assignments, device groups and their members, organization settings, suspensions, counters. */
import { sql, type Expression, type SqlBool } from 'kysely';
import type { Executor } from '../../db/database.js';
import type {
  AccountSuspensionsTable,
  DeviceGroupsTable,
  OrganizationSettingsTable,
  RoleAssignmentsTable,
  RolesTable,
  SessionsTable,
} from '../../db/schema.js';
import { accountHome } from '../identity/identity.repo.js';
import type { AccessScope } from './permissions.js';

export type RoleRow = RolesTable;
export type RoleAssignmentRow = RoleAssignmentsTable & { device_group_ids: string[] };
export type DeviceGroupRow = DeviceGroupsTable;
export type SettingsRow = OrganizationSettingsTable;
export type SuspensionRow = AccountSuspensionsTable;

/**
 * SQL for "this device is in scope": in at least one group of every constraint, directly or
 * through its owner being a user member. Evaluated at query time, so an owner change takes effect
 * at once. Plain subqueries: the same text runs on SQLite and PostgreSQL.
 */
export function deviceInScope(
  scope: AccessScope,
  deviceIdColumn: string,
  ownerColumn: string,
): Expression<SqlBool> {
  if (scope.kind === 'all') return sql<SqlBool>`1 = 1`;
  if (scope.kind === 'none') return sql<SqlBool>`1 = 0`;
  const parts = scope.constraints.map((groups) => {
    if (groups.length === 0) return sql<SqlBool>`1 = 0`;
    const list = sql.join(groups.map((g) => sql`${g}`));
    return sql<SqlBool>`(${sql.ref(deviceIdColumn)} in (select device_id from device_group_members where device_group_id in (${list})) or ${sql.ref(ownerColumn)} in (select user_id from device_group_user_members where device_group_id in (${list})))`;
  });
  return sql<SqlBool>`(${sql.join(parts, sql` and `)})`;
}

/**
 * SQL for "the device of this key is in the organization and in scope", with `deviceIdColumn` the
 * key's device column as the outer query names it. The authorization of every key route, and of
 * the statements that disclose a key. No scope (a caller that authorized the key itself): true.
 */
export function keyDeviceInScope(
  scope: AccessScope | undefined,
  organizationId: string,
  deviceIdColumn: string,
): Expression<SqlBool> {
  if (scope === undefined) return sql<SqlBool>`1 = 1`;
  return sql<SqlBool>`exists (select 1 from devices as d where d.id = ${sql.ref(deviceIdColumn)} and d.organization_id = ${organizationId} and ${deviceInScope(scope, 'd.id', 'd.owner_user_id')})`;
}

/**
 * `keyDeviceInScope` for a statement that serves several callers at once (group commit): each
 * distinct (organization, scope) becomes one condition, and each item picks its own by number
 * (`numberOf` when the items are built, then `condition` names the items' number column).
 */
export function perItemKeyScopes(deviceIdColumn: string) {
  const numbers = new Map<string, number>();
  const conditions: Expression<SqlBool>[] = [];
  return {
    numberOf(organizationId: string, scope: AccessScope | undefined): number {
      const key = JSON.stringify([organizationId, scope ?? null]);
      let no = numbers.get(key);
      if (no === undefined) {
        no = conditions.length;
        numbers.set(key, no);
        conditions.push(keyDeviceInScope(scope, organizationId, deviceIdColumn));
      }
      return no;
    },
    condition(scopeNoColumn: string): Expression<SqlBool> {
      if (conditions.length === 1) return conditions[0]!;
      return sql<SqlBool>`case ${sql.ref(scopeNoColumn)} ${sql.join(
        conditions.map((condition, no) => sql`when ${sql.lit(no)} then ${condition}`),
        sql` `,
      )} end`;
    },
  };
}

/** One fixed-window rate-limit counter: its bucket, the window it counts and when it can go. */
export interface CounterWindow {
  bucket: string;
  windowStart: string;
  expiresAt: string;
}

/** Code-unit order: the same on every server, whatever the database's collation. */
const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export interface MembershipSummaryRow {
  organization_id: string;
  organization_name: string;
  created_at: string;
}

export interface AccessRepo {
  // Roles
  listRoles(organizationId: string, trx?: Executor): Promise<RoleRow[]>;
  findRole(organizationId: string, id: string, trx?: Executor): Promise<RoleRow | undefined>;
  findRoleByName(organizationId: string, name: string, trx?: Executor): Promise<RoleRow | undefined>;
  insertRole(row: RoleRow, trx?: Executor): Promise<void>;
  updateRole(
    id: string,
    changes: Partial<Pick<RoleRow, 'name' | 'description' | 'permissions' | 'updated_at'>>,
    trx?: Executor,
  ): Promise<void>;
  deleteRole(id: string, trx?: Executor): Promise<void>;
  countAssignmentsOfRole(organizationId: string, roleId: string, trx?: Executor): Promise<number>;
  // Assignments
  listAssignments(organizationId: string, trx?: Executor): Promise<RoleAssignmentRow[]>;
  findAssignment(organizationId: string, id: string, trx?: Executor): Promise<RoleAssignmentRow | undefined>;
  /** A user's assignments, direct and through the external groups they last signed in with. */
  assignmentsOfUser(organizationId: string, userId: string, trx?: Executor): Promise<RoleAssignmentRow[]>;
  assignmentsOfExternalGroups(
    organizationId: string,
    groups: readonly string[],
    trx?: Executor,
  ): Promise<RoleAssignmentRow[]>;
  insertAssignment(
    row: RoleAssignmentsTable,
    deviceGroupIds: readonly string[],
    trx?: Executor,
  ): Promise<void>;
  deleteAssignment(id: string, trx?: Executor): Promise<void>;
  setUserExternalGroups(
    organizationId: string,
    userId: string,
    groups: readonly string[],
    trx?: Executor,
  ): Promise<void>;
  // Memberships
  /** An account by its (global) username, for inviting an existing user to another organization. */
  findUserByUsername(username: string, trx?: Executor): Promise<{ id: string; username: string } | undefined>;
  /** The organization that manages the account (its home); undefined for no such account. */
  accountHome(userId: string, trx?: Executor): Promise<string | null | undefined>;
  isMember(organizationId: string, userId: string, trx?: Executor): Promise<boolean>;
  membershipsOfUser(userId: string, trx?: Executor): Promise<MembershipSummaryRow[]>;
  insertMembership(
    row: { id: string; organization_id: string; user_id: string; created_at: string },
    trx?: Executor,
  ): Promise<void>;
  /**
   * Ends a membership and everything it held in the organization: role assignments, device-group
   * memberships, external groups, open sessions there and personal API tokens there. The account
   * and its other memberships stay. Returns false when there was no such membership.
   */
  deleteMembership(organizationId: string, userId: string, at: string, trx?: Executor): Promise<boolean>;
  /** Memberships still carrying pre-role permission grants (written by older code paths). */
  legacyMemberships(
    trx?: Executor,
  ): Promise<{ id: string; organization_id: string; user_id: string; permissions: string }[]>;
  clearLegacyPermissions(membershipId: string, trx?: Executor): Promise<void>;
  // Device groups
  listGroups(organizationId: string, trx?: Executor): Promise<DeviceGroupRow[]>;
  findGroup(organizationId: string, id: string, trx?: Executor): Promise<DeviceGroupRow | undefined>;
  findGroupByName(organizationId: string, name: string, trx?: Executor): Promise<DeviceGroupRow | undefined>;
  insertGroup(row: DeviceGroupRow, trx?: Executor): Promise<void>;
  renameGroup(id: string, name: string, trx?: Executor): Promise<void>;
  deleteGroup(id: string, trx?: Executor): Promise<void>;
  groupMembers(groupId: string, trx?: Executor): Promise<{ deviceIds: string[]; userIds: string[] }>;
  addDeviceMember(groupId: string, deviceId: string, trx?: Executor): Promise<void>;
  removeDeviceMember(groupId: string, deviceId: string, trx?: Executor): Promise<void>;
  addUserMember(groupId: string, userId: string, trx?: Executor): Promise<void>;
  removeUserMember(groupId: string, userId: string, trx?: Executor): Promise<void>;
  // Settings
  findSettings(organizationId: string, trx?: Executor): Promise<SettingsRow | undefined>;
  upsertSettings(row: SettingsRow, trx?: Executor): Promise<void>;
  // Suspensions
  activeSuspension(
    organizationId: string,
    subjectType: SuspensionRow['subject_type'],
    subjectId: string,
    trx?: Executor,
  ): Promise<SuspensionRow | undefined>;
  insertSuspension(row: SuspensionRow, trx?: Executor): Promise<void>;
  listSuspensions(organizationId: string, trx?: Executor): Promise<SuspensionRow[]>;
  liftSuspension(organizationId: string, id: string, at: string, trx?: Executor): Promise<boolean>;
  // Rate-limit counters
  /**
   * Adds one to each fixed-window counter and returns the new counts by bucket: one atomic upsert
   * (one round trip, one commit) for any number of distinct buckets.
   */
  incrementCounters(counters: readonly CounterWindow[], trx?: Executor): Promise<Map<string, number>>;
  /**
   * Adds `by` to each fixed-window counter and returns the new counts: one atomic upsert for any
   * number of distinct windows (at most one increment per window). The rows are written in
   * (bucket, window) order, so two such statements lock shared rows in one order and cannot
   * deadlock.
   */
  addToCounters(
    increments: readonly (CounterWindow & { by: number })[],
    trx?: Executor,
  ): Promise<{ bucket: string; windowStart: string; count: number }[]>;
  /** Takes back one count of a window (an attempt that turned out not to count there). */
  decrementCounter(bucket: string, windowStart: string, trx?: Executor): Promise<void>;
  pruneCounters(now: string, trx?: Executor): Promise<void>;
  // Sessions (switching organization)
  findSession(id: string, trx?: Executor): Promise<SessionsTable | undefined>;
  insertSession(row: SessionsTable, trx?: Executor): Promise<void>;
  revokeSession(id: string, at: string, trx?: Executor): Promise<void>;
}

async function withGroups(trx: Executor, rows: RoleAssignmentsTable[]): Promise<RoleAssignmentRow[]> {
  if (rows.length === 0) return [];
  const links = await trx
    .selectFrom('role_assignment_groups')
    .select(['role_assignment_id', 'device_group_id'])
    .where(
      'role_assignment_id',
      'in',
      rows.map((r) => r.id),
    )
    .orderBy('device_group_id')
    .execute();
  return rows.map((r) => ({
    ...r,
    device_group_ids: links.filter((l) => l.role_assignment_id === r.id).map((l) => l.device_group_id),
  }));
}

export function createAccessRepo(db: Executor): AccessRepo {
  const addToCounters: AccessRepo['addToCounters'] = async (increments, trx = db) => {
    if (increments.length === 0) return [];
    const ordered = [...increments].sort(
      (a, b) => byText(a.bucket, b.bucket) || byText(a.windowStart, b.windowStart),
    );
    const rows = await trx
      .insertInto('rate_limit_counters')
      .values(
        ordered.map((c) => ({
          bucket: c.bucket,
          window_start: c.windowStart,
          count: c.by,
          expires_at: c.expiresAt,
        })),
      )
      .onConflict((oc) =>
        oc.columns(['bucket', 'window_start']).doUpdateSet({
          count: (eb) => eb(eb.ref('rate_limit_counters.count'), '+', eb.ref('excluded.count')),
        }),
      )
      .returning(['bucket', 'window_start', 'count'])
      .execute();
    return rows.map((r) => ({ bucket: r.bucket, windowStart: r.window_start, count: Number(r.count) }));
  };

  return {
    async listRoles(organizationId, trx = db) {
      return trx
        .selectFrom('roles')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .orderBy('name')
        .execute();
    },
    async findRole(organizationId, id, trx = db) {
      return trx
        .selectFrom('roles')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .executeTakeFirst();
    },
    async findRoleByName(organizationId, name, trx = db) {
      return trx
        .selectFrom('roles')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('name', '=', name)
        .executeTakeFirst();
    },
    async insertRole(row, trx = db) {
      await trx.insertInto('roles').values(row).execute();
    },
    async updateRole(id, changes, trx = db) {
      await trx.updateTable('roles').set(changes).where('id', '=', id).execute();
    },
    async deleteRole(id, trx = db) {
      await trx.deleteFrom('roles').where('id', '=', id).execute();
    },
    async countAssignmentsOfRole(organizationId, roleId, trx = db) {
      const row = await trx
        .selectFrom('role_assignments')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('organization_id', '=', organizationId)
        .where('role_id', '=', roleId)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },

    async listAssignments(organizationId, trx = db) {
      const rows = await trx
        .selectFrom('role_assignments')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .orderBy('created_at')
        .orderBy('id')
        .execute();
      return withGroups(trx, rows);
    },
    async findAssignment(organizationId, id, trx = db) {
      const rows = await trx
        .selectFrom('role_assignments')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .execute();
      return (await withGroups(trx, rows))[0];
    },
    async assignmentsOfUser(organizationId, userId, trx = db) {
      const rows = await trx
        .selectFrom('role_assignments as a')
        .selectAll('a')
        .where('a.organization_id', '=', organizationId)
        .where((eb) =>
          eb.or([
            eb('a.user_id', '=', userId),
            eb(
              'a.external_group',
              'in',
              eb
                .selectFrom('user_external_groups as g')
                .select('g.external_group')
                .where('g.organization_id', '=', organizationId)
                .where('g.user_id', '=', userId),
            ),
          ]),
        )
        .execute();
      return withGroups(trx, rows);
    },
    async assignmentsOfExternalGroups(organizationId, groups, trx = db) {
      if (groups.length === 0) return [];
      const rows = await trx
        .selectFrom('role_assignments')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('external_group', 'in', [...groups])
        .execute();
      return withGroups(trx, rows);
    },
    async insertAssignment(row, deviceGroupIds, trx = db) {
      await trx.insertInto('role_assignments').values(row).execute();
      for (const groupId of new Set(deviceGroupIds)) {
        await trx
          .insertInto('role_assignment_groups')
          .values({ role_assignment_id: row.id, device_group_id: groupId })
          .execute();
      }
    },
    async deleteAssignment(id, trx = db) {
      await trx.deleteFrom('role_assignment_groups').where('role_assignment_id', '=', id).execute();
      await trx.deleteFrom('role_assignments').where('id', '=', id).execute();
    },
    async setUserExternalGroups(organizationId, userId, groups, trx = db) {
      await trx
        .deleteFrom('user_external_groups')
        .where('organization_id', '=', organizationId)
        .where('user_id', '=', userId)
        .execute();
      for (const group of new Set(groups)) {
        await trx
          .insertInto('user_external_groups')
          .values({ organization_id: organizationId, user_id: userId, external_group: group })
          .execute();
      }
    },

    async findUserByUsername(username, trx = db) {
      return trx
        .selectFrom('users')
        .select(['id', 'username'])
        .where('username', '=', username)
        .executeTakeFirst();
    },
    async accountHome(userId, trx = db) {
      const row = await trx
        .selectFrom('users as u')
        .select(accountHome('u.id').as('home'))
        .where('u.id', '=', userId)
        .executeTakeFirst();
      return row && row.home;
    },
    async isMember(organizationId, userId, trx = db) {
      const row = await trx
        .selectFrom('memberships')
        .select('id')
        .where('organization_id', '=', organizationId)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row !== undefined;
    },
    async membershipsOfUser(userId, trx = db) {
      return trx
        .selectFrom('memberships as m')
        .innerJoin('organizations as o', 'o.id', 'm.organization_id')
        .select(['m.organization_id', 'o.name as organization_name', 'm.created_at'])
        .where('m.user_id', '=', userId)
        .orderBy('m.created_at')
        .orderBy('m.organization_id')
        .execute();
    },
    async insertMembership(row, trx = db) {
      await trx
        .insertInto('memberships')
        .values({ ...row, permissions: '[]' })
        .execute();
    },
    async deleteMembership(organizationId, userId, at, trx = db) {
      const assignments = trx
        .selectFrom('role_assignments')
        .select('id')
        .where('organization_id', '=', organizationId)
        .where('user_id', '=', userId);
      await trx.deleteFrom('role_assignment_groups').where('role_assignment_id', 'in', assignments).execute();
      await trx
        .deleteFrom('role_assignments')
        .where('organization_id', '=', organizationId)
        .where('user_id', '=', userId)
        .execute();
      await trx
        .deleteFrom('device_group_user_members')
        .where('user_id', '=', userId)
        .where(
          'device_group_id',
          'in',
          trx.selectFrom('device_groups').select('id').where('organization_id', '=', organizationId),
        )
        .execute();
      await trx
        .deleteFrom('user_external_groups')
        .where('organization_id', '=', organizationId)
        .where('user_id', '=', userId)
        .execute();
      await trx
        .updateTable('sessions')
        .set({ revoked_at: at })
        .where('organization_id', '=', organizationId)
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .execute();
      await trx
        .updateTable('api_tokens')
        .set({ revoked_at: at })
        .where('organization_id', '=', organizationId)
        .where('created_by_user_id', '=', userId)
        .where('kind', '=', 'personal')
        .where('revoked_at', 'is', null)
        .execute();
      const result = await trx
        .deleteFrom('memberships')
        .where('organization_id', '=', organizationId)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },
    async legacyMemberships(trx = db) {
      return trx
        .selectFrom('memberships')
        .select(['id', 'organization_id', 'user_id', 'permissions'])
        .where('permissions', '!=', '[]')
        .execute();
    },
    async clearLegacyPermissions(membershipId, trx = db) {
      await trx
        .updateTable('memberships')
        .set({ permissions: '[]' })
        .where('id', '=', membershipId)
        .execute();
    },

    async listGroups(organizationId, trx = db) {
      return trx
        .selectFrom('device_groups')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .orderBy('name')
        .execute();
    },
    async findGroup(organizationId, id, trx = db) {
      return trx
        .selectFrom('device_groups')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .executeTakeFirst();
    },
    async findGroupByName(organizationId, name, trx = db) {
      return trx
        .selectFrom('device_groups')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('name', '=', name)
        .executeTakeFirst();
    },
    async insertGroup(row, trx = db) {
      await trx.insertInto('device_groups').values(row).execute();
    },
    async renameGroup(id, name, trx = db) {
      await trx.updateTable('device_groups').set({ name }).where('id', '=', id).execute();
    },
    async deleteGroup(id, trx = db) {
      // Scoped assignments lose this group (and grant less); they never widen to organization-wide.
      await trx.deleteFrom('role_assignment_groups').where('device_group_id', '=', id).execute();
      await trx.deleteFrom('device_group_members').where('device_group_id', '=', id).execute();
      await trx.deleteFrom('device_group_user_members').where('device_group_id', '=', id).execute();
      await trx
        .updateTable('enrollment_tokens')
        .set({ device_group_id: null })
        .where('device_group_id', '=', id)
        .execute();
      await trx.deleteFrom('device_groups').where('id', '=', id).execute();
    },
    async groupMembers(groupId, trx = db) {
      const [devices, users] = await Promise.all([
        trx
          .selectFrom('device_group_members')
          .select('device_id')
          .where('device_group_id', '=', groupId)
          .orderBy('device_id')
          .execute(),
        trx
          .selectFrom('device_group_user_members')
          .select('user_id')
          .where('device_group_id', '=', groupId)
          .orderBy('user_id')
          .execute(),
      ]);
      return { deviceIds: devices.map((d) => d.device_id), userIds: users.map((u) => u.user_id) };
    },
    async addDeviceMember(groupId, deviceId, trx = db) {
      await trx
        .insertInto('device_group_members')
        .values({ device_group_id: groupId, device_id: deviceId })
        .onConflict((oc) => oc.columns(['device_group_id', 'device_id']).doNothing())
        .execute();
    },
    async removeDeviceMember(groupId, deviceId, trx = db) {
      await trx
        .deleteFrom('device_group_members')
        .where('device_group_id', '=', groupId)
        .where('device_id', '=', deviceId)
        .execute();
    },
    async addUserMember(groupId, userId, trx = db) {
      await trx
        .insertInto('device_group_user_members')
        .values({ device_group_id: groupId, user_id: userId })
        .onConflict((oc) => oc.columns(['device_group_id', 'user_id']).doNothing())
        .execute();
    },
    async removeUserMember(groupId, userId, trx = db) {
      await trx
        .deleteFrom('device_group_user_members')
        .where('device_group_id', '=', groupId)
        .where('user_id', '=', userId)
        .execute();
    },

    async findSettings(organizationId, trx = db) {
      return trx
        .selectFrom('organization_settings')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .executeTakeFirst();
    },
    async upsertSettings(row, trx = db) {
      const { organization_id: _id, ...changes } = row;
      await trx
        .insertInto('organization_settings')
        .values(row)
        .onConflict((oc) => oc.column('organization_id').doUpdateSet(changes))
        .execute();
    },

    async activeSuspension(organizationId, subjectType, subjectId, trx = db) {
      return trx
        .selectFrom('account_suspensions')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('subject_type', '=', subjectType)
        .where('subject_id', '=', subjectId)
        .where('lifted_at', 'is', null)
        .executeTakeFirst();
    },
    async insertSuspension(row, trx = db) {
      await trx.insertInto('account_suspensions').values(row).execute();
    },
    async listSuspensions(organizationId, trx = db) {
      return trx
        .selectFrom('account_suspensions')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(500)
        .execute();
    },
    async liftSuspension(organizationId, id, at, trx = db) {
      const result = await trx
        .updateTable('account_suspensions')
        .set({ lifted_at: at })
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .where('lifted_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async incrementCounters(counters, trx = db) {
      const rows = await addToCounters(
        counters.map((c) => ({ ...c, by: 1 })),
        trx,
      );
      return new Map(rows.map((r) => [r.bucket, r.count]));
    },
    addToCounters,
    async decrementCounter(bucket, windowStart, trx = db) {
      await trx
        .updateTable('rate_limit_counters')
        .set((eb) => ({ count: eb(eb.ref('count'), '-', 1) }))
        .where('bucket', '=', bucket)
        .where('window_start', '=', windowStart)
        .where('count', '>', 0)
        .execute();
    },
    async pruneCounters(now, trx = db) {
      await trx.deleteFrom('rate_limit_counters').where('expires_at', '<', now).execute();
    },

    async findSession(id, trx = db) {
      return trx.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst();
    },
    async insertSession(row, trx = db) {
      await trx.insertInto('sessions').values(row).execute();
    },
    async revokeSession(id, at, trx = db) {
      await trx.updateTable('sessions').set({ revoked_at: at }).where('id', '=', id).execute();
    },
  };
}
