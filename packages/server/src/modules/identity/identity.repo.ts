/** Users, their organization memberships, sign-in sessions, sign-in throttling and external identities. */
import { sql, type RawBuilder } from 'kysely';
import type { Executor } from '../../db/database.js';
import type {
  ExternalIdentitiesTable,
  MembershipsTable,
  SessionsTable,
  SessionState,
  SignInAttemptsTable,
  UsersTable,
} from '../../db/schema.js';

export interface LiveSession {
  id: string;
  userId: string;
  organizationId: string;
  permissions: string[];
  mustChangePassword: boolean;
  /** The organization's "MFA for everyone who can disclose keys" policy, as it is now. */
  requireMfa: boolean;
  /** A confirmed TOTP or a passkey: a session of such a user has passed MFA (or enrolled in it). */
  hasSecondFactor: boolean;
}

/**
 * The organization that manages the account whose id is in `userIdColumn`: its home, or, on a row
 * an older writer made without one, the organization of its earliest membership (the rule migration
 * 0012 backfilled with). One correlated subquery, the same text on SQLite and PostgreSQL.
 */
export function accountHome(userIdColumn: string): RawBuilder<string | null> {
  const id = sql.ref(userIdColumn);
  return sql<string | null>`coalesce(
    (select hu.home_organization_id from users hu where hu.id = ${id}),
    (select hm.organization_id from memberships hm where hm.user_id = ${id}
      order by hm.created_at, hm.id limit 1))`;
}

/**
 * Whether the user (a column reference or a bound id) has a second factor: a confirmed TOTP or a
 * passkey. Correlated EXISTS, the same text on SQLite (answers 0/1) and PostgreSQL (a boolean).
 */
function hasSecondFactorSql(user: RawBuilder<unknown> | string): RawBuilder<boolean | number> {
  return sql<boolean | number>`(exists (select 1 from totp_credentials tc
      where tc.user_id = ${user} and tc.confirmed_at is not null)
    or exists (select 1 from webauthn_credentials wc where wc.user_id = ${user}))`;
}

const isTrue = (value: boolean | number | string | null | undefined) => value === true || Number(value) === 1;

export interface UserListRow {
  id: string;
  username: string;
  display_name: string;
  auth_source: UsersTable['auth_source'];
  email?: string | null;
  must_change_password: number;
  disabled_at: string | null;
  created_at: string;
  permissions: string;
  /** The organization that manages the account (see accountHome). */
  home_organization_id: string | null;
}

/** Sessions end after this much inactivity unless the repository is told otherwise (config). */
export const DEFAULT_SESSION_IDLE_MINUTES = 30;

export interface IdentityRepo {
  insertUser(row: UsersTable, trx?: Executor): Promise<void>;
  insertMembership(row: MembershipsTable, trx?: Executor): Promise<void>;
  findUserByUsername(username: string, trx?: Executor): Promise<UsersTable | undefined>;
  findUserById(id: string, trx?: Executor): Promise<UsersTable | undefined>;
  /** The organization that manages the account (see accountHome); undefined for no such account. */
  findAccountHome(userId: string, trx?: Executor): Promise<string | null | undefined>;
  /** The user's first membership (one organization per user until issue 4 adds switching). */
  findMembership(userId: string, trx?: Executor): Promise<MembershipsTable | undefined>;
  findMembershipIn(
    userId: string,
    organizationId: string,
    trx?: Executor,
  ): Promise<MembershipsTable | undefined>;
  setMembershipPermissions(
    userId: string,
    organizationId: string,
    permissions: string,
    trx?: Executor,
  ): Promise<void>;
  listUsers(organizationId: string, trx?: Executor): Promise<UserListRow[]>;
  setPassword(
    userId: string,
    passwordHash: string,
    at: string,
    trx?: Executor,
    mustChangePassword?: boolean,
  ): Promise<void>;
  setDisabled(userId: string, disabledAt: string | null, at: string, trx?: Executor): Promise<void>;
  updateProfile(
    userId: string,
    changes: { display_name?: string; email?: string | null },
    at: string,
    trx?: Executor,
  ): Promise<void>;
  insertSession(row: SessionsTable, trx?: Executor): Promise<void>;
  /** An active session (MFA done), neither revoked, nor past its absolute or idle limit. */
  findLiveSessionByHash(tokenHash: string, now: string, trx?: Executor): Promise<LiveSession | undefined>;
  /** A session in one of `states`, with the same expiry rules; for the MFA steps. */
  findSessionInState(
    tokenHash: string,
    now: string,
    states: readonly SessionState[],
    trx?: Executor,
  ): Promise<SessionsTable | undefined>;
  /** Moves a session to another state under a new token (the old token stops working). */
  promoteSession(
    id: string,
    change: { state: SessionState; tokenHash: string; expiresAt: string; at: string },
    trx?: Executor,
  ): Promise<void>;
  /** The organization's MFA policy and whether the user has a second factor, in one statement. */
  findMfaStanding(
    userId: string,
    organizationId: string,
    trx?: Executor,
  ): Promise<{ requireMfa: boolean; hasSecondFactor: boolean }>;
  /** Sends an active session back to a step it now owes (e.g. MFA enrolment); false if not active. */
  demoteSession(
    id: string,
    change: { state: Exclude<SessionState, 'active'>; expiresBy: string },
    trx?: Executor,
  ): Promise<boolean>;
  touchSession(id: string, at: string, trx?: Executor): Promise<void>;
  revokeSession(id: string, at: string, trx?: Executor): Promise<void>;
  /** Revokes every open session of the user; returns how many. */
  revokeUserSessions(userId: string, at: string, trx?: Executor): Promise<number>;

  forgetStaleAttempts(keys: readonly string[], olderThan: string, trx?: Executor): Promise<void>;
  findAttempts(keys: readonly string[], trx?: Executor): Promise<SignInAttemptsTable[]>;
  /** Adds one failure atomically (shared by every instance) and returns the new count. */
  addFailure(key: string, at: string, trx?: Executor): Promise<number>;
  setLockedUntil(key: string, lockedUntil: string, trx?: Executor): Promise<void>;
  clearAttempts(keys: readonly string[], trx?: Executor): Promise<void>;

  findRequireMfa(organizationId: string, trx?: Executor): Promise<boolean>;
  setRequireMfa(organizationId: string, required: boolean, at: string, trx?: Executor): Promise<void>;

  findExternalIdentity(
    providerId: string,
    subject: string,
    trx?: Executor,
  ): Promise<ExternalIdentitiesTable | undefined>;
  insertExternalIdentity(row: ExternalIdentitiesTable, trx?: Executor): Promise<void>;
  touchExternalIdentity(id: string, at: string, trx?: Executor): Promise<void>;
}

export function createIdentityRepo(
  db: Executor,
  options: { sessionIdleMinutes?: number } = {},
): IdentityRepo {
  const idleMs = (options.sessionIdleMinutes ?? DEFAULT_SESSION_IDLE_MINUTES) * 60_000;
  const idleCutoff = (now: string) => new Date(Date.parse(now) - idleMs).toISOString();
  return {
    async insertUser(row, trx = db) {
      await trx.insertInto('users').values(row).execute();
    },
    async insertMembership(row, trx = db) {
      await trx.insertInto('memberships').values(row).execute();
    },
    async findUserByUsername(username, trx = db) {
      return trx.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    },
    async findUserById(id, trx = db) {
      return trx.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    },
    async findAccountHome(userId, trx = db) {
      const row = await trx
        .selectFrom('users as u')
        .select(accountHome('u.id').as('home'))
        .where('u.id', '=', userId)
        .executeTakeFirst();
      return row && row.home;
    },
    async findMembership(userId, trx = db) {
      return trx
        .selectFrom('memberships')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .executeTakeFirst();
    },
    async findMembershipIn(userId, organizationId, trx = db) {
      return trx
        .selectFrom('memberships')
        .selectAll()
        .where('user_id', '=', userId)
        .where('organization_id', '=', organizationId)
        .executeTakeFirst();
    },
    async setMembershipPermissions(userId, organizationId, permissions, trx = db) {
      await trx
        .updateTable('memberships')
        .set({ permissions })
        .where('user_id', '=', userId)
        .where('organization_id', '=', organizationId)
        .execute();
    },
    async listUsers(organizationId, trx = db) {
      return trx
        .selectFrom('users as u')
        .innerJoin('memberships as m', 'm.user_id', 'u.id')
        .select([
          'u.id',
          'u.username',
          'u.display_name',
          'u.email',
          'u.auth_source',
          'u.must_change_password',
          'u.disabled_at',
          'u.created_at',
          'm.permissions',
          accountHome('u.id').as('home_organization_id'),
        ])
        .where('m.organization_id', '=', organizationId)
        .orderBy('u.username')
        .limit(5000)
        .execute();
    },
    async setPassword(userId, passwordHash, at, trx = db, mustChangePassword = false) {
      await trx
        .updateTable('users')
        .set({
          password_hash: passwordHash,
          must_change_password: mustChangePassword ? 1 : 0,
          updated_at: at,
        })
        .where('id', '=', userId)
        .execute();
    },
    async updateProfile(userId, changes, at, trx = db) {
      await trx
        .updateTable('users')
        .set({ ...changes, updated_at: at })
        .where('id', '=', userId)
        .execute();
    },
    async setDisabled(userId, disabledAt, at, trx = db) {
      await trx
        .updateTable('users')
        .set({ disabled_at: disabledAt, updated_at: at })
        .where('id', '=', userId)
        .execute();
    },
    async insertSession(row, trx = db) {
      await trx.insertInto('sessions').values(row).execute();
    },
    async findLiveSessionByHash(tokenHash, now, trx = db) {
      const row = await trx
        .selectFrom('sessions as s')
        .innerJoin('users as u', 'u.id', 's.user_id')
        .innerJoin('memberships as m', (j) =>
          j.onRef('m.user_id', '=', 's.user_id').onRef('m.organization_id', '=', 's.organization_id'),
        )
        .leftJoin('organization_identity_settings as ois', 'ois.organization_id', 's.organization_id')
        .select([
          's.id',
          's.user_id',
          's.organization_id',
          'm.permissions',
          'u.must_change_password',
          'ois.require_mfa_for_disclosure',
          // In the same statement, so the per-request MFA policy check costs no round trip.
          hasSecondFactorSql(sql.ref('s.user_id')).as('has_second_factor'),
        ])
        .where('s.token_hash', '=', tokenHash)
        .where('s.state', '=', 'active')
        .where('s.revoked_at', 'is', null)
        .where('s.expires_at', '>', now)
        .where('s.last_seen_at', '>', idleCutoff(now))
        .where('u.disabled_at', 'is', null)
        .executeTakeFirst();
      return (
        row && {
          id: row.id,
          userId: row.user_id,
          organizationId: row.organization_id,
          permissions: JSON.parse(row.permissions) as string[],
          mustChangePassword: Number(row.must_change_password) === 1,
          requireMfa: Number(row.require_mfa_for_disclosure ?? 0) === 1,
          hasSecondFactor: isTrue(row.has_second_factor),
        }
      );
    },
    async findSessionInState(tokenHash, now, states, trx = db) {
      return trx
        .selectFrom('sessions as s')
        .innerJoin('users as u', 'u.id', 's.user_id')
        .selectAll('s')
        .where('s.token_hash', '=', tokenHash)
        .where('s.state', 'in', [...states])
        .where('s.revoked_at', 'is', null)
        .where('s.expires_at', '>', now)
        .where('s.last_seen_at', '>', idleCutoff(now))
        .where('u.disabled_at', 'is', null)
        .executeTakeFirst();
    },
    async promoteSession(id, change, trx = db) {
      await trx
        .updateTable('sessions')
        .set({
          state: change.state,
          token_hash: change.tokenHash,
          expires_at: change.expiresAt,
          last_seen_at: change.at,
        })
        .where('id', '=', id)
        .execute();
    },
    async findMfaStanding(userId, organizationId, trx = db) {
      const row = await trx
        .selectNoFrom((eb) => [
          eb
            .selectFrom('organization_identity_settings')
            .select('require_mfa_for_disclosure')
            .where('organization_id', '=', organizationId)
            .as('require_mfa'),
          hasSecondFactorSql(userId).as('has_second_factor'),
        ])
        .executeTakeFirstOrThrow();
      return {
        requireMfa: Number(row.require_mfa ?? 0) === 1,
        hasSecondFactor: isTrue(row.has_second_factor),
      };
    },
    async demoteSession(id, change, trx = db) {
      const result = await trx
        .updateTable('sessions')
        // A step still owed gets a pending session's short life, not what is left of the full one.
        .set((eb) => ({
          state: change.state,
          expires_at: eb
            .case()
            .when('expires_at', '>', change.expiresBy)
            .then(change.expiresBy)
            .else(eb.ref('expires_at'))
            .end(),
        }))
        .where('id', '=', id)
        .where('state', '=', 'active')
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async touchSession(id, at, trx = db) {
      await trx.updateTable('sessions').set({ last_seen_at: at }).where('id', '=', id).execute();
    },
    async revokeSession(id, at, trx = db) {
      await trx.updateTable('sessions').set({ revoked_at: at }).where('id', '=', id).execute();
    },
    async revokeUserSessions(userId, at, trx = db) {
      const result = await trx
        .updateTable('sessions')
        .set({ revoked_at: at })
        .where('user_id', '=', userId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', at)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async forgetStaleAttempts(keys, olderThan, trx = db) {
      if (keys.length === 0) return;
      await trx
        .deleteFrom('sign_in_attempts')
        .where('key', 'in', [...keys])
        .where('last_failure_at', '<', olderThan)
        .execute();
    },
    async findAttempts(keys, trx = db) {
      if (keys.length === 0) return [];
      return trx
        .selectFrom('sign_in_attempts')
        .selectAll()
        .where('key', 'in', [...keys])
        .execute();
    },
    async addFailure(key, at, trx = db) {
      await trx
        .insertInto('sign_in_attempts')
        .values({ key, failures: 1, last_failure_at: at, locked_until: null })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet((eb) => ({
            failures: eb(eb.ref('sign_in_attempts.failures'), '+', 1),
            last_failure_at: at,
          })),
        )
        .execute();
      const row = await trx
        .selectFrom('sign_in_attempts')
        .select('failures')
        .where('key', '=', key)
        .executeTakeFirstOrThrow();
      return Number(row.failures);
    },
    async setLockedUntil(key, lockedUntil, trx = db) {
      await trx
        .updateTable('sign_in_attempts')
        .set({ locked_until: lockedUntil })
        .where('key', '=', key)
        .execute();
    },
    async clearAttempts(keys, trx = db) {
      if (keys.length === 0) return;
      await trx
        .deleteFrom('sign_in_attempts')
        .where('key', 'in', [...keys])
        .execute();
    },

    async findRequireMfa(organizationId, trx = db) {
      const row = await trx
        .selectFrom('organization_identity_settings')
        .select('require_mfa_for_disclosure')
        .where('organization_id', '=', organizationId)
        .executeTakeFirst();
      return Number(row?.require_mfa_for_disclosure ?? 0) === 1;
    },
    async setRequireMfa(organizationId, required, at, trx = db) {
      const value = required ? 1 : 0;
      await trx
        .insertInto('organization_identity_settings')
        .values({ organization_id: organizationId, require_mfa_for_disclosure: value, updated_at: at })
        .onConflict((oc) =>
          oc.column('organization_id').doUpdateSet({ require_mfa_for_disclosure: value, updated_at: at }),
        )
        .execute();
    },

    async findExternalIdentity(providerId, subject, trx = db) {
      return trx
        .selectFrom('external_identities')
        .selectAll()
        .where('provider_id', '=', providerId)
        .where('subject', '=', subject)
        .executeTakeFirst();
    },
    async insertExternalIdentity(row, trx = db) {
      await trx.insertInto('external_identities').values(row).execute();
    },
    async touchExternalIdentity(id, at, trx = db) {
      await trx
        .updateTable('external_identities')
        .set({ last_sign_in_at: at })
        .where('id', '=', id)
        .execute();
    },
  };
}
