/**
 * Who is calling and what they may do, in one place: credentials become a principal with layered
 * grants (authenticator), a user's grants come from role assignments (rights), and every device or
 * key action asks `authorize`, which answers with the row or a 404.
 */
import type { Db, Executor } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { IdGenerator } from '../../lib/ids.js';
import { hashToken, parseToken, tokenMatches } from '../../lib/tokens.js';
import type { ApiTokensRepo } from '../api-tokens/api-tokens.repo.js';
import type { TokenLookups } from '../api-tokens/token-lookup-batcher.js';
import type { AuditWriter } from '../audit/audit.service.js';
import type { DeviceRow, DevicesRepo } from '../devices/devices.repo.js';
import type { EscrowRepo } from '../escrow/escrow.repo.js';
import type { IdentityRepo } from '../identity/identity.repo.js';
import { PENDING_SESSION_MINUTES } from '../identity/identity.service.js';
import type { RecoveryKeyRow, RecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import type { AccessRepo, RoleAssignmentRow } from './access.repo.js';
import {
  canDiscloseKeys,
  decideScope,
  effectivePermissions,
  type AccessScope,
  type Grant,
  type GrantLayer,
  type Permission,
} from './permissions.js';
import type { Principal } from './principal.js';
import { BUILT_IN_ROLES, builtInRole } from './roles.js';

export interface Authenticator {
  fromSessionToken(token: string): Promise<Principal | undefined>;
  fromBearerToken(token: string): Promise<Principal | undefined>;
  /** Refuses (and audits) a suspended account; absent in minimal test authenticators. */
  assertActive?(principal: Principal, requestId: string): Promise<void>;
}

/** The account a principal counts as for suspensions and per-account limits (a personal token is its user). */
/**
 * "Last used" is kept to the minute: writing it on every request would turn each read into a
 * committed write, and concurrent requests with one token would queue on its row.
 */
const LAST_USED_RESOLUTION_MS = 60_000;

function usedLongAgo(lastUsedAt: string | null, now: string): boolean {
  return lastUsedAt === null || Date.parse(now) - Date.parse(lastUsedAt) >= LAST_USED_RESOLUTION_MS;
}

export function accountOf(principal: Principal): { type: 'user' | 'api-token'; id: string } | undefined {
  switch (principal.kind) {
    case 'user':
      return { type: 'user', id: principal.userId };
    case 'api-token':
      return principal.actingUserId === null
        ? { type: 'api-token', id: principal.apiTokenId }
        : { type: 'user', id: principal.actingUserId };
    case 'device':
      return undefined;
  }
}

export type RightsResolver = ReturnType<typeof createRightsResolver>;

/** A user's grants in one organization, computed from role assignments at each request. */
export function createRightsResolver(deps: {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  accessRepo: Pick<
    AccessRepo,
    | 'assignmentsOfUser'
    | 'listRoles'
    | 'isMember'
    | 'legacyMemberships'
    | 'clearLegacyPermissions'
    | 'insertAssignment'
    | 'insertRole'
    | 'findRoleByName'
  >;
}) {
  const { db, clock, ids, accessRepo } = deps;

  async function grantsOf(organizationId: string, assignments: RoleAssignmentRow[], trx?: Executor) {
    const custom = assignments.some((a) => builtInRole(a.role_id) === undefined)
      ? await accessRepo.listRoles(organizationId, trx)
      : [];
    const grants: Grant[] = [];
    for (const a of assignments) {
      const permissions =
        builtInRole(a.role_id)?.permissions ??
        (JSON.parse(custom.find((r) => r.id === a.role_id)?.permissions ?? '[]') as string[]);
      grants.push({ permissions, deviceGroupIds: a.scope === 'organization' ? null : a.device_group_ids });
    }
    return grants;
  }

  return {
    grantsOf,

    /** The user's layer in the organization, or undefined when they are not a member of it. */
    async userLayer(organizationId: string, userId: string, trx?: Executor): Promise<GrantLayer | undefined> {
      if (!(await accessRepo.isMember(organizationId, userId, trx))) return undefined;
      return grantsOf(organizationId, await accessRepo.assignmentsOfUser(organizationId, userId, trx), trx);
    },

    /**
     * Turns permissions still written on memberships (by the first-start bootstrap and older callers)
     * into role assignments, once: `*` becomes Organization Administrator, a set equal to a built-in
     * role becomes that role, anything else a custom role. Idempotent.
     */
    async adoptLegacyMembershipGrants(): Promise<number> {
      const legacy = await accessRepo.legacyMemberships();
      for (const m of legacy) {
        await db.transaction().execute(async (trx) => {
          const grants = JSON.parse(m.permissions) as string[];
          const now = clock.now().toISOString();
          const sorted = [...grants].sort().join(' ');
          let roleId: string | undefined = grants.includes('*')
            ? 'organization-administrator'
            : BUILT_IN_ROLES.find((r) => [...r.permissions].sort().join(' ') === sorted)?.id;
          if (roleId === undefined && grants.length > 0) {
            const name = `Migrated grants of ${m.user_id}`;
            const existing = await accessRepo.findRoleByName(m.organization_id, name, trx);
            roleId = existing?.id ?? ids('role');
            if (!existing) {
              await accessRepo.insertRole(
                {
                  id: roleId,
                  organization_id: m.organization_id,
                  name,
                  description: 'Created from the permissions a membership held before roles existed',
                  permissions: JSON.stringify(grants),
                  created_at: now,
                  updated_at: now,
                },
                trx,
              );
            }
          }
          if (roleId !== undefined) {
            await accessRepo.insertAssignment(
              {
                id: ids('roleAssignment'),
                organization_id: m.organization_id,
                role_id: roleId,
                user_id: m.user_id,
                external_group: null,
                scope: 'organization',
                created_at: now,
              },
              [],
              trx,
            );
          }
          await accessRepo.clearLegacyPermissions(m.id, trx);
        });
      }
      return legacy.length;
    },
  };
}

function principalFrom<T extends Omit<Principal, 'permissions' | 'layers'>>(
  base: T,
  layers: GrantLayer[],
): T & { permissions: Permission[]; layers: GrantLayer[] } {
  return { ...base, layers, permissions: effectivePermissions(layers) };
}

export function createAuthenticator(deps: {
  db: Db;
  clock: Clock;
  auditWriter: AuditWriter;
  identityRepo: Pick<
    IdentityRepo,
    'findLiveSessionByHash' | 'touchSession' | 'findUserById' | 'demoteSession' | 'findMfaStanding'
  >;
  apiTokensRepo: Pick<ApiTokensRepo, 'touch'>;
  /** The token read of every API request (batched on PostgreSQL: AppDeps.tokenLookups). */
  tokenLookups: TokenLookups;
  escrowRepo: Pick<EscrowRepo, 'findDeviceCredentialByLookupPrefix' | 'touchDeviceCredential'>;
  accessRepo: Pick<AccessRepo, 'activeSuspension'>;
  rights: Pick<RightsResolver, 'userLayer' | 'adoptLegacyMembershipGrants'>;
}): Authenticator {
  const {
    db,
    clock,
    auditWriter,
    identityRepo,
    apiTokensRepo,
    tokenLookups,
    escrowRepo,
    accessRepo,
    rights,
  } = deps;
  return {
    async fromSessionToken(token) {
      if (parseToken(token)?.kind !== 'session') return undefined;
      const now = clock.now().toISOString();
      const session = await identityRepo.findLiveSessionByHash(hashToken(token), now);
      if (!session) return undefined;
      // Grants some code path still wrote on the membership become role assignments first.
      if (session.permissions.length > 0) await rights.adoptLegacyMembershipGrants();
      const layer = await rights.userLayer(session.organizationId, session.userId);
      if (!layer) return undefined;
      const principal = principalFrom(
        {
          kind: 'user' as const,
          userId: session.userId,
          sessionId: session.id,
          organizationId: session.organizationId,
          mustChangePassword: session.mustChangePassword,
        },
        [layer],
      );
      // The MFA policy holds on every request, not only at sign-in: a session opened before the
      // policy was turned on, or before a role that can disclose was granted, owes enrolment now.
      if (session.requireMfa && !session.hasSecondFactor && canDiscloseKeys(principal.permissions)) {
        await db.transaction().execute(async (trx) => {
          const expiresBy = new Date(Date.parse(now) + PENDING_SESSION_MINUTES * 60_000).toISOString();
          const demoted = await identityRepo.demoteSession(
            session.id,
            { state: 'mfa-enrollment-required', expiresBy },
            trx,
          );
          if (!demoted) return;
          await auditWriter.append(
            {
              organizationId: session.organizationId,
              actor: { type: 'user', id: session.userId },
              action: 'session.mfa-enrollment-required',
              target: { type: 'session', id: session.id },
              outcome: 'success',
              details: { why: 'the organization requires MFA for everyone who can disclose keys' },
            },
            trx,
          );
        });
        return undefined;
      }
      await identityRepo.touchSession(session.id, now);
      return principal;
    },
    async fromBearerToken(token) {
      const parsed = parseToken(token);
      const now = clock.now().toISOString();
      if (parsed?.kind === 'apiToken') {
        const row = await tokenLookups.findForAuthentication(parsed.lookupPrefix);
        if (!row || !tokenMatches(token, row.token_hash) || row.revoked_at !== null) return undefined;
        if (row.expires_at !== null && row.expires_at <= now) return undefined;
        const own: GrantLayer = [
          {
            permissions: JSON.parse(row.permissions) as string[],
            deviceGroupIds:
              row.device_group_ids === null ? null : (JSON.parse(row.device_group_ids) as string[]),
          },
        ];
        const layers: GrantLayer[] = [own];
        let actingUserId: string | null = null;
        if (row.kind === 'personal') {
          // A personal token is its user, narrowed: it loses whatever the user has lost since.
          actingUserId = row.created_by_user_id;
          const user = actingUserId === null ? undefined : await identityRepo.findUserById(actingUserId);
          if (!user || user.disabled_at !== null) return undefined;
          const userLayer = await rights.userLayer(row.organization_id, user.id);
          if (!userLayer) return undefined;
          layers.push(userLayer);
          // A personal token is its user: under the organization's MFA policy, a user without a
          // second factor cannot disclose through their token any more than through a session.
          if (canDiscloseKeys(effectivePermissions(layers))) {
            const standing = await identityRepo.findMfaStanding(user.id, row.organization_id);
            if (standing.requireMfa && !standing.hasSecondFactor) return undefined;
          }
        }
        if (usedLongAgo(row.last_used_at, now)) await apiTokensRepo.touch(row.id, now);
        return principalFrom(
          {
            kind: 'api-token' as const,
            apiTokenId: row.id,
            actingUserId,
            organizationId: row.organization_id,
            suspensionId: row.suspension_id,
          },
          layers,
        );
      }
      if (parsed?.kind === 'deviceCredential') {
        const row = await escrowRepo.findDeviceCredentialByLookupPrefix(parsed.lookupPrefix);
        if (!row || !tokenMatches(token, row.token_hash) || row.revoked_at !== null) return undefined;
        if (usedLongAgo(row.last_used_at, now)) await escrowRepo.touchDeviceCredential(row.id, now);
        return {
          kind: 'device',
          deviceId: row.device_id,
          deviceCredentialId: row.id,
          organizationId: row.organization_id,
          // A device credential is good for escrow and nothing else.
          permissions: ['escrow:write'],
          layers: [[{ permissions: ['escrow:write'], deviceGroupIds: null }]],
        };
      }
      return undefined;
    },
    async assertActive(principal, requestId) {
      const account = accountOf(principal);
      if (!account) return;
      // Read with the credential when it could be (API tokens), else here.
      const suspension =
        principal.suspensionId !== undefined
          ? principal.suspensionId === null
            ? undefined
            : { id: principal.suspensionId }
          : await accessRepo.activeSuspension(principal.organizationId, account.type, account.id);
      if (!suspension) return;
      await db.transaction().execute((trx) =>
        auditWriter.append(
          {
            organizationId: principal.organizationId,
            actor: account,
            action: 'access.refused-suspended',
            target: { type: 'account-suspension', id: suspension.id },
            outcome: 'failure',
            requestId,
          },
          trx,
        ),
      );
      throw new AppError('ACCOUNT_SUSPENDED', 'This account is suspended in this organization');
    },
  };
}

export type Authorizer = ReturnType<typeof createAuthorizer>;

/**
 * "May this caller do this permission, on this device, in this organization?" A device outside
 * the organization or the caller's scope answers 404 exactly like a missing one, so a caller learns
 * nothing about what it may not see.
 */
export function createAuthorizer(deps: {
  devicesRepo: Pick<DevicesRepo, 'findInScope'>;
  recoveryKeysRepo: Pick<RecoveryKeysRepo, 'findByIdInScope'>;
}) {
  const { devicesRepo, recoveryKeysRepo } = deps;

  function scopeOf(principal: Principal, permission: Permission): AccessScope {
    return decideScope(principal.layers, permission);
  }

  async function authorize(
    principal: Principal,
    permission: Permission,
    target: { deviceId: string },
    trx?: Executor,
  ): Promise<DeviceRow> {
    const scope = scopeOf(principal, permission);
    const device =
      scope.kind === 'none'
        ? undefined
        : await devicesRepo.findInScope(principal.organizationId, target.deviceId, scope, trx);
    if (!device) throw new AppError('DEVICE_NOT_FOUND', 'No such device');
    return device;
  }

  return {
    scopeOf,
    authorize,
    /** The key, when the caller may use `permission` on its device; else 404 (one statement). */
    async authorizeRecoveryKey(
      principal: Principal,
      permission: Permission,
      recoveryKeyRecordId: string,
      trx?: Executor,
    ): Promise<{ key: RecoveryKeyRow }> {
      const key = await recoveryKeysRepo.findByIdInScope(
        principal.organizationId,
        recoveryKeyRecordId,
        scopeOf(principal, permission),
        trx,
      );
      if (!key) throw new AppError('KEY_NOT_FOUND', 'No such recovery key');
      return { key };
    },
  };
}
