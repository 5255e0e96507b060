/** Builds the Fastify application: cross-cutting plugins, access control, then each module. */
import fastifyCookie from '@fastify/cookie';
import fastifyHelmet from '@fastify/helmet';
import fastifyRateLimit from '@fastify/rate-limit';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { App } from './app-types.js';
import type { AppDeps } from './deps.js';
import type { Config } from './lib/config.js';
import { handleError } from './lib/error-handler.js';
import { closeHttp2SessionsOnClose, serverOptions } from './lib/http-server.js';
import { AppError, errorBody } from './lib/errors.js';
import { base32 } from './lib/ids.js';
import { loggerOptions } from './lib/logger.js';
import { registerAccessControl, type RouteAccess } from './modules/access/access.hooks.js';
import { buildAccess } from './modules/access/access.build.js';
import { createAccessRepo } from './modules/access/access.repo.js';
import { registerAccessModule } from './modules/access/access.routes.js';
import { createAuthenticator } from './modules/access/access.service.js';
import { databaseRateLimitStore } from './modules/access/rate-limit-store.js';
import { createApiTokensRepo } from './modules/api-tokens/api-tokens.repo.js';
import { registerApiTokensModule } from './modules/api-tokens/api-tokens.routes.js';
import { registerAuditModule } from './modules/audit/audit.routes.js';
import { registerDevicesModule } from './modules/devices/devices.routes.js';
import { registerDirectoryImportModule } from './modules/directory-import/directory-import.routes.js';
import { createEscrowRepo } from './modules/escrow/escrow.repo.js';
import { registerEscrowModule } from './modules/escrow/escrow.routes.js';
import { registerGraphCompatModule } from './modules/graph-compat/graph-compat.routes.js';
import { registerOAuthTokenRoutes } from './modules/graph-compat/oauth-token.routes.js';
import { registerHealthModule } from './modules/health/health.routes.js';
import { createIdentityRepo } from './modules/identity/identity.repo.js';
import { registerCsrfProtection } from './modules/identity/csrf.js';
import { registerIdentityModule } from './modules/identity/identity.routes.js';
import { registerInvitationsModule } from './modules/invitations/invitations.routes.js';
import { registerKeyExportModule } from './modules/key-export/key-export.routes.js';
import { registerNotificationsModule } from './modules/notifications/notifications.routes.js';
import { registerReportsModule } from './modules/reports/reports.routes.js';
import { registerRecoveryCasesModule } from './modules/recovery-cases/recovery-cases.routes.js';
import { registerRecoveryKeysModule } from './modules/recovery-keys/recovery-keys.routes.js';
import { registerRotationModule } from './modules/rotation/rotation.routes.js';
import { registerSelfServiceModule } from './modules/self-service/self-service.routes.js';
import { registerWebModule } from './modules/web/web.routes.js';

export type AppConfig = Pick<Config, 'logLevel' | 'bodyLimitBytes' | 'sessionTtlMinutes' | 'identity'> &
  Partial<Pick<Config, 'tls' | 'trustProxy' | 'webRoot'>>;

const routeTables = new WeakMap<object, RouteAccess[]>();

/** Every route with its declared permission, as registered (for the permission walk and docs). */
export function routeTableOf(app: App): readonly RouteAccess[] {
  return routeTables.get(app) ?? [];
}

export async function buildApp(config: AppConfig, deps: AppDeps): Promise<App> {
  const app = Fastify({
    logger: config.logLevel === 'silent' ? false : loggerOptions(config.logLevel),
    bodyLimit: config.bodyLimitBytes,
    genReqId: () => `req_${base32(deps.random.bytes(10))}`,
    requestIdHeader: false,
    // TLS makes this an HTTP/2 (+HTTP/1.1) server; modules only register routes, so they keep the
    // HTTP/1 instance type, which the compatibility request/response objects satisfy at run time.
    ...(serverOptions(config) as { trustProxy: string[] | false }),
  }).withTypeProvider<ZodTypeProvider>();
  if (config.tls) closeHttp2SessionsOnClose(app);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(handleError);
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(errorBody('NOT_FOUND', 'No such route', request.id)),
  );
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  // Cookies are parsed in an onRequest hook that must run before the access hook reads them.
  await app.register(fastifyCookie);
  const routeTable: RouteAccess[] = [];
  routeTables.set(app, routeTable);
  // The documentation UI's own routes are registered by its plugin; they are public by decision here.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/api/docs')) route.config = { ...route.config, permission: 'public' };
  });
  registerAccessControl(app, {
    routeTable,
    authenticator: createAuthenticator({
      ...deps,
      identityRepo: createIdentityRepo(deps.db, { sessionIdleMinutes: config.identity.sessionIdleMinutes }),
      apiTokensRepo: createApiTokensRepo(deps.db),
      escrowRepo: createEscrowRepo(deps.db),
      ...buildAccess(deps),
    }),
  });
  // After authentication: a cookie-authenticated change must carry the session's CSRF token.
  registerCsrfProtection(app);

  await app.register(fastifyHelmet, { global: true });
  await app.register(fastifyRateLimit, {
    global: false,
    // Counted in the database, so several servers share one budget per route and client.
    store: databaseRateLimitStore({ ...deps, accessRepo: createAccessRepo(deps.db) }),
    errorResponseBuilder: () => new AppError('RATE_LIMITED', 'Too many requests; try again later'),
  });
  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'bdevault API', version: '0.1.0', description: 'BitLocker recovery key vault' },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          session: { type: 'apiKey', in: 'cookie', name: 'bdv_session' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/api/docs', staticCSP: true });

  app.route({
    method: 'GET',
    url: '/api/openapi.json',
    config: { permission: 'public' },
    schema: { hide: true, response: { 200: z.unknown() } },
    handler: async () => app.swagger(),
  });
  registerHealthModule(app, deps);
  registerIdentityModule(app, {
    ...deps,
    sessionTtlMinutes: config.sessionTtlMinutes,
    identity: config.identity,
  });
  registerAccessModule(app, deps);
  registerInvitationsModule(app, deps);
  registerApiTokensModule(app, deps);
  registerDevicesModule(app, deps);
  registerRecoveryKeysModule(app, deps);
  registerSelfServiceModule(app, deps);
  registerRecoveryCasesModule(app, deps);
  registerEscrowModule(app, deps);
  registerRotationModule(app, deps);
  registerAuditModule(app, deps);
  registerGraphCompatModule(app, deps);
  registerOAuthTokenRoutes(app, deps);
  registerDirectoryImportModule(app, deps);
  registerKeyExportModule(app, deps);
  registerNotificationsModule(app, deps);
  registerReportsModule(app, deps);
  registerWebModule(app, { webRoot: config.webRoot });
  return app;
}
