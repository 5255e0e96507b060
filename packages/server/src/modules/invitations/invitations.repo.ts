/** Invitations to join an organization: stored offers that the invited account accepts or declines. */
import type { Executor } from '../../db/database.js';
import type { OrganizationInvitationsTable } from '../../db/schema.js';

export type InvitationRow = OrganizationInvitationsTable;

/** The column an answer sets: accepted and declined by the account, revoked by the organization. */
export type InvitationAnswer = 'accepted_at' | 'declined_at' | 'revoked_at';

export interface PendingInvitationRow extends InvitationRow {
  organization_name: string;
  /** The custom role's name (null for a built-in role, or a custom role deleted since). */
  custom_role_name: string | null;
  /** The inviting user's name (null when a token or the CLI invited). */
  invited_by_username: string | null;
}

export interface InvitationsRepo {
  insert(row: InvitationRow, trx?: Executor): Promise<void>;
  find(id: string, trx?: Executor): Promise<InvitationRow | undefined>;
  /** The organization's invitations, newest first (at most 500). */
  listOfOrganization(organizationId: string, trx?: Executor): Promise<InvitationRow[]>;
  /** A still-pending invitation of the organization for this user name, if any. */
  findPendingByUsername(
    organizationId: string,
    username: string,
    now: string,
    trx?: Executor,
  ): Promise<InvitationRow | undefined>;
  /** The account's pending invitations, oldest first, with what the account needs to decide. */
  pendingForUser(userId: string, now: string, trx?: Executor): Promise<PendingInvitationRow[]>;
  /**
   * Records an answer only on a pending invitation (none yet, not expired): compare-and-set, so of
   * an accept and a revoke racing, exactly one wins. Returns whether this one did.
   */
  answer(id: string, column: InvitationAnswer, at: string, trx?: Executor): Promise<boolean>;
  /** Names of the organization's device groups among `ids` (deleted ones are left out). */
  groupNames(
    organizationId: string,
    ids: readonly string[],
    trx?: Executor,
  ): Promise<{ id: string; name: string }[]>;
}

export function createInvitationsRepo(db: Executor): InvitationsRepo {
  return {
    async insert(row, trx = db) {
      await trx.insertInto('organization_invitations').values(row).execute();
    },
    async find(id, trx = db) {
      return trx.selectFrom('organization_invitations').selectAll().where('id', '=', id).executeTakeFirst();
    },
    async listOfOrganization(organizationId, trx = db) {
      return trx
        .selectFrom('organization_invitations')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .orderBy('created_at', 'desc')
        .orderBy('id')
        .limit(500)
        .execute();
    },
    async findPendingByUsername(organizationId, username, now, trx = db) {
      return trx
        .selectFrom('organization_invitations')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('username', '=', username)
        .where('accepted_at', 'is', null)
        .where('declined_at', 'is', null)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
    },
    async pendingForUser(userId, now, trx = db) {
      return trx
        .selectFrom('organization_invitations as i')
        .innerJoin('organizations as o', 'o.id', 'i.organization_id')
        .leftJoin('roles as r', (j) =>
          j.onRef('r.id', '=', 'i.role_id').onRef('r.organization_id', '=', 'i.organization_id'),
        )
        .leftJoin('users as u', (j) =>
          j.onRef('u.id', '=', 'i.invited_by_id').on('i.invited_by_type', '=', 'user'),
        )
        .selectAll('i')
        .select([
          'o.name as organization_name',
          'r.name as custom_role_name',
          'u.username as invited_by_username',
        ])
        .where('i.user_id', '=', userId)
        .where('i.accepted_at', 'is', null)
        .where('i.declined_at', 'is', null)
        .where('i.revoked_at', 'is', null)
        .where('i.expires_at', '>', now)
        .orderBy('i.created_at')
        .orderBy('i.id')
        .limit(100)
        .execute();
    },
    async answer(id, column, at, trx = db) {
      const result = await trx
        .updateTable('organization_invitations')
        .set({ [column]: at })
        .where('id', '=', id)
        .where('accepted_at', 'is', null)
        .where('declined_at', 'is', null)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', at)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async groupNames(organizationId, ids, trx = db) {
      if (ids.length === 0) return [];
      return trx
        .selectFrom('device_groups')
        .select(['id', 'name'])
        .where('organization_id', '=', organizationId)
        .where('id', 'in', [...ids])
        .orderBy('name')
        .execute();
    },
  };
}
