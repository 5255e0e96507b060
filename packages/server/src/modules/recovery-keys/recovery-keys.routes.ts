/** Recovery-key lookup by key id, 8-digit prefix or device; disclosure as a separate audited POST. */
import { parseKeyId, parseKeyIdPrefix } from '@bdevault/bde';
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { errorResponses } from '../../lib/schemas.js';
import { principalOf } from '../access/access.hooks.js';
import { actorOf } from '../access/principal.js';
import { AppError } from '../../lib/errors.js';
import { buildAccess, buildRecoveryKeysService } from '../access/access.build.js';
import { accountOf } from '../access/access.service.js';
import { hasPermission, intersectScopes } from '../access/permissions.js';
import {
  discloseBody,
  discloseResponse,
  lookupQuery,
  recoveryKeyMetadata,
  recoveryKeyParams,
} from './recovery-keys.schemas.js';

export function registerRecoveryKeysModule(app: App, deps: AppDeps) {
  const service = buildRecoveryKeysService(deps);
  const { authorizer } = buildAccess(deps);

  app.route({
    method: 'GET',
    url: '/api/recovery-keys',
    config: { permission: 'keys:read-metadata' },
    schema: {
      tags: ['recovery-keys'],
      summary: 'Find recovery keys (metadata only) by full key id, first 8 hex digits, or device',
      querystring: lookupQuery,
      response: {
        200: z.object({ recoveryKeys: z.array(recoveryKeyMetadata) }),
        ...errorResponses(400, 401, 403),
      },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      const { keyId, keyIdPrefix, deviceId, limit } = request.query;
      // Without a device the caller is searching the vault by key id alone: a separate right.
      if (deviceId === undefined && !hasPermission(principal.permissions, 'keys:lookup-by-id')) {
        throw new AppError(
          'FORBIDDEN',
          'Looking a key up without its device needs the keys:lookup-by-id permission',
        );
      }
      const filter = {
        ...(keyId === undefined ? {} : { keyId: parseKeyId(keyId) }),
        ...(keyIdPrefix === undefined ? {} : { keyIdPrefix: parseKeyIdPrefix(keyIdPrefix) }),
        ...(deviceId === undefined ? {} : { deviceId }),
      };
      const readable = authorizer.scopeOf(principal, 'keys:read-metadata');
      // A search by key id alone reaches only devices where the caller holds keys:lookup-by-id too:
      // lookup-by-id scoped to one group must not become a vault-wide search through a wider reader role.
      const scope =
        deviceId === undefined
          ? intersectScopes(readable, authorizer.scopeOf(principal, 'keys:lookup-by-id'))
          : readable;
      return {
        recoveryKeys: await service.lookupRecoveryKeys(principal.organizationId, filter, limit, scope),
      };
    },
  });

  app.route({
    method: 'GET',
    url: '/api/recovery-keys/:recoveryKeyId',
    config: { permission: 'keys:read-metadata' },
    schema: {
      tags: ['recovery-keys'],
      summary: 'One recovery key (metadata only)',
      params: recoveryKeyParams,
      response: { 200: recoveryKeyMetadata, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      return service.getRecoveryKey(
        principal.organizationId,
        request.params.recoveryKeyId,
        authorizer.scopeOf(principal, 'keys:read-metadata'),
      );
    },
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-keys/:recoveryKeyId/disclose',
    // Rate limits live in the disclosure service (database counters shared by every instance).
    config: { permission: 'keys:disclose' },
    schema: {
      tags: ['recovery-keys'],
      summary: 'Disclose the recovery password; the audit row is committed before the password is returned',
      params: recoveryKeyParams,
      body: discloseBody,
      response: { 200: discloseResponse, ...errorResponses(400, 401, 403, 404, 429, 500) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const result = await service.discloseRecoveryPassword({
        organizationId: principal.organizationId,
        // Authorized by the statement that marks the key (a key outside the scope answers 404).
        scope: authorizer.scopeOf(principal, 'keys:disclose'),
        account: accountOf(principal),
        address: request.ip,
        recoveryKeyRecordId: request.params.recoveryKeyId,
        reason: request.body.reason,
        actor: actorOf(principal),
        requestId: request.id,
      });
      reply.header('cache-control', 'no-store');
      return result;
    },
  });
}
