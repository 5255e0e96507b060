/** Self-service routes: signed-in users find and disclose the recovery keys of the devices they own. */
import { parseKeyIdPrefix } from '@bdevault/bde';
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../lib/errors.js';
import { errorResponses } from '../../lib/schemas.js';
import { buildAccess, buildRecoveryKeysService } from '../access/access.build.js';
import { principalOf } from '../access/access.hooks.js';
import type { UserPrincipal } from '../access/principal.js';
import { createDevicesRepo } from '../devices/devices.repo.js';
import { deviceSummary } from '../devices/devices.schemas.js';
import { createRecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import {
  discloseResponse,
  recoveryKeyMetadata,
  recoveryKeyParams,
} from '../recovery-keys/recovery-keys.schemas.js';
import { myDeviceParams, myKeysQuery, selfServiceDiscloseBody } from './self-service.schemas.js';
import { createSelfServiceService } from './self-service.service.js';

function userOf(request: Parameters<typeof principalOf>[0]): UserPrincipal {
  const principal = principalOf(request);
  if (principal.kind !== 'user') throw new AppError('UNAUTHENTICATED', 'Sign in first');
  return principal;
}

export function registerSelfServiceModule(app: App, deps: AppDeps) {
  const service = createSelfServiceService({
    devicesRepo: createDevicesRepo(deps.db),
    recoveryKeysRepo: createRecoveryKeysRepo(deps.db),
    recoveryKeys: buildRecoveryKeysService(deps),
    accessRepo: buildAccess(deps).accessRepo,
  });
  // Ownership, not a role, is what grants these: any signed-in person, on their own devices only.
  const config = { permission: 'authenticated', principals: ['user'] } as const;

  app.route({
    method: 'GET',
    url: '/api/self-service/devices',
    config,
    schema: {
      tags: ['self-service'],
      summary: 'The devices you own',
      response: { 200: z.object({ devices: z.array(deviceSummary) }), ...errorResponses(401) },
    },
    handler: async (request) => ({ devices: await service.myDevices(userOf(request)) }),
  });

  app.route({
    method: 'GET',
    url: '/api/self-service/devices/:deviceId/recovery-keys',
    config,
    schema: {
      tags: ['self-service'],
      summary: 'Recovery keys (metadata) of a device you own',
      params: myDeviceParams,
      response: {
        200: z.object({ recoveryKeys: z.array(recoveryKeyMetadata) }),
        ...errorResponses(400, 401, 403, 404),
      },
    },
    handler: async (request) => ({
      recoveryKeys: await service.keysOfMyDevice(userOf(request), request.params.deviceId),
    }),
  });

  app.route({
    method: 'GET',
    url: '/api/self-service/recovery-keys',
    config,
    schema: {
      tags: ['self-service'],
      summary: 'Find your key by the 8 digits of the key id your recovery screen shows',
      querystring: myKeysQuery,
      response: {
        200: z.object({ recoveryKeys: z.array(recoveryKeyMetadata) }),
        ...errorResponses(400, 401, 403),
      },
    },
    handler: async (request) => ({
      recoveryKeys: await service.findMyKeys(userOf(request), parseKeyIdPrefix(request.query.keyIdPrefix)),
    }),
  });

  app.route({
    method: 'POST',
    url: '/api/self-service/recovery-keys/:recoveryKeyId/disclose',
    config,
    schema: {
      tags: ['self-service'],
      summary: 'Disclose the recovery password of your own device; audited like every disclosure',
      params: recoveryKeyParams,
      body: selfServiceDiscloseBody,
      response: { 200: discloseResponse, ...errorResponses(400, 401, 403, 404, 429, 500) },
    },
    handler: async (request, reply) => {
      const result = await service.discloseMyKey(
        userOf(request),
        request.params.recoveryKeyId,
        request.body.reason,
        {
          address: request.ip,
          requestId: request.id,
          reasonCode: request.body.reasonCode,
        },
      );
      reply.header('cache-control', 'no-store');
      return result;
    },
  });
}
