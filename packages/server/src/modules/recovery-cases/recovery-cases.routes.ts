/**
 * Helpdesk recovery cases under /api/recovery-cases: one route per checklist step. Working a case
 * needs `cases:work`; the password is disclosed through the case (never `keys:disclose`), so a
 * helpdesk discloses only after the case's checks.
 */
import type { FastifyRequest } from 'fastify';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../lib/errors.js';
import { errorResponses } from '../../lib/schemas.js';
import { buildAccess, buildRecoveryKeysService } from '../access/access.build.js';
import { principalOf } from '../access/access.hooks.js';
import { accountOf } from '../access/access.service.js';
import { actorOf } from '../access/principal.js';
import { createDevicesRepo } from '../devices/devices.repo.js';
import { createRecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import { createRecoveryCasesRepo } from './recovery-cases.repo.js';
import {
  approveBody,
  caseListResponse,
  caseParams,
  caseResponse,
  codeSentResponse,
  createCaseBody,
  deviceBody,
  discloseCaseBody,
  discloseCaseResponse,
  identityBody,
  identityCodeBody,
  keyIdBody,
  keyIdResponse,
  listCasesQuery,
  locateResponse,
  noteBody,
  policyBody,
  policyResponse,
  readBackBody,
  readBackResponse,
  requestersQuery,
  requestersResponse,
  rootCauseBody,
  rootCauseResponse,
} from './recovery-cases.schemas.js';
import { buildRotationServices } from '../rotation/rotation.routes.js';
import {
  createRecoveryCasesService,
  type CaseCaller,
  type RotationState,
  type RotationTracker,
} from './recovery-cases.service.js';

function callerOf(request: FastifyRequest): CaseCaller {
  const principal = principalOf(request);
  const account = accountOf(principal);
  if (!account || principal.kind === 'device') {
    throw new AppError('FORBIDDEN', 'Recovery cases are worked by people and API tokens');
  }
  return {
    organizationId: principal.organizationId,
    account,
    actor: actorOf(principal) as { type: 'user' | 'api-token'; id: string },
    principal,
    address: request.ip,
    requestId: request.id,
  };
}

const tags = ['recovery-cases'];

/** The rotation module's requests, as a case sees them. */
function rotationTracker(rotations: ReturnType<typeof buildRotationServices>['rotations']): RotationTracker {
  return {
    async stateOf(organizationId, rotationRequestId): Promise<RotationState | undefined> {
      const found = await rotations.findForOrganization(organizationId, rotationRequestId);
      if (!found) return undefined;
      if (found.status === 'completed' || found.status === 'failed') return found.status;
      return 'pending';
    },
  };
}

export function buildRecoveryCasesService(deps: AppDeps) {
  const { rotations, deviceEvents } = buildRotationServices(deps);
  return createRecoveryCasesService({
    ...deps,
    authorizer: buildAccess(deps).authorizer,
    repo: createRecoveryCasesRepo(deps.db),
    devicesRepo: createDevicesRepo(deps.db),
    recoveryKeysRepo: createRecoveryKeysRepo(deps.db),
    recoveryKeys: buildRecoveryKeysService(deps),
    rotation: rotationTracker(rotations),
    deviceEvents,
  });
}

export function registerRecoveryCasesModule(app: App, deps: AppDeps) {
  const service = buildRecoveryCasesService(deps);

  app.route({
    method: 'GET',
    url: '/api/recovery-cases/policy',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: "The organization's recovery-case policy (identity methods, approvals)",
      response: { 200: policyResponse, ...errorResponses(401, 403) },
    },
    handler: async (request) => service.policyOf(callerOf(request).organizationId),
  });

  app.route({
    method: 'PUT',
    url: '/api/recovery-cases/policy',
    config: { permission: 'org:admin' },
    schema: {
      tags,
      summary: 'Change the recovery-case policy; omitted fields keep their value',
      body: policyBody,
      response: { 200: policyResponse, ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => {
      const b = request.body;
      return service.setPolicy(callerOf(request), {
        ...(b.identityMethods === undefined ? {} : { identityMethods: b.identityMethods }),
        ...(b.requireDisclosureApproval === undefined
          ? {}
          : { requireDisclosureApproval: b.requireDisclosureApproval }),
        ...(b.allowRootCauseAfterDisclosure === undefined
          ? {}
          : { allowRootCauseAfterDisclosure: b.allowRootCauseAfterDisclosure }),
      });
    },
  });

  app.route({
    method: 'GET',
    url: '/api/recovery-cases/requesters',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: 'Find the locked-out user by username or display-name prefix (at most 20)',
      querystring: requestersQuery,
      response: { 200: requestersResponse, ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => ({
      requesters: await service.findRequesters(callerOf(request), request.query.query, request.query.limit),
    }),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: 'Open a recovery case for a locked-out user',
      body: createCaseBody,
      response: { 201: caseResponse, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const view = await service.createCase(callerOf(request), request.body);
      return reply.code(201).send(view);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/recovery-cases',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: 'Cases you may work, newest first (default: those not closed or cancelled)',
      querystring: listCasesQuery,
      response: { 200: caseListResponse, ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => ({ recoveryCases: await service.list(callerOf(request), request.query) }),
  });

  app.route({
    method: 'GET',
    url: '/api/recovery-cases/:caseId',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: 'One case with every recorded step (who and when)',
      params: caseParams,
      response: { 200: caseResponse, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) => service.get(callerOf(request), request.params.caseId),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/identity',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary:
        "Step 1: verify the user's identity (e-mail a one-time code, ask a second person, or attest a check)",
      params: caseParams,
      body: identityBody,
      response: {
        200: caseResponse.or(codeSentResponse),
        ...errorResponses(400, 401, 403, 404, 409, 503),
      },
    },
    handler: async (request) => {
      const caller = callerOf(request);
      const body = request.body;
      if (body.method === 'email-code') return service.sendIdentityCode(caller, request.params.caseId);
      return service.startIdentity(caller, request.params.caseId, body);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/identity/code',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: 'Step 1: the one-time code the user read back',
      params: caseParams,
      body: identityCodeBody,
      response: { 200: caseResponse, ...errorResponses(400, 401, 403, 404, 409, 422) },
    },
    handler: async (request) =>
      service.verifyIdentityCode(callerOf(request), request.params.caseId, request.body.code),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/device',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: "Step 2: the device's name, as the user reads it",
      params: caseParams,
      body: deviceBody,
      response: { 200: caseResponse, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) =>
      service.recordDevice(callerOf(request), request.params.caseId, request.body.deviceName),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/key-id',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: 'Step 3: the key id shown on the recovery screen (8 or 32 hex digits)',
      params: caseParams,
      body: keyIdBody,
      response: { 200: keyIdResponse, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) =>
      service.recordKeyId(callerOf(request), request.params.caseId, request.body.keyId),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/locate',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: 'Step 4: locate the recovery password (metadata only)',
      params: caseParams,
      response: { 200: locateResponse, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) => service.locate(callerOf(request), request.params.caseId),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/root-cause',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: 'Step 5: the root-cause answers; returns the class and its resolution steps',
      params: caseParams,
      body: rootCauseBody,
      response: { 200: rootCauseResponse, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) =>
      service.recordRootCause(
        callerOf(request),
        request.params.caseId,
        request.body.answers,
        request.body.note,
      ),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/approve',
    config: { permission: 'cases:approve' },
    schema: {
      tags,
      summary: "A second person approves the user's identity or the disclosure",
      params: caseParams,
      body: approveBody,
      response: { 200: caseResponse, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) =>
      service.approve(callerOf(request), request.params.caseId, request.body.subject, request.body.note),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/owner-override',
    config: { permission: 'cases:override-owner' },
    schema: {
      tags,
      summary: 'Let the case go on although the verified user does not own the device',
      params: caseParams,
      body: noteBody,
      response: { 200: caseResponse, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) =>
      service.overrideOwner(callerOf(request), request.params.caseId, request.body.note),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/disclose',
    // Rate limits live in the disclosure service, shared with every other disclosure path.
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary:
        'Step 6: provide the password (8 groups and a read-aloud form); audited, and a rotation is requested',
      params: caseParams,
      body: discloseCaseBody,
      response: { 200: discloseCaseResponse, ...errorResponses(400, 401, 403, 404, 409, 429, 500) },
    },
    handler: async (request, reply) => {
      const result = await service.disclose(
        callerOf(request),
        request.params.caseId,
        request.body.reasonCode,
        request.body.reason,
      );
      reply.header('cache-control', 'no-store');
      return result;
    },
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/read-back',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: 'Check what the user typed: which groups are wrong (never the right digits)',
      params: caseParams,
      body: readBackBody,
      response: { 200: readBackResponse, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) =>
      service.readBack(callerOf(request), request.params.caseId, request.body.typed),
  });

  app.route({
    method: 'POST',
    url: '/api/recovery-cases/:caseId/cancel',
    config: { permission: 'cases:work' },
    schema: {
      tags,
      summary: 'Cancel a case before the password is provided',
      params: caseParams,
      body: noteBody,
      response: { 200: caseResponse, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) => service.cancel(callerOf(request), request.params.caseId, request.body.note),
  });
}
