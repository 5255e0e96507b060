/**
 * Accounts and sessions: first-start bootstrap, local sign-in with lockout, the session states that
 * MFA adds, sign-out (here or everywhere), password change and administrator reset, user admin, and
 * just-in-time accounts for people who sign in through SSO or LDAP.
 */
import type { Db } from '../../db/database.js';
import type { SessionsTable, SessionState, UsersTable } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import { base32, type IdGenerator } from '../../lib/ids.js';
import type { RandomSource } from '../../lib/random.js';
import { hashToken, issueToken } from '../../lib/tokens.js';
import { grantsWithin } from '../api-tokens/api-tokens.service.js';
import type { AuditActorType, AuditEntry, AuditWriter } from '../audit/audit.service.js';
import type { OrganizationsRepo } from '../organizations/organizations.repo.js';
import { canDiscloseKeys, type ExternalGroupAccess, type PermissionLookup } from './access-integration.js';
import { csrfTokenFor } from './csrf.js';
import type { IdentityRepo } from './identity.repo.js';
import type { MfaRepo } from './mfa.repo.js';
import { assertPasswordPolicy, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from './password-policy.js';
import type { PasswordHasher } from './password-hasher.js';
import type { SignInThrottle } from './sign-in-throttle.js';

export { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH };
export const INITIAL_ADMIN_USERNAME = 'admin';
/** A session that still owes its MFA step lives this long. */
export const PENDING_SESSION_MINUTES = 10;
export const ACCOUNT_MANAGED_ELSEWHERE_MESSAGE =
  'This account is managed by another organization: only its administrators can reset its password, ' +
  'change its profile or e-mail, disable it or end all its sessions. This organization can remove the ' +
  'member or suspend them here instead.';
/** Stored in place of a password hash for SSO / LDAP accounts: no Argon2 hash ever equals it. */
const NO_LOCAL_PASSWORD = '!external';

export type SignInMethod = SessionsTable['auth_method'];

export interface SignInResult {
  sessionToken: string;
  csrfToken: string;
  expiresAt: string;
  userId: string;
  username: string;
  organizationId: string;
  mustChangePassword: boolean;
  /** `active`, or the step still owed before the session grants anything. */
  state: SessionState;
  mfaMethods: ('totp' | 'webauthn' | 'recovery-code')[];
}

export interface Actor {
  type: AuditActorType;
  id: string | null;
}

export interface RequestContext {
  requestId?: string | undefined;
  /** The client address, for the per-address lockout. */
  address?: string | undefined;
}

export type IdentityService = ReturnType<typeof createIdentityService>;

const withRequest = (requestId: string | undefined) => (requestId === undefined ? {} : { requestId });

export function oneTimePassword(random: RandomSource): string {
  return (base32(random.bytes(15)).match(/.{4}/g) ?? []).join('-');
}

export function createIdentityService(deps: {
  db: Db;
  clock: Clock;
  random: RandomSource;
  ids: IdGenerator;
  passwordHasher: PasswordHasher;
  auditWriter: AuditWriter;
  identityRepo: IdentityRepo;
  mfaRepo: Pick<MfaRepo, 'findMethods'>;
  organizationsRepo: Pick<OrganizationsRepo, 'count' | 'insert'>;
  throttle: SignInThrottle;
  sessionTtlMinutes: number;
  permissionLookup: PermissionLookup;
  externalGroupAccess: ExternalGroupAccess;
}) {
  const { db, clock, random, ids, passwordHasher, auditWriter, identityRepo, mfaRepo, throttle } = deps;
  const { permissionLookup, externalGroupAccess } = deps;
  // Verified against when the username is unknown, so a miss costs as much as a wrong password.
  let decoyHash: Promise<string> | undefined;
  const decoy = () => (decoyHash ??= passwordHasher.hash(base32(random.bytes(16))));
  const ttlMs = deps.sessionTtlMinutes * 60_000;

  const audit = (entry: AuditEntry) => db.transaction().execute((t) => auditWriter.append(entry, t));

  /** The state a fresh session starts in, from the user's factors and the organization's policy. */
  async function initialState(userId: string, organizationId: string) {
    const methods = await mfaRepo.findMethods(userId);
    const available: SignInResult['mfaMethods'] = [];
    if (methods.totp) available.push('totp');
    if (methods.webauthn > 0) available.push('webauthn');
    if (available.length > 0 && methods.recoveryCodes > 0) available.push('recovery-code');
    if (available.length > 0) return { state: 'mfa-pending' as const, available };
    const required = await mfaRequired(userId, organizationId);
    return { state: required ? ('mfa-enrollment-required' as const) : ('active' as const), available };
  }

  /** True when the organization's policy makes this user keep a second factor. */
  async function mfaRequired(userId: string, organizationId: string) {
    return (
      (await identityRepo.findRequireMfa(organizationId)) &&
      canDiscloseKeys(await permissionLookup.permissionsOf(organizationId, userId))
    );
  }

  async function startSession(options: {
    user: UsersTable;
    organizationId: string;
    method: SignInMethod;
    requestId?: string | undefined;
  }): Promise<SignInResult> {
    const { user, organizationId, method } = options;
    const { state, available } = await initialState(user.id, organizationId);
    const issued = issueToken('session', random);
    const now = clock.now();
    const expiresAt = new Date(
      now.getTime() + (state === 'active' ? ttlMs : PENDING_SESSION_MINUTES * 60_000),
    ).toISOString();
    const sessionId = ids('session');
    await db.transaction().execute(async (trx) => {
      await identityRepo.insertSession(
        {
          id: sessionId,
          token_hash: issued.hash,
          user_id: user.id,
          organization_id: organizationId,
          created_at: now.toISOString(),
          expires_at: expiresAt,
          last_seen_at: now.toISOString(),
          revoked_at: null,
          state,
          auth_method: method,
        },
        trx,
      );
      await auditWriter.append(
        {
          organizationId,
          actor: { type: 'user', id: user.id },
          action: 'session.sign-in',
          target: { type: 'session', id: sessionId },
          outcome: 'success',
          details: { method, state },
          ...withRequest(options.requestId),
        },
        trx,
      );
    });
    return {
      sessionToken: issued.token,
      csrfToken: csrfTokenFor(issued.token),
      expiresAt,
      userId: user.id,
      username: user.username,
      organizationId,
      mustChangePassword: user.must_change_password === 1,
      state,
      mfaMethods: available,
    };
  }

  async function auditFailure(
    user: UsersTable | undefined,
    reason: string,
    method: SignInMethod,
    requestId: string | undefined,
  ) {
    await audit({
      organizationId: null,
      actor: { type: 'user', id: user?.id ?? null },
      action: 'session.sign-in',
      outcome: 'failure',
      reason,
      details: { method },
      ...withRequest(requestId),
    });
  }

  async function userInOrganization(organizationId: string, userId: string) {
    const membership = await identityRepo.findMembershipIn(userId, organizationId);
    const user = membership && (await identityRepo.findUserById(userId));
    // Another organization's user is indistinguishable from no user.
    if (!user) throw new AppError('NOT_FOUND', 'No such user');
    return user;
  }

  /**
   * A member whose account this organization manages. Usernames are global and an account can
   * belong to several organizations: only its home organization acts on the account itself
   * (password, profile and e-mail, disabling, every session), or any organization it joined could
   * take it over in all the others. The others manage the membership (roles, suspension, removal).
   */
  async function accountManagedBy(organizationId: string, userId: string) {
    const user = await userInOrganization(organizationId, userId);
    if ((await identityRepo.findAccountHome(userId)) !== organizationId) {
      throw new AppError('ACCOUNT_MANAGED_ELSEWHERE', ACCOUNT_MANAGED_ELSEWHERE_MESSAGE);
    }
    return user;
  }

  return {
    startSession,
    mfaRequired,

    /** On an empty database: the first organization and its administrator with a one-time password. */
    async bootstrapFirstOrganization({
      organizationName,
    }: {
      organizationName: string;
    }): Promise<{ organizationId: string; username: string; oneTimePassword: string } | undefined> {
      if ((await deps.organizationsRepo.count()) > 0) return undefined;
      const password = oneTimePassword(random);
      const passwordHash = await passwordHasher.hash(password);
      const now = clock.now().toISOString();
      const organizationId = ids('organization');
      const userId = ids('user');
      const created = await db.transaction().execute(async (trx) => {
        // Re-checked inside the transaction: two servers starting at once create one organization.
        if ((await deps.organizationsRepo.count(trx)) > 0) return false;
        await deps.organizationsRepo.insert(
          { id: organizationId, name: organizationName, created_at: now },
          trx,
        );
        await identityRepo.insertUser(
          {
            id: userId,
            username: INITIAL_ADMIN_USERNAME,
            display_name: 'Administrator',
            password_hash: passwordHash,
            must_change_password: 1,
            created_at: now,
            updated_at: now,
            disabled_at: null,
            auth_source: 'local',
            home_organization_id: organizationId,
          },
          trx,
        );
        await identityRepo.insertMembership(
          {
            id: ids('membership'),
            organization_id: organizationId,
            user_id: userId,
            permissions: '["*"]',
            created_at: now,
          },
          trx,
        );
        await auditWriter.append(
          {
            organizationId,
            actor: { type: 'system', id: null },
            action: 'organization.bootstrapped',
            target: { type: 'user', id: userId },
            outcome: 'success',
          },
          trx,
        );
        return true;
      });
      return created
        ? { organizationId, username: INITIAL_ADMIN_USERNAME, oneTimePassword: password }
        : undefined;
    },

    /**
     * A local account. Without `password` it gets a one-time password (returned once) that must be
     * changed at first sign-in. `creatorPermissions` (when an administrator calls) bounds the grants.
     */
    async createUser(options: {
      organizationId: string;
      username: string;
      displayName?: string | undefined;
      email?: string | undefined;
      password?: string | undefined;
      permissions: string[];
      mustChangePassword?: boolean | undefined;
      creatorPermissions?: readonly string[] | undefined;
      actor?: Actor | undefined;
      requestId?: string | undefined;
    }): Promise<{ userId: string; oneTimePassword?: string }> {
      if (options.creatorPermissions && !grantsWithin(options.permissions, options.creatorPermissions)) {
        throw new AppError('FORBIDDEN', 'A user cannot be given permissions their creator lacks');
      }
      const generated = options.password === undefined ? oneTimePassword(random) : undefined;
      const password = options.password ?? generated!;
      if (options.password !== undefined) assertPasswordPolicy(password, options.username);
      const passwordHash = await passwordHasher.hash(password);
      const now = clock.now().toISOString();
      const userId = ids('user');
      await db.transaction().execute(async (trx) => {
        if (await identityRepo.findUserByUsername(options.username, trx)) {
          throw new AppError('CONFLICT', 'That username is taken');
        }
        await identityRepo.insertUser(
          {
            id: userId,
            username: options.username,
            display_name: options.displayName ?? options.username,
            password_hash: passwordHash,
            must_change_password: (options.mustChangePassword ?? generated !== undefined) ? 1 : 0,
            created_at: now,
            updated_at: now,
            disabled_at: null,
            auth_source: 'local',
            email: options.email ?? null,
            home_organization_id: options.organizationId,
          },
          trx,
        );
        await identityRepo.insertMembership(
          {
            id: ids('membership'),
            organization_id: options.organizationId,
            user_id: userId,
            permissions: JSON.stringify(options.permissions),
            created_at: now,
          },
          trx,
        );
        if (options.actor) {
          await auditWriter.append(
            {
              organizationId: options.organizationId,
              actor: options.actor,
              action: 'user.created',
              target: { type: 'user', id: userId },
              outcome: 'success',
              ...withRequest(options.requestId),
            },
            trx,
          );
        }
      });
      return generated === undefined ? { userId } : { userId, oneTimePassword: generated };
    },

    /** Password sign-in. Locked accounts and addresses are refused before the password is checked. */
    async signIn(username: string, password: string, context: RequestContext = {}): Promise<SignInResult> {
      const keys = throttle.keysFor('local', username, context.address);
      await throttle.assertOpen(keys);
      const user = await identityRepo.findUserByUsername(username);
      const ok = await passwordHasher.verify(user?.password_hash ?? (await decoy()), password);
      const usable = user && ok && user.disabled_at === null && user.auth_source === 'local';
      const membership = usable ? await identityRepo.findMembership(user.id) : undefined;
      if (!user || !membership) {
        await throttle.recordFailure(keys);
        await auditFailure(
          user,
          ok ? 'account-unusable' : 'invalid-credentials',
          'password',
          context.requestId,
        );
        throw new AppError('INVALID_CREDENTIALS', 'Wrong username or password');
      }
      await throttle.recordSuccess(keys);
      return startSession({
        user,
        organizationId: membership.organization_id,
        method: 'password',
        requestId: context.requestId,
      });
    },

    /** The session behind a cookie, when it is in one of `states` (the MFA steps use this). */
    async sessionInState(token: string, states: readonly SessionState[]) {
      const session = await identityRepo.findSessionInState(
        hashToken(token),
        clock.now().toISOString(),
        states,
      );
      if (!session) throw new AppError('UNAUTHENTICATED', 'Sign in first');
      return session;
    },

    /** Makes a session active after its MFA step, under a new token (the pre-MFA token dies). */
    async activateSession(session: SessionsTable, requestId?: string, how = 'mfa') {
      const issued = issueToken('session', random);
      const now = clock.now();
      const expiresAt = new Date(Date.parse(session.created_at) + ttlMs).toISOString();
      await db.transaction().execute(async (trx) => {
        await identityRepo.promoteSession(
          session.id,
          { state: 'active', tokenHash: issued.hash, expiresAt, at: now.toISOString() },
          trx,
        );
        await auditWriter.append(
          {
            organizationId: session.organization_id,
            actor: { type: 'user', id: session.user_id },
            action: 'session.mfa-completed',
            target: { type: 'session', id: session.id },
            outcome: 'success',
            details: { how },
            ...withRequest(requestId),
          },
          trx,
        );
      });
      return { sessionToken: issued.token, csrfToken: csrfTokenFor(issued.token), expiresAt };
    },

    async signOut(sessionId: string) {
      await identityRepo.revokeSession(sessionId, clock.now().toISOString());
    },

    /** Ends every session of the user (this one included). */
    async signOutEverywhere(userId: string, organizationId: string, requestId?: string) {
      return db.transaction().execute(async (trx) => {
        const revoked = await identityRepo.revokeUserSessions(userId, clock.now().toISOString(), trx);
        await auditWriter.append(
          {
            organizationId,
            actor: { type: 'user', id: userId },
            action: 'session.revoked-all',
            target: { type: 'user', id: userId },
            outcome: 'success',
            details: { revoked },
            ...withRequest(requestId),
          },
          trx,
        );
        return revoked;
      });
    },

    /** An administrator ends another user's sessions. */
    async revokeUserSessions(organizationId: string, userId: string, actor: Actor, requestId?: string) {
      await accountManagedBy(organizationId, userId);
      return db.transaction().execute(async (trx) => {
        const revoked = await identityRepo.revokeUserSessions(userId, clock.now().toISOString(), trx);
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'session.revoked-all',
            target: { type: 'user', id: userId },
            outcome: 'success',
            details: { revoked },
            ...withRequest(requestId),
          },
          trx,
        );
        return revoked;
      });
    },

    async changePassword(userId: string, currentPassword: string, newPassword: string, requestId?: string) {
      const user = await identityRepo.findUserById(userId);
      if (!user || user.auth_source !== 'local') {
        throw new AppError('FORBIDDEN', 'This account signs in through its identity provider');
      }
      if (!(await passwordHasher.verify(user.password_hash, currentPassword))) {
        throw new AppError('INVALID_CREDENTIALS', 'The current password is wrong');
      }
      assertPasswordPolicy(newPassword, user.username);
      if (newPassword === currentPassword) {
        throw new AppError('VALIDATION_FAILED', 'The new password must differ from the current one');
      }
      const passwordHash = await passwordHasher.hash(newPassword);
      const membership = await identityRepo.findMembership(userId);
      await db.transaction().execute(async (trx) => {
        await identityRepo.setPassword(userId, passwordHash, clock.now().toISOString(), trx);
        await auditWriter.append(
          {
            organizationId: membership?.organization_id ?? null,
            actor: { type: 'user', id: userId },
            action: 'user.password-changed',
            target: { type: 'user', id: userId },
            outcome: 'success',
            ...withRequest(requestId),
          },
          trx,
        );
      });
    },

    /**
     * An administrator's reset: a one-time password (returned once) that must be changed at the next
     * sign-in; the user's sessions end and the lockout counter clears.
     */
    async resetPassword(organizationId: string, userId: string, actor: Actor, requestId?: string) {
      const user = await accountManagedBy(organizationId, userId);
      if (user.auth_source !== 'local') {
        throw new AppError('CONFLICT', 'This account signs in through its identity provider');
      }
      const password = oneTimePassword(random);
      const passwordHash = await passwordHasher.hash(password);
      const now = clock.now().toISOString();
      await db.transaction().execute(async (trx) => {
        await identityRepo.setPassword(userId, passwordHash, now, trx, true);
        await identityRepo.revokeUserSessions(userId, now, trx);
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'user.password-reset',
            target: { type: 'user', id: userId },
            outcome: 'success',
            ...withRequest(requestId),
          },
          trx,
        );
      });
      await throttle.clearAccount('local', user.username);
      return { oneTimePassword: password };
    },

    async listUsers(organizationId: string) {
      const rows = await identityRepo.listUsers(organizationId);
      return rows.map((r) => ({
        userId: r.id,
        username: r.username,
        displayName: r.display_name,
        email: r.email ?? null,
        authSource: r.auth_source,
        permissions: JSON.parse(r.permissions) as string[],
        mustChangePassword: Number(r.must_change_password) === 1,
        disabledAt: r.disabled_at,
        createdAt: r.created_at,
        // Account-wide actions (password, profile, disable, all sessions) are allowed only then.
        managedHere: r.home_organization_id === organizationId,
      }));
    },

    /** Changes a member's display name or e-mail address (where identity codes and notices go). */
    async updateUserProfile(
      organizationId: string,
      userId: string,
      changes: { displayName?: string | undefined; email?: string | null | undefined },
      actor: Actor,
      requestId?: string,
    ) {
      await accountManagedBy(organizationId, userId);
      const now = clock.now().toISOString();
      await db.transaction().execute(async (trx) => {
        await identityRepo.updateProfile(
          userId,
          {
            ...(changes.displayName === undefined ? {} : { display_name: changes.displayName }),
            ...(changes.email === undefined ? {} : { email: changes.email }),
          },
          now,
          trx,
        );
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'user.updated',
            target: { type: 'user', id: userId },
            outcome: 'success',
            details: {
              displayNameChanged: changes.displayName !== undefined,
              emailChanged: changes.email !== undefined,
            },
            ...(requestId === undefined ? {} : { requestId }),
          },
          trx,
        );
      });
    },

    /** Disables (and signs out) or re-enables a user. */
    async setUserDisabled(
      organizationId: string,
      userId: string,
      disabled: boolean,
      actor: Actor,
      requestId?: string,
    ) {
      await accountManagedBy(organizationId, userId);
      if (actor.type === 'user' && actor.id === userId && disabled) {
        throw new AppError('CONFLICT', 'You cannot disable your own account');
      }
      const now = clock.now().toISOString();
      await db.transaction().execute(async (trx) => {
        await identityRepo.setDisabled(userId, disabled ? now : null, now, trx);
        if (disabled) await identityRepo.revokeUserSessions(userId, now, trx);
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: disabled ? 'user.disabled' : 'user.enabled',
            target: { type: 'user', id: userId },
            outcome: 'success',
            ...withRequest(requestId),
          },
          trx,
        );
      });
    },

    async describeUser(userId: string) {
      const user = await identityRepo.findUserById(userId);
      if (!user) throw new AppError('NOT_FOUND', 'No such user');
      return {
        userId: user.id,
        username: user.username,
        displayName: user.display_name,
        mustChangePassword: user.must_change_password === 1,
      };
    },

    async mfaPolicy(organizationId: string) {
      return { requireMfaForDisclosure: await identityRepo.findRequireMfa(organizationId) };
    },

    async setMfaPolicy(organizationId: string, required: boolean, actor: Actor, requestId?: string) {
      await db.transaction().execute(async (trx) => {
        await identityRepo.setRequireMfa(organizationId, required, clock.now().toISOString(), trx);
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'organization.mfa-policy-changed',
            outcome: 'success',
            details: { requireMfaForDisclosure: required },
            ...withRequest(requestId),
          },
          trx,
        );
      });
      return { requireMfaForDisclosure: required };
    },

    /**
     * The user behind an SSO / LDAP identity: found by its stable subject, else created just in time.
     * Their groups go to access (roles) on every sign-in, so leaving a group takes effect.
     * A local account with the same name is never taken over: that is a conflict for an administrator.
     */
    async provisionExternalUser(input: {
      organizationId: string;
      providerType: 'oidc' | 'ldap';
      providerId: string;
      subject: string;
      username: string;
      displayName: string;
      groups: readonly string[];
      requestId?: string | undefined;
    }): Promise<UsersTable> {
      const now = clock.now().toISOString();
      return db.transaction().execute(async (trx) => {
        const link = await identityRepo.findExternalIdentity(input.providerId, input.subject, trx);
        let user: UsersTable | undefined;
        if (link) {
          user = await identityRepo.findUserById(link.user_id, trx);
          await identityRepo.touchExternalIdentity(link.id, now, trx);
        } else {
          if (await identityRepo.findUserByUsername(input.username, trx)) {
            throw new AppError(
              'CONFLICT',
              'An account with this name exists and is not linked to this sign-in',
            );
          }
          user = {
            id: ids('user'),
            username: input.username,
            display_name: input.displayName,
            password_hash: NO_LOCAL_PASSWORD,
            must_change_password: 0,
            created_at: now,
            updated_at: now,
            disabled_at: null,
            auth_source: input.providerType,
            home_organization_id: input.organizationId,
          };
          await identityRepo.insertUser(user, trx);
          await identityRepo.insertMembership(
            {
              id: ids('membership'),
              organization_id: input.organizationId,
              user_id: user.id,
              permissions: '[]',
              created_at: now,
            },
            trx,
          );
          await identityRepo.insertExternalIdentity(
            {
              id: ids('externalIdentity'),
              organization_id: input.organizationId,
              provider_type: input.providerType,
              provider_id: input.providerId,
              subject: input.subject,
              user_id: user.id,
              created_at: now,
              last_sign_in_at: now,
            },
            trx,
          );
          await auditWriter.append(
            {
              organizationId: input.organizationId,
              actor: { type: 'system', id: null },
              action: 'user.provisioned',
              target: { type: 'user', id: user.id },
              outcome: 'success',
              details: { providerType: input.providerType, providerId: input.providerId },
              ...withRequest(input.requestId),
            },
            trx,
          );
        }
        if (!user || user.disabled_at !== null) {
          throw new AppError('INVALID_CREDENTIALS', 'This account is disabled');
        }
        await externalGroupAccess.applyExternalGroups(
          { organizationId: input.organizationId, userId: user.id, groups: input.groups },
          trx,
        );
        return user;
      });
    },

    auditSignInFailure: auditFailure,
  };
}
