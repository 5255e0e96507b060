/** The Fastify instance type every module registers on, and the per-route config it declares. */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Principal, PrincipalKind } from './modules/access/principal.js';
import type { RoutePermission } from './modules/access/permissions.js';

export type App = FastifyInstance<
  Server,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  ZodTypeProvider
>;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Required on every route; a route without one makes the app refuse to start. */
    permission?: RoutePermission;
    /** Which kinds of caller a route accepts; default user sessions and API tokens. */
    principals?: readonly PrincipalKind[];
    /** The few routes a user who must change the one-time password may still call. */
    allowPendingPasswordChange?: boolean;
    /**
     * The few routes an account suspended in its current organization may still call: who it is,
     * its organizations, moving to another one, ending its sessions. Suspension is per organization.
     */
    allowSuspended?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
  }
}
