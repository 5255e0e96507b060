/** Device lookup by name (exact or prefix), device detail, owner, device-group moves, soft delete. */
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { errorResponses } from '../../lib/schemas.js';
import { buildAccess } from '../access/access.build.js';
import { principalOf } from '../access/access.hooks.js';
import { actorOf, type Principal } from '../access/principal.js';
import { createDevicesRepo } from './devices.repo.js';
import {
  deviceDetail,
  deviceParams,
  deviceSummary,
  moveDeviceBody,
  searchDevicesQuery,
  setOwnerBody,
} from './devices.schemas.js';
import { createDevicesService } from './devices.service.js';

/** Device routes accept users and API tokens only, so the actor is one of those two. */
const actorFor = (principal: Principal) => actorOf(principal) as { type: 'user' | 'api-token'; id: string };

export function registerDevicesModule(app: App, deps: AppDeps) {
  const { authorizer, accessRepo } = buildAccess(deps);
  const service = createDevicesService({
    ...deps,
    devicesRepo: createDevicesRepo(deps.db),
    authorizer,
    accessRepo,
  });

  app.route({
    method: 'GET',
    url: '/api/devices',
    config: { permission: 'devices:read' },
    schema: {
      tags: ['devices'],
      summary:
        'Find devices by name (exactly or by prefix) and/or owner prefix, case-insensitive, among those you may read',
      querystring: searchDevicesQuery,
      response: { 200: z.object({ devices: z.array(deviceSummary) }), ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      const { name, match, owner, includeDeleted, limit } = request.query;
      const devices = await service.searchDevices(
        principal.organizationId,
        { name, match, owner, limit, includeDeleted: includeDeleted === 'true' },
        authorizer.scopeOf(principal, 'devices:read'),
      );
      return { devices };
    },
  });

  app.route({
    method: 'GET',
    url: '/api/devices/:deviceId',
    config: { permission: 'devices:read' },
    schema: {
      tags: ['devices'],
      summary: 'One device with its volumes',
      params: deviceParams,
      response: { 200: deviceDetail, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) => service.getDevice(principalOf(request), request.params.deviceId),
  });

  app.route({
    method: 'PUT',
    url: '/api/devices/:deviceId/owner',
    config: { permission: 'devices:write' },
    schema: {
      tags: ['devices'],
      summary: "Set or clear the device's owning user (self-service and user-member groups follow it)",
      params: deviceParams,
      body: setOwnerBody,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      await service.setOwner(
        principal,
        request.params.deviceId,
        request.body.ownerUserId,
        actorFor(principal),
        request.id,
      );
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/devices/:deviceId/groups',
    config: { permission: 'devices:write' },
    schema: {
      tags: ['devices'],
      summary: 'Move a device: add it to and remove it from device groups you administer',
      params: deviceParams,
      body: moveDeviceBody,
      response: { 200: z.object({ groupIds: z.array(z.string()) }), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      const groupIds = await service.moveDevice(
        principal,
        request.params.deviceId,
        request.body,
        actorFor(principal),
        request.id,
      );
      return { groupIds };
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/devices/:deviceId',
    config: { permission: 'devices:delete' },
    schema: {
      tags: ['devices'],
      summary: 'Soft-delete a device; its recovery keys are kept',
      params: deviceParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      await service.deleteDevice(principal, request.params.deviceId, actorFor(principal), request.id);
      return reply.code(204).send(null);
    },
  });
}
