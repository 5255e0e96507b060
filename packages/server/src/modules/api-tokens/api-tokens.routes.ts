/** API tokens: create (value shown once), list, revoke. */
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { errorResponses } from '../../lib/schemas.js';
import { principalOf } from '../access/access.hooks.js';
import { createAccessRepo } from '../access/access.repo.js';
import { actorOf } from '../access/principal.js';
import { createApiTokensRepo } from './api-tokens.repo.js';
import {
  apiTokenParams,
  apiTokenSummary,
  createApiTokenBody,
  createdApiToken,
} from './api-tokens.schemas.js';
import { createApiTokensService } from './api-tokens.service.js';

export function registerApiTokensModule(app: App, deps: AppDeps) {
  const service = createApiTokensService({
    ...deps,
    apiTokensRepo: createApiTokensRepo(deps.db),
    accessRepo: createAccessRepo(deps.db),
  });

  app.route({
    method: 'POST',
    url: '/api/api-tokens',
    config: { permission: 'api-tokens:manage' },
    schema: {
      tags: ['api-tokens'],
      summary: 'Create an API token; its value is returned once',
      body: createApiTokenBody,
      response: { 201: createdApiToken, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      // A person's token acts as that person; a token minted by a service token is a service token.
      const person =
        principal.kind === 'user'
          ? principal.userId
          : principal.kind === 'api-token'
            ? principal.actingUserId
            : null;
      const kind = request.body.kind ?? (person === null ? 'service' : 'personal');
      const created = await service.createApiToken({
        organizationId: principal.organizationId,
        ...request.body,
        kind,
        creatorPermissions: principal.permissions,
        creatorLayers: principal.layers,
        actor: actorOf(principal),
        createdByUserId: person,
        requestId: request.id,
      });
      reply.header('cache-control', 'no-store');
      return reply.code(201).send(created);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/api-tokens',
    config: { permission: 'api-tokens:manage' },
    schema: {
      tags: ['api-tokens'],
      summary: "The organization's API tokens (never their values)",
      response: { 200: z.object({ apiTokens: z.array(apiTokenSummary) }), ...errorResponses(401, 403) },
    },
    handler: async (request) => ({
      apiTokens: await service.listApiTokens(principalOf(request).organizationId),
    }),
  });

  app.route({
    method: 'DELETE',
    url: '/api/api-tokens/:apiTokenId',
    config: { permission: 'api-tokens:manage' },
    schema: {
      tags: ['api-tokens'],
      summary: 'Revoke an API token',
      params: apiTokenParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      await service.revokeApiToken(
        principal.organizationId,
        request.params.apiTokenId,
        actorOf(principal),
        request.id,
      );
      return reply.code(204).send(null);
    },
  });
}
