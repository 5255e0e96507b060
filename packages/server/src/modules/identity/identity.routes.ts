/** Sign-in, sessions (state, sign-out, sign-out everywhere), the caller's own account, and user admin. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { Db } from '../../db/database.js';
import type { SessionState } from '../../db/schema.js';
import type { AppDeps } from '../../deps.js';
import type { IdentityConfig } from '../../lib/config.js';
import { AppError, isAppError } from '../../lib/errors.js';
import { errorResponses } from '../../lib/schemas.js';
import { principalOf, SESSION_COOKIE } from '../access/access.hooks.js';
import { actorOf, type UserPrincipal } from '../access/principal.js';
import { createOrganizationsRepo } from '../organizations/organizations.repo.js';
import { accessIntegration, type ExternalGroupAccess, type PermissionLookup } from './access-integration.js';
import { assertCsrf, csrfTokenFor } from './csrf.js';
import { createIdentityRepo } from './identity.repo.js';
import {
  changePasswordBody,
  createdUserResponse,
  createUserBody,
  updateUserBody,
  meResponse,
  mfaPolicyBody,
  mfaPolicyResponse,
  oneTimePasswordResponse,
  revokedResponse,
  sessionResponse,
  signInBody,
  signInResponse,
  userIdParams,
  userListResponse,
} from './identity.schemas.js';
import { createIdentityService, type IdentityService, type SignInResult } from './identity.service.js';
import { createMfaRepo } from './mfa.repo.js';
import { registerMfaRoutes } from './mfa.routes.js';
import { createSignInThrottle } from './sign-in-throttle.js';
import { registerSsoRoutes } from './sso.routes.js';

export interface IdentityModuleDeps extends AppDeps {
  sessionTtlMinutes: number;
  identity: IdentityConfig;
  /** Replace the access module's implementations (tests, other deployments). */
  permissionLookup?: PermissionLookup;
  externalGroupAccess?: ExternalGroupAccess;
}

/** The identity service with its repositories and throttle, for the app and the CLI. */
export function buildIdentityService(
  deps: AppDeps & {
    sessionTtlMinutes: number;
    identity: IdentityConfig;
    permissionLookup?: PermissionLookup | undefined;
    externalGroupAccess?: ExternalGroupAccess | undefined;
  },
): IdentityService {
  const identityRepo = createIdentityRepo(deps.db, { sessionIdleMinutes: deps.identity.sessionIdleMinutes });
  return createIdentityService({
    ...deps,
    identityRepo,
    mfaRepo: createMfaRepo(deps.db),
    organizationsRepo: createOrganizationsRepo(deps.db),
    throttle: createSignInThrottle({
      db: deps.db as Db,
      clock: deps.clock,
      identityRepo,
      settings: deps.identity,
    }),
    ...accessIntegration(deps),
    ...(deps.permissionLookup ? { permissionLookup: deps.permissionLookup } : {}),
    ...(deps.externalGroupAccess ? { externalGroupAccess: deps.externalGroupAccess } : {}),
  });
}

/** Sets the session cookie: HttpOnly, SameSite=Strict, Secure under TLS (or an https public URL). */
export function setSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  identity: IdentityConfig,
  token: string,
  expiresAt: string,
) {
  reply.setCookie(SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: 'strict',
    secure: request.protocol === 'https' || identity.publicUrl?.startsWith('https:') === true,
    path: '/',
    expires: new Date(expiresAt),
  });
}

export function signInBodyOf(result: SignInResult) {
  return {
    userId: result.userId,
    username: result.username,
    organizationId: result.organizationId,
    expiresAt: result.expiresAt,
    mustChangePassword: result.mustChangePassword,
    state: result.state,
    mfaMethods: result.mfaMethods,
    csrfToken: result.csrfToken,
  };
}

/** Sends SIGN_IN_LOCKED with a Retry-After header the error handler passes on. */
export function withRetryAfter(reply: FastifyReply, err: unknown): never {
  if (isAppError(err, 'SIGN_IN_LOCKED')) {
    const seconds = (err.details as { retryAfterSeconds?: number } | undefined)?.retryAfterSeconds;
    if (seconds !== undefined) reply.header('retry-after', String(seconds));
  }
  throw err;
}

/** The cookie session for a route that runs before MFA is done (public to the access hook). */
export async function cookieSession(
  request: FastifyRequest,
  service: IdentityService,
  states: readonly SessionState[],
) {
  const token = request.cookies?.[SESSION_COOKIE];
  if (!token || token.length > 200) throw new AppError('UNAUTHENTICATED', 'Sign in first');
  assertCsrf(request);
  return { token, session: await service.sessionInState(token, states) };
}

function userPrincipalOf(request: FastifyRequest): UserPrincipal {
  const principal = principalOf(request);
  if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'This route is for people signed in');
  return principal;
}

export function registerIdentityModule(app: App, deps: IdentityModuleDeps) {
  const service = buildIdentityService(deps);
  const { identity } = deps;
  const userSession = { permission: 'authenticated', principals: ['user'] } as const;

  app.route({
    method: 'POST',
    url: '/api/auth/sign-in',
    config: { permission: 'public', rateLimit: { max: 10, timeWindow: '1 minute' } },
    schema: {
      tags: ['auth'],
      summary: 'Sign in with a local account; sets the session cookie (MFA may still be owed)',
      body: signInBody,
      response: { 200: signInResponse, ...errorResponses(400, 401, 429) },
    },
    handler: async (request, reply) => {
      const result = await service
        .signIn(request.body.username, request.body.password, { requestId: request.id, address: request.ip })
        .catch((err: unknown) => withRetryAfter(reply, err));
      setSessionCookie(request, reply, identity, result.sessionToken, result.expiresAt);
      return signInBodyOf(result);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/auth/session',
    config: { permission: 'public' },
    schema: {
      tags: ['auth'],
      summary: "The cookie session's state and CSRF token (also before MFA is done)",
      response: { 200: sessionResponse, ...errorResponses(401) },
    },
    handler: async (request) => {
      const { token, session } = await cookieSession(request, service, [
        'active',
        'mfa-pending',
        'mfa-enrollment-required',
      ]);
      return {
        userId: session.user_id,
        organizationId: session.organization_id,
        state: session.state,
        expiresAt: session.expires_at,
        csrfToken: csrfTokenFor(token),
      };
    },
  });

  app.route({
    method: 'POST',
    url: '/api/auth/sign-out',
    config: { permission: 'public' },
    schema: {
      tags: ['auth'],
      summary: 'End the current session (also one still owing MFA)',
      response: { 204: z.null(), ...errorResponses(401, 403) },
    },
    handler: async (request, reply) => {
      const { session } = await cookieSession(request, service, [
        'active',
        'mfa-pending',
        'mfa-enrollment-required',
      ]);
      await service.signOut(session.id);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/auth/sign-out-everywhere',
    config: { ...userSession, allowPendingPasswordChange: true, allowSuspended: true },
    schema: {
      tags: ['auth'],
      summary: 'End every session of your account, this one included',
      response: { 200: revokedResponse, ...errorResponses(401, 403) },
    },
    handler: async (request, reply) => {
      const principal = userPrincipalOf(request);
      const revoked = await service.signOutEverywhere(principal.userId, principal.organizationId, request.id);
      reply.clearCookie(SESSION_COOKIE, { path: '/' });
      return { revoked };
    },
  });

  app.route({
    method: 'POST',
    url: '/api/auth/change-password',
    config: { ...userSession, allowPendingPasswordChange: true },
    schema: {
      tags: ['auth'],
      summary: 'Change your own password (required after a one-time password)',
      body: changePasswordBody,
      response: { 204: z.null(), ...errorResponses(400, 401, 403) },
    },
    handler: async (request, reply) => {
      const principal = userPrincipalOf(request);
      await service.changePassword(
        principal.userId,
        request.body.currentPassword,
        request.body.newPassword,
        request.id,
      );
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/auth/me',
    // Also while suspended, so the portal still loads and can offer another organization.
    config: { ...userSession, allowPendingPasswordChange: true, allowSuspended: true },
    schema: {
      tags: ['auth'],
      summary: 'The signed-in account',
      response: { 200: meResponse, ...errorResponses(401) },
    },
    handler: async (request) => {
      const principal = userPrincipalOf(request);
      const user = await service.describeUser(principal.userId);
      return { ...user, organizationId: principal.organizationId, permissions: [...principal.permissions] };
    },
  });

  app.route({
    method: 'GET',
    url: '/api/users',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['users'],
      summary: "The organization's users",
      response: { 200: userListResponse, ...errorResponses(401, 403) },
    },
    handler: async (request) => ({ users: await service.listUsers(principalOf(request).organizationId) }),
  });

  app.route({
    method: 'POST',
    url: '/api/users',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['users'],
      summary:
        'Create a local user; the one-time password is shown once and must be changed at first sign-in',
      body: createUserBody,
      response: { 201: createdUserResponse, ...errorResponses(400, 401, 403, 409) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const created = await service.createUser({
        organizationId: principal.organizationId,
        username: request.body.username,
        displayName: request.body.displayName,
        email: request.body.email,
        permissions: request.body.permissions,
        creatorPermissions: principal.permissions,
        actor: actorOf(principal),
        requestId: request.id,
      });
      return reply.code(201).send({ userId: created.userId, oneTimePassword: created.oneTimePassword! });
    },
  });

  app.route({
    method: 'PATCH',
    url: '/api/users/:id',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['users'],
      summary:
        "Change a user's display name or e-mail address (identity codes and notices go there); the account's home organization only",
      params: userIdParams,
      body: updateUserBody,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      await service.updateUserProfile(
        principal.organizationId,
        request.params.id,
        request.body,
        actorOf(principal),
        request.id,
      );
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/users/:id/reset-password',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['users'],
      summary:
        "Reset a user's password to a one-time password (shown once); their sessions end. The account's home organization only",
      params: userIdParams,
      response: { 200: oneTimePasswordResponse, ...errorResponses(401, 403, 404, 409) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      return service.resetPassword(
        principal.organizationId,
        request.params.id,
        actorOf(principal),
        request.id,
      );
    },
  });

  for (const [action, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    app.route({
      method: 'POST',
      url: `/api/users/:id/${action}`,
      config: { permission: 'org:admin' },
      schema: {
        tags: ['users'],
        summary: disabled
          ? "Disable a user's account and end their sessions; the account's home organization only"
          : "Re-enable a disabled account; the account's home organization only",
        params: userIdParams,
        response: { 204: z.null(), ...errorResponses(401, 403, 404, 409) },
      },
      handler: async (request, reply) => {
        const principal = principalOf(request);
        await service.setUserDisabled(
          principal.organizationId,
          request.params.id,
          disabled,
          actorOf(principal),
          request.id,
        );
        return reply.code(204).send(null);
      },
    });
  }

  app.route({
    method: 'POST',
    url: '/api/users/:id/revoke-sessions',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['users'],
      summary: "End every session of a user's account; the account's home organization only",
      params: userIdParams,
      response: { 200: revokedResponse, ...errorResponses(401, 403, 404, 409) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      const revoked = await service.revokeUserSessions(
        principal.organizationId,
        request.params.id,
        actorOf(principal),
        request.id,
      );
      return { revoked };
    },
  });

  app.route({
    method: 'GET',
    url: '/api/auth/mfa-policy',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['auth'],
      summary: "The organization's MFA policy",
      response: { 200: mfaPolicyResponse, ...errorResponses(401, 403) },
    },
    handler: async (request) => service.mfaPolicy(principalOf(request).organizationId),
  });

  app.route({
    method: 'PUT',
    url: '/api/auth/mfa-policy',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['auth'],
      summary: 'Require MFA of everyone who can disclose keys (new sign-ins)',
      body: mfaPolicyBody,
      response: { 200: mfaPolicyResponse, ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      return service.setMfaPolicy(
        principal.organizationId,
        request.body.requireMfaForDisclosure,
        actorOf(principal),
        request.id,
      );
    },
  });

  registerMfaRoutes(app, { ...deps, identityService: service });
  registerSsoRoutes(app, { ...deps, identityService: service });
  return service;
}
