/** Rotation requests and policy (operators), the agent's check-in/result/events routes (devices), device history. */
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../lib/errors.js';
import { errorResponses } from '../../lib/schemas.js';
import { buildAccess } from '../access/access.build.js';
import { principalOf } from '../access/access.hooks.js';
import { actorOf, type Principal } from '../access/principal.js';
import { createDevicesRepo } from '../devices/devices.repo.js';
import { createRecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import { createDeviceEventsRepo } from './device-events.repo.js';
import {
  createDeviceEventsService,
  decodeCursor,
  encodeCursor,
  POST_RECOVERY_WINDOW_DAYS,
} from './device-events.service.js';
import { createRotationRepo } from './rotation.repo.js';
import {
  agentRotationResponse,
  checkInBody,
  checkInResponse,
  deviceEventsBody,
  deviceEventsListResponse,
  deviceEventsQuery,
  deviceEventsResponse,
  deviceGroupParams,
  deviceParams,
  listRotationsQuery,
  listRotationsResponse,
  recoveryKeyParams,
  requestRotationBody,
  requestRotationResponse,
  rotation,
  rotationParams,
  rotationPolicy,
  rotationPolicyPatch,
  rotationResultBody,
  timelineQuery,
  timelineResponse,
} from './rotation.schemas.js';
import { createRotationService } from './rotation.service.js';

/** The rotation and device-event services, for routes, the server's sweep and other modules (cases, reports). */
export function buildRotationServices(deps: AppDeps) {
  const { authorizer, accessRepo } = buildAccess(deps);
  const devicesRepo = createDevicesRepo(deps.db);
  const deviceEventsRepo = createDeviceEventsRepo(deps.db);
  return {
    rotations: createRotationService({
      ...deps,
      rotationRepo: createRotationRepo(deps.db),
      devicesRepo,
      recoveryKeysRepo: createRecoveryKeysRepo(deps.db),
      deviceEventsRepo,
      authorizer,
      accessRepo,
    }),
    deviceEvents: createDeviceEventsService({ ...deps, deviceEventsRepo, devicesRepo, authorizer }),
  };
}

/** Operator routes accept users and API tokens only. */
const operator = (principal: Principal) => actorOf(principal) as { type: 'user' | 'api-token'; id: string };

function deviceCaller(principal: Principal) {
  if (principal.kind !== 'device') throw new AppError('FORBIDDEN', 'This route needs a device credential');
  return { organizationId: principal.organizationId, deviceId: principal.deviceId };
}

export function registerRotationModule(app: App, deps: AppDeps) {
  const { rotations, deviceEvents } = buildRotationServices(deps);
  const { authorizer } = buildAccess(deps);

  app.route({
    method: 'GET',
    url: '/api/rotations',
    config: { permission: 'keys:read-metadata' },
    schema: {
      tags: ['rotation'],
      summary:
        'Rotation requests of devices you may read, newest first (`status=overdue` for the overdue list)',
      querystring: listRotationsQuery,
      response: { 200: listRotationsResponse, ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => {
      const { status, deviceId, limit, cursor } = request.query;
      const before = cursor === undefined ? undefined : decodeCursor(cursor);
      const page = await rotations.list(principalOf(request), { status, deviceId }, limit, before);
      return {
        rotations: page.rotations,
        nextCursor: page.next ? encodeCursor({ ...page.next, kind: 'rotation' }) : null,
      };
    },
  });

  app.route({
    method: 'GET',
    url: '/api/rotations/:rotationId',
    config: { permission: 'keys:read-metadata' },
    schema: {
      tags: ['rotation'],
      summary: 'One rotation request',
      params: rotationParams,
      response: { 200: rotation, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) => rotations.get(principalOf(request), request.params.rotationId),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-keys/:recoveryKeyId/rotation',
    config: { permission: 'rotation:request' },
    schema: {
      tags: ['rotation'],
      summary: 'Ask the device to replace this recovery password (idempotent: one open request per key)',
      params: recoveryKeyParams,
      body: requestRotationBody,
      response: { 200: requestRotationResponse, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      return rotations.requestForKey(principal, request.params.recoveryKeyId, {
        reason: request.body?.reason ?? null,
        actor: operator(principal),
        requestId: request.id,
      });
    },
  });

  app.route({
    method: 'POST',
    url: '/api/devices/:deviceId/rotations',
    config: { permission: 'rotation:request' },
    schema: {
      tags: ['rotation'],
      summary: 'Ask the device to replace every current recovery password of its volumes',
      params: deviceParams,
      body: requestRotationBody,
      response: { 200: requestRotationResponse, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      return rotations.requestForDevice(principal, request.params.deviceId, {
        reason: request.body?.reason ?? null,
        actor: operator(principal),
        requestId: request.id,
      });
    },
  });

  app.route({
    method: 'POST',
    url: '/api/device-groups/:deviceGroupId/rotations',
    config: { permission: 'rotation:request' },
    schema: {
      tags: ['rotation'],
      summary: 'Rotate the current recovery passwords of every device in the group you may rotate',
      params: deviceGroupParams,
      body: requestRotationBody,
      response: { 200: requestRotationResponse, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      return rotations.requestForGroup(principal, request.params.deviceGroupId, {
        reason: request.body?.reason ?? null,
        actor: operator(principal),
        requestId: request.id,
      });
    },
  });

  app.route({
    method: 'GET',
    url: '/api/rotation-policy',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['rotation'],
      summary: "The organization's rotation policy",
      response: { 200: rotationPolicy, ...errorResponses(401, 403) },
    },
    handler: async (request) => rotations.getPolicy(principalOf(request).organizationId),
  });

  app.route({
    method: 'PATCH',
    url: '/api/rotation-policy',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['rotation'],
      summary: 'Switch single-use passwords on or off, or change the rotation deadline',
      body: rotationPolicyPatch,
      response: { 200: rotationPolicy, ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      const { singleUsePasswords, deadlineDays } = request.body;
      return rotations.setPolicy(
        principal.organizationId,
        {
          ...(singleUsePasswords === undefined ? {} : { singleUsePasswords }),
          ...(deadlineDays === undefined ? {} : { deadlineDays }),
        },
        operator(principal),
        request.id,
      );
    },
  });

  app.route({
    method: 'GET',
    url: '/api/devices/:deviceId/timeline',
    config: { permission: 'devices:read' },
    schema: {
      tags: ['devices'],
      summary: 'Escrows, disclosures, rotations and agent events of the device in time order, paginated',
      params: deviceParams,
      querystring: timelineQuery,
      response: { 200: timelineResponse, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) =>
      deviceEvents.timeline(principalOf(request), request.params.deviceId, request.query),
  });

  app.route({
    method: 'GET',
    url: '/api/devices/:deviceId/bitlocker-events',
    config: { permission: 'devices:read' },
    schema: {
      tags: ['devices'],
      summary: 'BitLocker events the agent reported (default: last 30 days) and the cause they suggest',
      params: deviceParams,
      querystring: deviceEventsQuery,
      response: { 200: deviceEventsListResponse, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      const { deviceId } = request.params;
      await authorizer.authorize(principal, 'devices:read', { deviceId });
      const since =
        request.query.since === undefined
          ? new Date(deps.clock.now().getTime() - POST_RECOVERY_WINDOW_DAYS * 86_400_000).toISOString()
          : new Date(request.query.since).toISOString();
      const found = await deviceEvents.eventsForDevice(principal.organizationId, deviceId, since);
      return { events: found.events, likelyCause: found.likelyCause ?? null };
    },
  });

  // --- Agent protocol: device credentials only, like the escrow route ---

  app.route({
    method: 'POST',
    url: '/api/escrow/check-in',
    config: { permission: 'escrow:write', principals: ['device'] },
    schema: {
      tags: ['escrow'],
      summary: 'Agent heartbeat: report inventory, receive pending actions (rotations to perform)',
      body: checkInBody,
      response: { 200: checkInResponse, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) => rotations.checkIn(deviceCaller(principalOf(request)), request.body),
  });

  app.route({
    method: 'POST',
    url: '/api/escrow/rotations/:rotationId/result',
    config: { permission: 'escrow:write', principals: ['device'] },
    schema: {
      tags: ['escrow'],
      summary:
        'Report a rotation: completed (new key escrowed, old protector removed) or failed with a reason',
      params: rotationParams,
      body: rotationResultBody,
      response: { 200: agentRotationResponse, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) => {
      const done = await rotations.reportResult(
        deviceCaller(principalOf(request)),
        request.params.rotationId,
        request.body,
        request.id,
      );
      return {
        rotationId: done.id,
        status: done.status,
        completedAt: done.completedAt,
        failedAt: done.failedAt,
      };
    },
  });

  app.route({
    method: 'POST',
    url: '/api/escrow/events',
    config: { permission: 'escrow:write', principals: ['device'] },
    schema: {
      tags: ['escrow'],
      summary:
        'Forward BitLocker-API events (521–531, 823/824, 782/805, 775/776); resent records are kept once',
      body: deviceEventsBody,
      response: { 200: deviceEventsResponse, ...errorResponses(400, 401, 403, 404, 413) },
    },
    handler: async (request) =>
      deviceEvents.reportEvents(deviceCaller(principalOf(request)), request.body.events),
  });
}
