/** SSO provider and LDAP directory configuration (administrators), and sign-in through them. */
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { Db } from '../../db/database.js';
import { AppError } from '../../lib/errors.js';
import { errorResponses } from '../../lib/schemas.js';
import { principalOf } from '../access/access.hooks.js';
import { actorOf } from '../access/principal.js';
import { signInResponse } from './identity.schemas.js';
import type { IdentityModuleDeps } from './identity.routes.js';
import { setSessionCookie, signInBodyOf, withRetryAfter } from './identity.routes.js';
import { createIdentityRepo } from './identity.repo.js';
import type { IdentityService } from './identity.service.js';
import { createSignInThrottle } from './sign-in-throttle.js';
import { createSsoRepo } from './sso.repo.js';
import {
  ldapDirectoryBody,
  ldapDirectoryResponse,
  ldapSignInBody,
  oidcCallbackQuery,
  oidcProviderBody,
  oidcProviderResponse,
  providersResponse,
  signInChoicesResponse,
  slugParams,
} from './sso.schemas.js';
import { createSsoService, OIDC_BINDING_COOKIE } from './sso.service.js';

/** What the SSO callback answers; `no-referrer` keeps the code and state out of the next request. */
const SIGNED_IN_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<meta http-equiv="refresh" content="0;url=/">
<title>Signed in</title>
</head>
<body><p>Signed in. <a href="/">Continue to bdevault</a></p></body>
</html>
`;

export function registerSsoRoutes(
  app: App,
  deps: IdentityModuleDeps & {
    identityService: IdentityService;
    authenticateLdap?: Parameters<typeof createSsoService>[0]['authenticateLdap'];
  },
) {
  const identityRepo = createIdentityRepo(deps.db, { sessionIdleMinutes: deps.identity.sessionIdleMinutes });
  const service = createSsoService({
    ...deps,
    ssoRepo: createSsoRepo(deps.db),
    throttle: createSignInThrottle({
      db: deps.db as Db,
      clock: deps.clock,
      identityRepo,
      settings: deps.identity,
    }),
  });
  const admin = { permission: 'org:admin' } as const;
  const tags = ['identity-providers'];

  app.route({
    method: 'GET',
    url: '/api/identity-providers',
    config: admin,
    schema: {
      tags,
      summary: "The organization's SSO providers and LDAP directories (secrets never returned)",
      response: { 200: providersResponse, ...errorResponses(401, 403) },
    },
    handler: async (request) => service.listProviders(principalOf(request).organizationId),
  });

  app.route({
    method: 'PUT',
    url: '/api/identity-providers/oidc/:provider',
    config: admin,
    schema: {
      tags,
      summary: 'Create or update an OpenID Connect provider',
      params: slugParams,
      body: oidcProviderBody,
      response: { 200: oidcProviderResponse, ...errorResponses(400, 401, 403, 409) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      return service.putOidcProvider(
        principal.organizationId,
        request.params.provider,
        request.body,
        actorOf(principal),
        request.id,
      );
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/identity-providers/oidc/:provider',
    config: admin,
    schema: {
      tags,
      summary: 'Remove an OpenID Connect provider',
      params: slugParams,
      response: { 204: z.null(), ...errorResponses(401, 403, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      await service.deleteOidcProvider(
        principal.organizationId,
        request.params.provider,
        actorOf(principal),
        request.id,
      );
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'PUT',
    url: '/api/identity-providers/ldap/:provider',
    config: admin,
    schema: {
      tags,
      summary: 'Create or update an LDAP / Active Directory sign-in directory',
      params: slugParams,
      body: ldapDirectoryBody,
      response: { 200: ldapDirectoryResponse, ...errorResponses(400, 401, 403, 409) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      return service.putLdapDirectory(
        principal.organizationId,
        request.params.provider,
        request.body,
        actorOf(principal),
        request.id,
      );
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/identity-providers/ldap/:provider',
    config: admin,
    schema: {
      tags,
      summary: 'Remove an LDAP directory',
      params: slugParams,
      response: { 204: z.null(), ...errorResponses(401, 403, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      await service.deleteLdapDirectory(
        principal.organizationId,
        request.params.provider,
        actorOf(principal),
        request.id,
      );
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/auth/providers',
    config: { permission: 'public', rateLimit: { max: 60, timeWindow: '1 minute' } },
    schema: {
      tags: ['auth'],
      summary: 'The SSO providers and directories people can sign in with (names and kinds only)',
      response: { 200: signInChoicesResponse, ...errorResponses(429) },
    },
    handler: async () => service.signInChoices(),
  });

  app.route({
    method: 'GET',
    url: '/api/auth/oidc/:provider/start',
    config: { permission: 'public', rateLimit: { max: 30, timeWindow: '1 minute' } },
    schema: {
      tags: ['auth'],
      summary: 'Start single sign-on: redirects to the identity provider',
      params: slugParams,
      response: { 302: z.null(), ...errorResponses(404, 429, 503) },
    },
    handler: async (request, reply) => {
      const started = await service.startOidc(request.params.provider);
      // Lax, not Strict: it must come back on the top-level redirect from the identity provider.
      reply.setCookie(OIDC_BINDING_COOKIE, started.binding, {
        httpOnly: true,
        sameSite: 'lax',
        secure: request.protocol === 'https' || deps.identity.publicUrl?.startsWith('https:') === true,
        path: '/api/auth/oidc',
        maxAge: 600,
      });
      return reply.redirect(started.url, 302);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/auth/oidc/:provider/callback',
    config: { permission: 'public', rateLimit: { max: 30, timeWindow: '1 minute' } },
    schema: {
      tags: ['auth'],
      summary:
        'Where the identity provider returns; sets the session cookie and answers a page that moves on to the portal',
      params: slugParams,
      querystring: oidcCallbackQuery,
      response: {
        200: z.string().describe('A small HTML page that refreshes to the portal'),
        ...errorResponses(400, 401, 404, 409, 429, 503),
      },
    },
    handler: async (request, reply) => {
      if (request.query.error !== undefined) {
        throw new AppError('INVALID_CREDENTIALS', 'The identity provider refused the sign-in');
      }
      const result = await service.finishOidc(
        request.params.provider,
        request.url,
        request.query.state,
        request.cookies[OIDC_BINDING_COOKIE],
        { requestId: request.id, address: request.ip },
      );
      reply.clearCookie(OIDC_BINDING_COOKIE, { path: '/api/auth/oidc' });
      setSessionCookie(request, reply, deps.identity, result.sessionToken, result.expiresAt);
      // A page, not a redirect: this request came from the identity provider's site, and browsers
      // treat a redirect chain that started cross-site as cross-site, so the SameSite=Strict cookie
      // would be missing from the portal's first request. A same-site refresh carries it. No
      // script (the CSP forbids inline script); the portal then reads /api/auth/session for the
      // state (an MFA step may still be owed).
      return reply
        .header('cache-control', 'no-store')
        .type('text/html; charset=utf-8')
        .serializer((payload) => String(payload))
        .send(SIGNED_IN_PAGE);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/auth/ldap/:provider/sign-in',
    config: { permission: 'public', rateLimit: { max: 10, timeWindow: '1 minute' } },
    schema: {
      tags: ['auth'],
      summary: 'Sign in with a directory (LDAP / Active Directory) account; sets the session cookie',
      params: slugParams,
      body: ldapSignInBody,
      response: { 200: signInResponse, ...errorResponses(400, 401, 404, 409, 429, 503) },
    },
    handler: async (request, reply) => {
      const result = await service
        .signInLdap(request.params.provider, request.body.username, request.body.password, {
          requestId: request.id,
          address: request.ip,
        })
        .catch((err: unknown) => withRetryAfter(reply, err));
      setSessionCookie(request, reply, deps.identity, result.sessionToken, result.expiresAt);
      return signInBodyOf(result);
    },
  });

  return service;
}
