/**
 * What identity needs from the access module (roles), as narrow interfaces: which permissions a
 * user holds (for the MFA policy) and where the groups of an SSO / LDAP sign-in go (group → role
 * mapping is the access module's, through role assignments to external groups).
 */
import type { Executor } from '../../db/database.js';
import type { AppDeps } from '../../deps.js';
import { buildAccessAdminService } from '../access/access.routes.js';

export interface ExternalGroupAccess {
  /** Records the groups a person signed in with, replacing earlier ones; inside the sign-in transaction. */
  applyExternalGroups(
    input: { organizationId: string; userId: string; groups: readonly string[] },
    trx: Executor,
  ): Promise<void>;
}

export interface PermissionLookup {
  /** The permissions a user can use somewhere in an organization. */
  permissionsOf(organizationId: string, userId: string, trx?: Executor): Promise<readonly string[]>;
}

/** Both, from the access module's administration service. */
export function accessIntegration(deps: AppDeps): {
  permissionLookup: PermissionLookup;
  externalGroupAccess: ExternalGroupAccess;
} {
  const access = buildAccessAdminService(deps);
  return {
    permissionLookup: {
      permissionsOf: (organizationId, userId, trx) => access.permissionsOf(organizationId, userId, trx),
    },
    externalGroupAccess: {
      applyExternalGroups: ({ organizationId, userId, groups }, trx) =>
        access.setExternalGroups(organizationId, userId, groups, trx),
    },
  };
}

export { canDiscloseKeys } from '../access/permissions.js';
