/** Enrollment tokens (admins: create, list, revoke), device enrollment (token holders), escrow (device credentials). */
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../lib/errors.js';
import { errorResponses } from '../../lib/schemas.js';
import { principalOf } from '../access/access.hooks.js';
import { actorOf } from '../access/principal.js';
import { createDevicesRepo } from '../devices/devices.repo.js';
import { createRecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import { createEscrowRepo } from './escrow.repo.js';
import {
  createEnrollmentTokenBody,
  enrollBody,
  enrollmentTokenList,
  enrollmentTokenParams,
  enrollmentTokenResponse,
  enrollResponse,
  escrowBody,
  escrowResponse,
} from './escrow.schemas.js';
import { createEscrowService } from './escrow.service.js';

export function buildEscrowService(deps: AppDeps) {
  return createEscrowService({
    ...deps,
    escrowRepo: createEscrowRepo(deps.db),
    devicesRepo: createDevicesRepo(deps.db),
    recoveryKeysRepo: createRecoveryKeysRepo(deps.db),
  });
}

export function registerEscrowModule(app: App, deps: AppDeps) {
  const service = buildEscrowService(deps);

  app.route({
    method: 'POST',
    url: '/api/enrollment-tokens',
    config: { permission: 'enrollment:manage' },
    schema: {
      tags: ['escrow'],
      summary: 'Create an enrollment token (shown once) for devices to register with',
      body: createEnrollmentTokenBody,
      response: { 201: enrollmentTokenResponse, ...errorResponses(400, 401, 403) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const created = await service.createEnrollmentToken({
        organizationId: principal.organizationId,
        ...request.body,
        actor: actorOf(principal),
        requestId: request.id,
      });
      reply.header('cache-control', 'no-store');
      return reply.code(201).send(created);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/enrollment-tokens',
    config: { permission: 'enrollment:manage' },
    schema: {
      tags: ['escrow'],
      summary: "The organization's enrollment tokens with their use and status (never the token)",
      response: { 200: enrollmentTokenList, ...errorResponses(401, 403) },
    },
    handler: async (request) => ({
      enrollmentTokens: await service.listEnrollmentTokens(principalOf(request).organizationId),
    }),
  });

  app.route({
    method: 'DELETE',
    url: '/api/enrollment-tokens/:enrollmentTokenId',
    config: { permission: 'enrollment:manage' },
    schema: {
      tags: ['escrow'],
      summary: 'Revoke an enrollment token; devices already enrolled with it keep working',
      params: enrollmentTokenParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      await service.revokeEnrollmentToken({
        organizationId: principal.organizationId,
        id: request.params.enrollmentTokenId,
        actor: actorOf(principal),
        requestId: request.id,
      });
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/escrow/enroll',
    // Public at the access layer: the enrollment token in the Authorization header is checked here.
    config: { permission: 'public', rateLimit: { max: 30, timeWindow: '1 minute' } },
    schema: {
      tags: ['escrow'],
      summary:
        'Register a device with `Authorization: Bearer <enrollment token>`; returns its device credential once',
      body: enrollBody,
      response: { 201: enrollResponse, ...errorResponses(400, 401, 429) },
    },
    handler: async (request, reply) => {
      const header = request.headers.authorization;
      const token =
        typeof header === 'string' ? /^Bearer ([\x21-\x7e]{1,200})$/.exec(header)?.[1] : undefined;
      const enrolled = await service.enrollDevice(token, request.body.device, request.id);
      reply.header('cache-control', 'no-store');
      return reply.code(201).send(enrolled);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/escrow/recovery-keys',
    config: { permission: 'escrow:write', principals: ['device'] },
    schema: {
      tags: ['escrow'],
      summary: "Escrow this device's volumes and recovery passwords (device credential only)",
      body: escrowBody,
      response: { 200: escrowResponse, ...errorResponses(400, 401, 403, 404, 409, 413, 422) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      if (principal.kind !== 'device') throw new AppError('FORBIDDEN', 'Escrow needs a device credential');
      return service.escrowRecoveryKeys(
        { organizationId: principal.organizationId, deviceId: principal.deviceId },
        request.body,
        { source: 'agent', requestId: request.id },
      );
    },
  });
}
