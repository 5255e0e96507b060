/**
 * OAuth 2.0 client-credentials token endpoint, so Graph SDKs configured with a custom environment can
 * sign in. The client is a bdevault API token: `client_id` is its id (`tok_…`), `client_secret` the
 * token itself. The access token issued is that same API token, so nothing new is minted, stored
 * or left to expire separately: revoking the API token ends access at once.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { classifyError, setRetryAfter } from '../../lib/error-handler.js';
import { codeToStatus } from '../../lib/errors.js';
import { parseToken } from '../../lib/tokens.js';
import { buildAccess } from '../access/access.build.js';
import { createAuthenticator } from '../access/access.service.js';
import { createApiTokensRepo } from '../api-tokens/api-tokens.repo.js';
import { createEscrowRepo } from '../escrow/escrow.repo.js';
import { createIdentityRepo } from '../identity/identity.repo.js';

/** Lifetime announced when the API token itself never expires: clients come back hourly, as with Entra. */
const DEFAULT_EXPIRES_IN = 3600;
const FORM = 'application/x-www-form-urlencoded';

/**
 * Not strict on purpose: RFC 6749 §3.2 says a token endpoint MUST ignore parameters it does not
 * know, and MSAL sends several (client_info, x-client-*). Every value is still bounded.
 */
const tokenBody = z
  .record(z.string().max(64), z.string().max(1024))
  .refine((body) => Object.keys(body).length <= 30, 'too many parameters')
  .pipe(
    z.object({
      grant_type: z.string().max(64).optional(),
      client_id: z.string().max(64).optional(),
      client_secret: z.string().max(256).optional(),
      scope: z.string().max(1024).optional(),
    }),
  );

const tenantParams = z.strictObject({ tenant: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/) });

const tokenResponse = z.object({
  token_type: z.literal('Bearer'),
  expires_in: z.number().int(),
  ext_expires_in: z.number().int(),
  access_token: z.string(),
});

const oauthError = z.object({ error: z.string(), error_description: z.string(), trace_id: z.string() });

class OAuthError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly description: string,
  ) {
    super(description);
  }
}

function sendOAuthError(reply: FastifyReply, request: FastifyRequest, err: OAuthError) {
  if (err.error === 'invalid_client') reply.header('www-authenticate', 'Basic realm="bdevault"');
  return reply
    .code(err.status)
    .header('cache-control', 'no-store')
    .send({ error: err.error, error_description: err.description, trace_id: request.id });
}

/** client_secret_basic (RFC 6749 §2.3.1): `Basic base64(urlencode(id):urlencode(secret))`. */
function basicCredentials(request: FastifyRequest): { id: string; secret: string } | undefined {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Basic ([A-Za-z0-9+/=]{1,600})$/.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  try {
    return {
      id: decodeURIComponent(decoded.slice(0, colon)),
      secret: decodeURIComponent(decoded.slice(colon + 1)),
    };
  } catch {
    return undefined;
  }
}

export function registerOAuthTokenRoutes(app: App, deps: AppDeps) {
  const apiTokensRepo = createApiTokensRepo(deps.db);
  // Built exactly as the access hook builds it, so a client authenticates here as it would there.
  const authenticator = createAuthenticator({
    ...deps,
    identityRepo: createIdentityRepo(deps.db),
    apiTokensRepo,
    escrowRepo: createEscrowRepo(deps.db),
    ...buildAccess(deps),
  });

  async function issue(request: FastifyRequest, body: z.infer<typeof tokenBody>, tenant: string | undefined) {
    if (body.grant_type !== 'client_credentials') {
      throw new OAuthError(400, 'unsupported_grant_type', 'Only grant_type=client_credentials is supported');
    }
    // Graph SDKs ask for `<graph endpoint>/.default`; what the token may do comes from its permissions.
    const scopes = (body.scope ?? '').split(' ').filter((s) => s.length > 0);
    if (scopes.length !== 1 || !scopes[0]!.endsWith('/.default')) {
      throw new OAuthError(400, 'invalid_scope', 'Request the single scope <graph endpoint>/.default');
    }
    const basic = basicCredentials(request);
    const clientId = basic?.id ?? body.client_id;
    const secret = basic?.secret ?? body.client_secret;
    if (clientId === undefined || secret === undefined) {
      throw new OAuthError(401, 'invalid_client', 'Client authentication failed');
    }
    const principal =
      parseToken(secret)?.kind === 'apiToken' ? await authenticator.fromBearerToken(secret) : undefined;
    // One answer for every mismatch, so the endpoint tells nothing about which part was wrong.
    if (
      principal?.kind !== 'api-token' ||
      principal.apiTokenId !== clientId ||
      (tenant !== undefined && tenant.startsWith('org_') && tenant !== principal.organizationId)
    ) {
      throw new OAuthError(401, 'invalid_client', 'Client authentication failed');
    }
    // A suspended account gets no token, as it gets no access (the refusal is audited there).
    await authenticator.assertActive?.(principal, request.id);
    const row = await apiTokensRepo.findByLookupPrefix(parseToken(secret)!.lookupPrefix);
    const now = deps.clock.now().getTime();
    const expiresIn =
      row?.expires_at == null
        ? DEFAULT_EXPIRES_IN
        : Math.max(1, Math.min(DEFAULT_EXPIRES_IN, Math.floor((Date.parse(row.expires_at) - now) / 1000)));
    return {
      token_type: 'Bearer' as const,
      expires_in: expiresIn,
      ext_expires_in: expiresIn,
      access_token: secret,
    };
  }

  const register = async (scope: App) => {
    // RFC 6749 §4.4.2: form encoding only; a JSON body is refused rather than half-understood.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(FORM, { parseAs: 'string', bodyLimit: 16 * 1024 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    scope.setErrorHandler((err, request, reply) => {
      if (err instanceof OAuthError) return sendOAuthError(reply, request, err);
      const { code, details } = classifyError(err);
      const status = codeToStatus[code];
      if (status >= 500) {
        request.log.error({ err, code }, 'token request failed');
        setRetryAfter(reply, code, details);
        return sendOAuthError(
          reply,
          request,
          status === 503
            ? new OAuthError(503, 'temporarily_unavailable', 'The service is unavailable; try again shortly')
            : new OAuthError(500, 'server_error', 'Internal error'),
        );
      }
      if (status === 429) {
        return sendOAuthError(
          reply,
          request,
          new OAuthError(429, 'temporarily_unavailable', 'Too many requests'),
        );
      }
      return sendOAuthError(
        reply,
        request,
        new OAuthError(400, 'invalid_request', 'The token request is not valid'),
      );
    });
    const common = {
      config: { permission: 'public' as const, rateLimit: { max: 60, timeWindow: '1 minute' } },
    };
    scope.route({
      method: 'POST',
      url: '/oauth2/v2.0/token',
      ...common,
      schema: {
        tags: ['graph-compat'],
        summary: 'OAuth 2.0 client credentials: API token id and secret for a Bearer token',
        consumes: [FORM],
        body: tokenBody,
        response: { 200: tokenResponse, 400: oauthError, 401: oauthError, 429: oauthError, 500: oauthError },
      },
      handler: async (request, reply) => {
        reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
        return issue(request, request.body, undefined);
      },
    });
    scope.route({
      method: 'POST',
      url: '/:tenant/oauth2/v2.0/token',
      ...common,
      schema: {
        tags: ['graph-compat'],
        summary: 'OAuth 2.0 client credentials with a tenant (an organization id, or any name)',
        consumes: [FORM],
        params: tenantParams,
        body: tokenBody,
        response: { 200: tokenResponse, 400: oauthError, 401: oauthError, 429: oauthError, 500: oauthError },
      },
      handler: async (request, reply) => {
        reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
        return issue(request, request.body, request.params.tenant);
      },
    });
  };
  void app.register(register);
}
