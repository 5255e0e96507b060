/**
 * Deny by default: every route must declare its permission when it is registered (or the app does
 * not start), and one onRequest hook authenticates the caller and enforces that permission.
 */
import type { FastifyRequest, RouteOptions } from 'fastify';
import { AppError } from '../../lib/errors.js';
import type { App } from '../../app-types.js';
import type { Authenticator } from './access.service.js';
import { hasPermission, isPermission, type RoutePermission } from './permissions.js';
import type { Principal, PrincipalKind } from './principal.js';

export const SESSION_COOKIE = 'bdv_session';
const DEFAULT_PRINCIPALS: readonly PrincipalKind[] = ['user', 'api-token'];

/** What the route table records about each route, for the permission walk and for docs. */
export interface RouteAccess {
  method: string;
  url: string;
  permission: RoutePermission | undefined;
  principals: readonly PrincipalKind[];
}

function declaredPermission(route: RouteOptions): RoutePermission | undefined {
  const permission = (route.config as { permission?: unknown } | undefined)?.permission;
  if (permission === 'public' || permission === 'authenticated') return permission;
  return typeof permission === 'string' && isPermission(permission) ? permission : undefined;
}

export function registerAccessControl(
  app: App,
  deps: { authenticator: Authenticator; routeTable: RouteAccess[] },
) {
  const { authenticator, routeTable } = deps;
  app.decorateRequest('principal', undefined);

  app.addHook('onRoute', (route) => {
    const permission = declaredPermission(route);
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      routeTable.push({
        method,
        url: route.url,
        permission,
        principals: route.config?.principals ?? DEFAULT_PRINCIPALS,
      });
    }
    if (permission === undefined) {
      throw new Error(`route ${methods.join(',')} ${route.url} declares no valid permission`);
    }
  });

  app.addHook('onRequest', async (request) => {
    if (request.is404) return;
    const config = request.routeOptions.config;
    const permission = config.permission;
    if (permission === undefined) throw new AppError('FORBIDDEN', 'This route is not available');
    if (permission === 'public') return;

    const principal = await authenticate(request, authenticator);
    if (!principal) throw new AppError('UNAUTHENTICATED', 'Sign in or present a valid token');
    const accepted = config.principals ?? DEFAULT_PRINCIPALS;
    if (!accepted.includes(principal.kind)) {
      throw new AppError(
        'FORBIDDEN',
        principal.kind === 'device'
          ? 'Device credentials are accepted on escrow routes only'
          : 'This route accepts device credentials only',
      );
    }
    if (principal.kind === 'user' && principal.mustChangePassword && !config.allowPendingPasswordChange) {
      throw new AppError(
        'PASSWORD_CHANGE_REQUIRED',
        'Change the one-time password before doing anything else',
      );
    }
    if (!config.allowSuspended) await authenticator.assertActive?.(principal, request.id);
    if (permission !== 'authenticated' && !hasPermission(principal.permissions, permission)) {
      throw new AppError('FORBIDDEN', `This action needs the ${permission} permission`);
    }
    request.principal = principal;
  });
}

async function authenticate(
  request: FastifyRequest,
  authenticator: Authenticator,
): Promise<Principal | undefined> {
  const header = request.headers.authorization;
  if (typeof header === 'string' && header.length > 0) {
    const match = /^Bearer ([\x21-\x7e]{1,200})$/.exec(header);
    return match ? authenticator.fromBearerToken(match[1]!) : undefined;
  }
  const cookie = request.cookies?.[SESSION_COOKIE];
  return cookie && cookie.length <= 200 ? authenticator.fromSessionToken(cookie) : undefined;
}

/** The principal of a route that is not public; the access hook guarantees it is set. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('UNAUTHENTICATED', 'Sign in or present a valid token');
  return request.principal;
}
