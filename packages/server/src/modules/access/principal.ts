/** Who is calling: the authenticated principal attached to a request, one of three kinds. */
import type { GrantLayer } from './permissions.js';

export type PrincipalKind = 'user' | 'api-token' | 'device';

interface PrincipalBase {
  organizationId: string;
  /** Permissions usable somewhere (route-level check); a device holds `escrow:write` only. */
  permissions: readonly string[];
  /** Where they apply, as layers that intersect (see decideScope); the access service reads these. */
  layers: readonly GrantLayer[];
  /**
   * An active suspension of the account, when authentication already read it with the credential
   * (null: none); undefined when it did not, and the access hook reads it.
   */
  suspensionId?: string | null;
}

export interface UserPrincipal extends PrincipalBase {
  kind: 'user';
  userId: string;
  sessionId: string;
  mustChangePassword: boolean;
}

export interface ApiTokenPrincipal extends PrincipalBase {
  kind: 'api-token';
  apiTokenId: string;
  /** A personal token's user, whose current rights bound it; null for a service token. */
  actingUserId: string | null;
}

export interface DevicePrincipal extends PrincipalBase {
  kind: 'device';
  deviceId: string;
  deviceCredentialId: string;
}

export type Principal = UserPrincipal | ApiTokenPrincipal | DevicePrincipal;

/** The audit actor for a principal. */
export function actorOf(principal: Principal): { type: PrincipalKind; id: string } {
  switch (principal.kind) {
    case 'user':
      return { type: 'user', id: principal.userId };
    case 'api-token':
      return { type: 'api-token', id: principal.apiTokenId };
    case 'device':
      return { type: 'device', id: principal.deviceId };
  }
}
