/**
 * Joining an organization takes the account's consent. Usernames are global and an account can
 * belong to several organizations (an MSP technician); an organization adds an existing account
 * only by inviting it, and the account accepts or declines. The inviting administrator gets the
 * same answer whether or not an account has that name, so the route enumerates nothing.
 */
import type { Transaction } from 'kysely';
import type { Db } from '../../db/database.js';
import type { Database } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { AccessAdminService } from '../access/access-admin.service.js';
import type { AccessRepo } from '../access/access.repo.js';
import { builtInRole } from '../access/roles.js';
import type { AuditActorType, AuditWriter } from '../audit/audit.service.js';
import type { OrganizationsRepo } from '../organizations/organizations.repo.js';
import type { InvitationRow, InvitationsRepo } from './invitations.repo.js';

/** How long an invitation can be accepted. */
export const INVITATION_TTL_DAYS = 7;

type Actor = { type: AuditActorType; id: string | null };

function statusOf(row: InvitationRow, now: string) {
  if (row.accepted_at !== null) return 'accepted' as const;
  if (row.declined_at !== null) return 'declined' as const;
  if (row.revoked_at !== null) return 'revoked' as const;
  return row.expires_at <= now ? ('expired' as const) : ('pending' as const);
}

const groupIdsOf = (row: InvitationRow) =>
  row.device_group_ids === null ? null : (JSON.parse(row.device_group_ids) as string[]);

/** The inviting organization's view; never says whether the user name belongs to an account. */
function toInvitation(row: InvitationRow, now: string) {
  return {
    id: row.id,
    username: row.username,
    roleId: row.role_id,
    deviceGroupIds: groupIdsOf(row),
    status: statusOf(row, now),
    invitedBy: { type: row.invited_by_type, id: row.invited_by_id },
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    answeredAt: row.accepted_at ?? row.declined_at ?? row.revoked_at,
  };
}

const NOT_PENDING: Record<Exclude<ReturnType<typeof statusOf>, 'pending'>, string> = {
  accepted: 'This invitation was already accepted',
  declined: 'This invitation was declined',
  revoked: 'The organization withdrew this invitation',
  expired: 'This invitation has expired; ask the organization for a new one',
};

export type InvitationsService = ReturnType<typeof createInvitationsService>;

export function createInvitationsService(deps: {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  auditWriter: AuditWriter;
  invitationsRepo: InvitationsRepo;
  accessRepo: Pick<AccessRepo, 'findUserByUsername' | 'isMember' | 'findRole' | 'findGroup'>;
  access: Pick<AccessAdminService, 'joinWithRole'>;
  organizationsRepo: Pick<OrganizationsRepo, 'findById'>;
}) {
  const { db, clock, ids, auditWriter, invitationsRepo, accessRepo, access, organizationsRepo } = deps;
  const now = () => clock.now().toISOString();

  async function audit(
    trx: Transaction<Database>,
    organizationId: string,
    actor: Actor,
    action: string,
    invitationId: string,
    details?: Record<string, string | number | boolean | null>,
    requestId?: string,
  ) {
    await auditWriter.append(
      {
        organizationId,
        actor,
        action,
        target: { type: 'invitation', id: invitationId },
        outcome: 'success',
        ...(details === undefined ? {} : { details }),
        ...(requestId === undefined ? {} : { requestId }),
      },
      trx,
    );
  }

  /** The invitation of this account, pending: anything else is a 404 (not yours) or a 409. */
  async function pendingOf(trx: Transaction<Database>, userId: string, invitationId: string) {
    const row = await invitationsRepo.find(invitationId, trx);
    // Another account's invitation is indistinguishable from none.
    if (!row || row.user_id === null || row.user_id !== userId) {
      throw new AppError('NOT_FOUND', 'No such invitation');
    }
    const status = statusOf(row, now());
    if (status !== 'pending') throw new AppError('CONFLICT', NOT_PENDING[status]);
    return row;
  }

  async function answer(
    trx: Transaction<Database>,
    row: InvitationRow,
    column: 'accepted_at' | 'declined_at',
  ) {
    if (!(await invitationsRepo.answer(row.id, column, now(), trx))) {
      const current = (await invitationsRepo.find(row.id, trx))!;
      const status = statusOf(current, now());
      throw new AppError('CONFLICT', status === 'pending' ? 'Try again' : NOT_PENDING[status]);
    }
  }

  return {
    /**
     * Records an invitation and answers with it, the same way whether or not an account has the
     * user name (an unknown name gets an invitation nobody can accept; it expires). Refused only
     * for what the organization knows already: its own members and its own pending invitations.
     */
    async invite(
      organizationId: string,
      input: { username: string; roleId: string; deviceGroupIds?: string[] | undefined },
      actor: Actor,
      requestId?: string,
    ) {
      const deviceGroupIds =
        input.deviceGroupIds === undefined ? null : [...new Set(input.deviceGroupIds)].sort();
      return db.transaction().execute(async (trx) => {
        if (!builtInRole(input.roleId) && !(await accessRepo.findRole(organizationId, input.roleId, trx))) {
          throw new AppError('NOT_FOUND', 'No such role');
        }
        for (const g of deviceGroupIds ?? []) {
          if (!(await accessRepo.findGroup(organizationId, g, trx))) {
            throw new AppError('NOT_FOUND', 'No such device group');
          }
        }
        const at = now();
        const user = await accessRepo.findUserByUsername(input.username, trx);
        // The same statements whether or not the name exists (no id matches the empty one).
        if ((await accessRepo.isMember(organizationId, user?.id ?? '', trx)) && user) {
          throw new AppError('CONFLICT', 'The user is already a member of this organization');
        }
        if (await invitationsRepo.findPendingByUsername(organizationId, input.username, at, trx)) {
          throw new AppError('CONFLICT', 'An invitation for this user name is pending; revoke it first');
        }
        const row: InvitationRow = {
          id: ids('invitation'),
          organization_id: organizationId,
          username: input.username,
          user_id: user?.id ?? null,
          role_id: input.roleId,
          device_group_ids: deviceGroupIds === null ? null : JSON.stringify(deviceGroupIds),
          invited_by_type: actor.type,
          invited_by_id: actor.id,
          created_at: at,
          expires_at: new Date(Date.parse(at) + INVITATION_TTL_DAYS * 86_400_000).toISOString(),
          accepted_at: null,
          declined_at: null,
          revoked_at: null,
        };
        await invitationsRepo.insert(row, trx);
        // The user name as typed, never the account it resolved to: the log is readable here too.
        await audit(
          trx,
          organizationId,
          actor,
          'invitation.created',
          row.id,
          {
            username: row.username,
            roleId: row.role_id,
            deviceGroupIds: deviceGroupIds === null ? null : deviceGroupIds.join(' '),
          },
          requestId,
        );
        return toInvitation(row, at);
      });
    },

    async list(organizationId: string) {
      const at = now();
      return (await invitationsRepo.listOfOrganization(organizationId)).map((r) => toInvitation(r, at));
    },

    async revoke(organizationId: string, invitationId: string, actor: Actor, requestId?: string) {
      await db.transaction().execute(async (trx) => {
        const row = await invitationsRepo.find(invitationId, trx);
        if (!row || row.organization_id !== organizationId) {
          throw new AppError('NOT_FOUND', 'No such invitation');
        }
        if (!(await invitationsRepo.answer(row.id, 'revoked_at', now(), trx))) {
          throw new AppError('CONFLICT', 'The invitation is no longer pending');
        }
        await audit(trx, organizationId, actor, 'invitation.revoked', row.id, undefined, requestId);
      });
    },

    /** The signed-in account's pending invitations, with what it needs to decide. */
    async mine(userId: string) {
      const rows = await invitationsRepo.pendingForUser(userId, now());
      const out = [];
      for (const r of rows) {
        const groupIds = groupIdsOf(r);
        const groups =
          groupIds === null ? null : await invitationsRepo.groupNames(r.organization_id, groupIds);
        out.push({
          id: r.id,
          organizationId: r.organization_id,
          organizationName: r.organization_name,
          roleId: r.role_id,
          roleName: builtInRole(r.role_id)?.name ?? r.custom_role_name ?? r.role_id,
          deviceGroupNames: groups === null ? null : groups.map((g) => g.name),
          invitedBy: r.invited_by_username,
          createdAt: r.created_at,
          expiresAt: r.expires_at,
        });
      }
      return out;
    },

    /**
     * The account joins: the answer, the membership and the role assignment in one transaction,
     * audited in the inviting organization. Device groups deleted since are left out (an assignment
     * scoped to none grants nothing: it never widens to the whole organization).
     */
    async accept(userId: string, invitationId: string, requestId?: string) {
      return db.transaction().execute(async (trx) => {
        const row = await pendingOf(trx, userId, invitationId);
        const organizationId = row.organization_id;
        if (!builtInRole(row.role_id) && !(await accessRepo.findRole(organizationId, row.role_id, trx))) {
          throw new AppError(
            'CONFLICT',
            'The role of this invitation no longer exists; ask the organization for a new invitation',
          );
        }
        const groupIds = groupIdsOf(row);
        const surviving =
          groupIds === null
            ? undefined
            : (await invitationsRepo.groupNames(organizationId, groupIds, trx)).map((g) => g.id).sort();
        await answer(trx, row, 'accepted_at');
        const actor = { type: 'user' as const, id: userId };
        await audit(trx, organizationId, actor, 'invitation.accepted', row.id, undefined, requestId);
        const roleAssignment = await access.joinWithRole(
          trx,
          organizationId,
          userId,
          { roleId: row.role_id, deviceGroupIds: surviving },
          actor,
          requestId,
        );
        const organization = await organizationsRepo.findById(organizationId, trx);
        return { organizationId, organizationName: organization?.name ?? '', roleAssignment };
      });
    },

    async decline(userId: string, invitationId: string, requestId?: string) {
      await db.transaction().execute(async (trx) => {
        const row = await pendingOf(trx, userId, invitationId);
        await answer(trx, row, 'declined_at');
        await audit(
          trx,
          row.organization_id,
          { type: 'user', id: userId },
          'invitation.declined',
          row.id,
          undefined,
          requestId,
        );
      });
    },
  };
}
