/**
 * Administering access in one organization: custom roles, role assignments (users and external
 * groups, organization-wide or scoped to device groups), device groups and their members,
 * organization settings, suspensions; and the caller's own organizations.
 */
import type { Transaction } from 'kysely';
import type { Db, Executor } from '../../db/database.js';
import type { Database } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { IdGenerator } from '../../lib/ids.js';
import { issueToken } from '../../lib/tokens.js';
import type { RandomSource } from '../../lib/random.js';
import type { AuditActorType, AuditWriter } from '../audit/audit.service.js';
import type { AccessRepo, RoleAssignmentRow, RoleRow, SuspensionRow } from './access.repo.js';
import type { RightsResolver } from './access.service.js';
import { toSettings, type OrganizationSettings } from './disclosure-guard.js';
import { effectivePermissions } from './permissions.js';
import { BUILT_IN_ROLES, builtInRole } from './roles.js';

type Actor = { type: AuditActorType; id: string | null };

export interface AssignmentInput {
  roleId: string;
  userId?: string | undefined;
  externalGroup?: string | undefined;
  deviceGroupIds?: string[] | undefined;
}

/** External group names compare case-insensitively (directories and IdPs disagree on case). */
export const normalizeExternalGroup = (name: string) => name.trim().toLowerCase();

function toRole(row: RoleRow) {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    permissions: JSON.parse(row.permissions) as string[],
    builtIn: false,
  };
}

function toAssignment(row: RoleAssignmentRow) {
  return {
    id: row.id,
    roleId: row.role_id,
    userId: row.user_id,
    externalGroup: row.external_group,
    deviceGroupIds: row.scope === 'organization' ? null : row.device_group_ids,
    createdAt: row.created_at,
  };
}

function toSuspension(row: SuspensionRow) {
  return {
    id: row.id,
    subjectType: row.subject_type,
    subjectId: row.subject_id,
    reason: row.reason,
    createdAt: row.created_at,
    liftedAt: row.lifted_at,
  };
}

export type AccessAdminService = ReturnType<typeof createAccessAdminService>;

export function createAccessAdminService(deps: {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  random: RandomSource;
  auditWriter: AuditWriter;
  accessRepo: AccessRepo;
  rights: Pick<RightsResolver, 'userLayer' | 'grantsOf'>;
}) {
  const { db, clock, ids, random, auditWriter, accessRepo, rights } = deps;
  const now = () => clock.now().toISOString();

  async function audit(
    trx: Transaction<Database>,
    organizationId: string,
    actor: Actor,
    action: string,
    target: { type: string; id: string },
    details?: Record<string, string | number | boolean | null>,
    requestId?: string,
  ) {
    await auditWriter.append(
      {
        organizationId,
        actor,
        action,
        target,
        outcome: 'success',
        ...(details === undefined ? {} : { details }),
        ...(requestId === undefined ? {} : { requestId }),
      },
      trx,
    );
  }

  async function requireRole(organizationId: string, roleId: string, trx?: Executor) {
    if (builtInRole(roleId)) return;
    if (!(await accessRepo.findRole(organizationId, roleId, trx)))
      throw new AppError('NOT_FOUND', 'No such role');
  }

  async function requireGroup(organizationId: string, groupId: string, trx?: Executor) {
    const group = await accessRepo.findGroup(organizationId, groupId, trx);
    if (!group) throw new AppError('NOT_FOUND', 'No such device group');
    return group;
  }

  async function writeAssignment(
    trx: Transaction<Database>,
    organizationId: string,
    input: AssignmentInput,
    actor: Actor,
    requestId?: string,
  ) {
    const deviceGroupIds =
      input.deviceGroupIds === undefined ? undefined : [...new Set(input.deviceGroupIds)].sort();
    const row = {
      id: ids('roleAssignment'),
      organization_id: organizationId,
      role_id: input.roleId,
      user_id: input.userId ?? null,
      external_group: input.externalGroup === undefined ? null : normalizeExternalGroup(input.externalGroup),
      scope: deviceGroupIds === undefined ? ('organization' as const) : ('device-groups' as const),
      created_at: now(),
    };
    await requireRole(organizationId, input.roleId, trx);
    if (input.userId !== undefined && !(await accessRepo.isMember(organizationId, input.userId, trx))) {
      throw new AppError('NOT_FOUND', 'No such user in this organization');
    }
    for (const g of deviceGroupIds ?? []) await requireGroup(organizationId, g, trx);
    await accessRepo.insertAssignment(row, deviceGroupIds ?? [], trx);
    await audit(
      trx,
      organizationId,
      actor,
      'role-assignment.created',
      { type: 'role-assignment', id: row.id },
      {
        roleId: row.role_id,
        userId: row.user_id,
        externalGroup: row.external_group,
        deviceGroupIds: deviceGroupIds === undefined ? null : deviceGroupIds.join(' '),
      },
      requestId,
    );
    return toAssignment({ ...row, device_group_ids: deviceGroupIds ?? [] });
  }

  return {
    async listRoles(organizationId: string) {
      const custom = await accessRepo.listRoles(organizationId);
      return [
        ...BUILT_IN_ROLES.map((r) => ({ ...r, permissions: [...r.permissions], builtIn: true })),
        ...custom.map(toRole),
      ];
    },

    async createRole(
      organizationId: string,
      input: { name: string; description: string; permissions: string[] },
      actor: Actor,
      requestId?: string,
    ) {
      const at = now();
      const row: RoleRow = {
        id: ids('role'),
        organization_id: organizationId,
        name: input.name,
        description: input.description,
        permissions: JSON.stringify([...new Set(input.permissions)].sort()),
        created_at: at,
        updated_at: at,
      };
      await db.transaction().execute(async (trx) => {
        if (
          BUILT_IN_ROLES.some((r) => r.name.toLowerCase() === input.name.toLowerCase()) ||
          (await accessRepo.findRoleByName(organizationId, input.name, trx))
        ) {
          throw new AppError('CONFLICT', 'A role with that name exists');
        }
        await accessRepo.insertRole(row, trx);
        await audit(
          trx,
          organizationId,
          actor,
          'role.created',
          { type: 'role', id: row.id },
          {
            name: row.name,
            permissions: JSON.parse(row.permissions).join(' '),
          },
          requestId,
        );
      });
      return toRole(row);
    },

    async updateRole(
      organizationId: string,
      roleId: string,
      input: {
        name?: string | undefined;
        description?: string | undefined;
        permissions?: string[] | undefined;
      },
      actor: Actor,
      requestId?: string,
    ) {
      return db.transaction().execute(async (trx) => {
        const existing = await accessRepo.findRole(organizationId, roleId, trx);
        if (!existing) throw new AppError('NOT_FOUND', 'No such role');
        if (input.name !== undefined && input.name !== existing.name) {
          const clash = await accessRepo.findRoleByName(organizationId, input.name, trx);
          if (clash || BUILT_IN_ROLES.some((r) => r.name.toLowerCase() === input.name!.toLowerCase())) {
            throw new AppError('CONFLICT', 'A role with that name exists');
          }
        }
        const changes = {
          ...(input.name === undefined ? {} : { name: input.name }),
          ...(input.description === undefined ? {} : { description: input.description }),
          ...(input.permissions === undefined
            ? {}
            : { permissions: JSON.stringify([...new Set(input.permissions)].sort()) }),
          updated_at: now(),
        };
        await accessRepo.updateRole(roleId, changes, trx);
        await audit(
          trx,
          organizationId,
          actor,
          'role.updated',
          { type: 'role', id: roleId },
          {
            permissions: changes.permissions === undefined ? null : JSON.parse(changes.permissions).join(' '),
          },
          requestId,
        );
        return toRole({ ...existing, ...changes });
      });
    },

    async deleteRole(organizationId: string, roleId: string, actor: Actor, requestId?: string) {
      await db.transaction().execute(async (trx) => {
        if (!(await accessRepo.findRole(organizationId, roleId, trx)))
          throw new AppError('NOT_FOUND', 'No such role');
        if ((await accessRepo.countAssignmentsOfRole(organizationId, roleId, trx)) > 0) {
          throw new AppError('CONFLICT', 'The role is still assigned; remove its assignments first');
        }
        await accessRepo.deleteRole(roleId, trx);
        await audit(
          trx,
          organizationId,
          actor,
          'role.deleted',
          { type: 'role', id: roleId },
          undefined,
          requestId,
        );
      });
    },

    async listAssignments(organizationId: string) {
      return (await accessRepo.listAssignments(organizationId)).map(toAssignment);
    },

    async createAssignment(organizationId: string, input: AssignmentInput, actor: Actor, requestId?: string) {
      return db.transaction().execute((trx) => writeAssignment(trx, organizationId, input, actor, requestId));
    },

    /**
     * An account joins the organization with one role assignment, inside the caller's transaction
     * (accepting an invitation): a membership without a role would be a person who can sign in here
     * and do nothing. The account's consent is the caller's business (invitations.service).
     */
    async joinWithRole(
      trx: Transaction<Database>,
      organizationId: string,
      userId: string,
      assignment: { roleId: string; deviceGroupIds?: string[] | undefined },
      actor: Actor,
      requestId?: string,
    ) {
      if (await accessRepo.isMember(organizationId, userId, trx)) {
        throw new AppError('CONFLICT', 'You are already a member of this organization');
      }
      await accessRepo.insertMembership(
        { id: ids('membership'), organization_id: organizationId, user_id: userId, created_at: now() },
        trx,
      );
      await audit(
        trx,
        organizationId,
        actor,
        'membership.created',
        { type: 'user', id: userId },
        undefined,
        requestId,
      );
      return writeAssignment(
        trx,
        organizationId,
        { roleId: assignment.roleId, userId, deviceGroupIds: assignment.deviceGroupIds },
        actor,
        requestId,
      );
    },

    /**
     * Ends a member's membership here (their roles, device-group memberships, sessions and personal
     * tokens here); their account and other memberships stay. The account's home organization
     * disables the account instead: it is the one that manages it.
     */
    async removeFromOrganization(organizationId: string, userId: string, actor: Actor, requestId?: string) {
      await db.transaction().execute(async (trx) => {
        if (!(await accessRepo.isMember(organizationId, userId, trx))) {
          throw new AppError('NOT_FOUND', 'No such user in this organization');
        }
        if (actor.type === 'user' && actor.id === userId) {
          throw new AppError('CONFLICT', 'You cannot remove yourself from the organization');
        }
        if ((await accessRepo.accountHome(userId, trx)) === organizationId) {
          throw new AppError(
            'CONFLICT',
            'This organization manages the account: disable the account instead of removing it',
          );
        }
        await accessRepo.deleteMembership(organizationId, userId, now(), trx);
        await audit(
          trx,
          organizationId,
          actor,
          'membership.removed',
          { type: 'user', id: userId },
          undefined,
          requestId,
        );
      });
    },

    /** Suspends a member in this organization only (any organization the account belongs to may). */
    async suspendMember(
      organizationId: string,
      userId: string,
      reason: string,
      actor: Actor,
      requestId?: string,
    ) {
      return db.transaction().execute(async (trx) => {
        if (!(await accessRepo.isMember(organizationId, userId, trx))) {
          throw new AppError('NOT_FOUND', 'No such user in this organization');
        }
        if (actor.type === 'user' && actor.id === userId) {
          throw new AppError('CONFLICT', 'You cannot suspend yourself');
        }
        if (await accessRepo.activeSuspension(organizationId, 'user', userId, trx)) {
          throw new AppError('CONFLICT', 'The user is already suspended in this organization');
        }
        const row: SuspensionRow = {
          id: ids('suspension'),
          organization_id: organizationId,
          subject_type: 'user',
          subject_id: userId,
          reason,
          created_at: now(),
          lifted_at: null,
        };
        await accessRepo.insertSuspension(row, trx);
        await audit(
          trx,
          organizationId,
          actor,
          'account.suspended',
          { type: 'user', id: userId },
          { suspensionId: row.id, reason },
          requestId,
        );
        return toSuspension(row);
      });
    },

    async deleteAssignment(organizationId: string, id: string, actor: Actor, requestId?: string) {
      await db.transaction().execute(async (trx) => {
        if (!(await accessRepo.findAssignment(organizationId, id, trx))) {
          throw new AppError('NOT_FOUND', 'No such role assignment');
        }
        await accessRepo.deleteAssignment(id, trx);
        await audit(
          trx,
          organizationId,
          actor,
          'role-assignment.deleted',
          { type: 'role-assignment', id },
          undefined,
          requestId,
        );
      });
    },

    /** The roles (with their scopes) that these external groups map to in the organization. */
    async rolesForExternalGroups(organizationId: string, groups: readonly string[], trx?: Executor) {
      const rows = await accessRepo.assignmentsOfExternalGroups(
        organizationId,
        groups.map(normalizeExternalGroup),
        trx,
      );
      return rows.map(toAssignment);
    },

    /** Records the groups a user signed in with; their mapped roles apply from the next request on. */
    async setExternalGroups(
      organizationId: string,
      userId: string,
      groups: readonly string[],
      trx?: Executor,
    ) {
      await accessRepo.setUserExternalGroups(organizationId, userId, groups.map(normalizeExternalGroup), trx);
    },

    /** The permissions a user can use somewhere in the organization (e.g. for an MFA policy). */
    async permissionsOf(organizationId: string, userId: string, trx?: Executor) {
      const layer = await rights.userLayer(organizationId, userId, trx);
      return layer ? effectivePermissions([layer]) : [];
    },

    async listGroups(organizationId: string) {
      return (await accessRepo.listGroups(organizationId)).map((g) => ({
        id: g.id,
        name: g.name,
        createdAt: g.created_at,
      }));
    },

    async createGroup(organizationId: string, name: string, actor: Actor, requestId?: string) {
      const row = { id: ids('deviceGroup'), organization_id: organizationId, name, created_at: now() };
      await db.transaction().execute(async (trx) => {
        if (await accessRepo.findGroupByName(organizationId, name, trx)) {
          throw new AppError('CONFLICT', 'A device group with that name exists');
        }
        await accessRepo.insertGroup(row, trx);
        await audit(
          trx,
          organizationId,
          actor,
          'device-group.created',
          { type: 'device-group', id: row.id },
          { name },
          requestId,
        );
      });
      return { id: row.id, name: row.name, createdAt: row.created_at };
    },

    async renameGroup(organizationId: string, id: string, name: string, actor: Actor, requestId?: string) {
      return db.transaction().execute(async (trx) => {
        const group = await requireGroup(organizationId, id, trx);
        const clash = await accessRepo.findGroupByName(organizationId, name, trx);
        if (clash && clash.id !== id) throw new AppError('CONFLICT', 'A device group with that name exists');
        await accessRepo.renameGroup(id, name, trx);
        await audit(
          trx,
          organizationId,
          actor,
          'device-group.renamed',
          { type: 'device-group', id },
          { name },
          requestId,
        );
        return { id, name, createdAt: group.created_at };
      });
    },

    async deleteGroup(organizationId: string, id: string, actor: Actor, requestId?: string) {
      await db.transaction().execute(async (trx) => {
        await requireGroup(organizationId, id, trx);
        await accessRepo.deleteGroup(id, trx);
        await audit(
          trx,
          organizationId,
          actor,
          'device-group.deleted',
          { type: 'device-group', id },
          undefined,
          requestId,
        );
      });
    },

    async groupMembers(organizationId: string, id: string) {
      await requireGroup(organizationId, id);
      return accessRepo.groupMembers(id);
    },

    /** Devices join directly; users join so that the devices they own are in the group. */
    async addMembers(
      organizationId: string,
      id: string,
      members: { deviceIds: string[]; userIds: string[] },
      actor: Actor,
      requestId?: string,
    ) {
      await db.transaction().execute(async (trx) => {
        await requireGroup(organizationId, id, trx);
        for (const deviceId of members.deviceIds) {
          const device = await trx
            .selectFrom('devices')
            .select('id')
            .where('organization_id', '=', organizationId)
            .where('id', '=', deviceId)
            .executeTakeFirst();
          if (!device) throw new AppError('DEVICE_NOT_FOUND', 'No such device');
          await accessRepo.addDeviceMember(id, deviceId, trx);
        }
        for (const userId of members.userIds) {
          if (!(await accessRepo.isMember(organizationId, userId, trx))) {
            throw new AppError('NOT_FOUND', 'No such user in this organization');
          }
          await accessRepo.addUserMember(id, userId, trx);
        }
        await audit(
          trx,
          organizationId,
          actor,
          'device-group.members-added',
          { type: 'device-group', id },
          {
            deviceIds: members.deviceIds.join(' '),
            userIds: members.userIds.join(' '),
          },
          requestId,
        );
      });
      return accessRepo.groupMembers(id);
    },

    async removeMember(
      organizationId: string,
      id: string,
      member: { deviceId: string } | { userId: string },
      actor: Actor,
      requestId?: string,
    ) {
      await db.transaction().execute(async (trx) => {
        await requireGroup(organizationId, id, trx);
        if ('deviceId' in member) await accessRepo.removeDeviceMember(id, member.deviceId, trx);
        else await accessRepo.removeUserMember(id, member.userId, trx);
        await audit(
          trx,
          organizationId,
          actor,
          'device-group.member-removed',
          { type: 'device-group', id },
          {
            member: 'deviceId' in member ? member.deviceId : member.userId,
          },
          requestId,
        );
      });
    },

    async getSettings(organizationId: string): Promise<OrganizationSettings> {
      return toSettings(await accessRepo.findSettings(organizationId));
    },

    async updateSettings(
      organizationId: string,
      changes: Partial<OrganizationSettings>,
      actor: Actor,
      requestId?: string,
    ): Promise<OrganizationSettings> {
      return db.transaction().execute(async (trx) => {
        const current = toSettings(await accessRepo.findSettings(organizationId, trx));
        const next = {
          ...current,
          ...Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)),
        };
        await accessRepo.upsertSettings(
          {
            organization_id: organizationId,
            restrict_owner_key_recovery: next.restrictOwnerKeyRecovery ? 1 : 0,
            disclosure_alert_threshold: next.disclosureAlertThreshold,
            disclosure_alert_window_minutes: next.disclosureAlertWindowMinutes,
            suspend_on_disclosure_alert: next.suspendOnDisclosureAlert ? 1 : 0,
            self_service_contact_text: next.selfServiceContactText,
            self_service_contact_link: next.selfServiceContactLink,
            updated_at: now(),
          },
          trx,
        );
        await audit(
          trx,
          organizationId,
          actor,
          'organization.settings-changed',
          { type: 'organization', id: organizationId },
          {
            restrictOwnerKeyRecovery: next.restrictOwnerKeyRecovery,
            disclosureAlertThreshold: next.disclosureAlertThreshold,
            disclosureAlertWindowMinutes: next.disclosureAlertWindowMinutes,
            suspendOnDisclosureAlert: next.suspendOnDisclosureAlert,
            selfServiceContactText: next.selfServiceContactText,
            selfServiceContactLink: next.selfServiceContactLink,
          },
          requestId,
        );
        return next;
      });
    },

    async listSuspensions(organizationId: string) {
      return (await accessRepo.listSuspensions(organizationId)).map(toSuspension);
    },

    async liftSuspension(organizationId: string, id: string, actor: Actor, requestId?: string) {
      await db.transaction().execute(async (trx) => {
        if (!(await accessRepo.liftSuspension(organizationId, id, now(), trx))) {
          throw new AppError('NOT_FOUND', 'No such active suspension');
        }
        await audit(
          trx,
          organizationId,
          actor,
          'account.suspension-lifted',
          { type: 'account-suspension', id },
          undefined,
          requestId,
        );
      });
    },

    /** The organizations a user belongs to, with the roles held directly in each. */
    async myOrganizations(userId: string, currentOrganizationId: string) {
      const memberships = await accessRepo.membershipsOfUser(userId);
      const out = [];
      for (const m of memberships) {
        const assignments = await accessRepo.assignmentsOfUser(m.organization_id, userId);
        out.push({
          organizationId: m.organization_id,
          name: m.organization_name,
          current: m.organization_id === currentOrganizationId,
          roleIds: [...new Set(assignments.map((a) => a.role_id))].sort(),
        });
      }
      return out;
    },

    /**
     * A new session in another organization the user belongs to, replacing the current one. It
     * copies every other column of the current session (sign-in method, MFA state, absolute expiry),
     * so switching never extends a session or skips a step identity still requires.
     */
    async switchOrganization(userId: string, sessionId: string, organizationId: string, requestId?: string) {
      if (!(await accessRepo.isMember(organizationId, userId))) {
        throw new AppError('NOT_FOUND', 'No such organization');
      }
      const issued = issueToken('session', random);
      const newSessionId = ids('session');
      const at = now();
      const session = await db.transaction().execute(async (trx) => {
        const current = await accessRepo.findSession(sessionId, trx);
        if (!current || current.user_id !== userId || current.revoked_at !== null) {
          throw new AppError('UNAUTHENTICATED', 'Sign in again');
        }
        const next = {
          ...current,
          id: newSessionId,
          token_hash: issued.hash,
          organization_id: organizationId,
          // Still the same sign-in: when it happened decides what needs a recent one (mfa.service).
          created_at: current.created_at,
          last_seen_at: at,
          revoked_at: null,
        };
        await accessRepo.insertSession(next, trx);
        await accessRepo.revokeSession(sessionId, at, trx);
        await audit(
          trx,
          organizationId,
          { type: 'user', id: userId },
          'session.organization-switched',
          {
            type: 'session',
            id: newSessionId,
          },
          { fromOrganizationId: current.organization_id, fromSessionId: sessionId },
          requestId,
        );
        return next;
      });
      return { sessionToken: issued.token, organizationId, expiresAt: session.expires_at };
    },
  };
}
