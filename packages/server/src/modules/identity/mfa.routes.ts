/**
 * MFA routes. They read the session cookie themselves (so they are `public` to the access hook): a
 * session that still owes MFA is not a principal anywhere else, and may call only these.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { Db } from '../../db/database.js';
import type { SessionState } from '../../db/schema.js';
import { errorResponses } from '../../lib/schemas.js';
import type { IdentityModuleDeps } from './identity.routes.js';
import { cookieSession, setSessionCookie, withRetryAfter } from './identity.routes.js';
import { createIdentityRepo } from './identity.repo.js';
import type { IdentityService } from './identity.service.js';
import { createMfaRepo } from './mfa.repo.js';
import {
  authenticationVerifyBody,
  ceremonyOptionsResponse,
  mfaStatusResponse,
  mfaVerifyBody,
  passkeyParams,
  passkeyRegisteredResponse,
  registrationVerifyBody,
  sessionStepResponse,
  totpCodeBody,
  totpConfirmResponse,
  totpEnrollResponse,
} from './mfa.schemas.js';
import { createMfaService } from './mfa.service.js';
import { csrfTokenFor } from './csrf.js';
import { createSignInThrottle } from './sign-in-throttle.js';

const ENROLLING: readonly SessionState[] = ['active', 'mfa-enrollment-required'];
const PENDING: readonly SessionState[] = ['mfa-pending'];
const ACTIVE: readonly SessionState[] = ['active'];

export function registerMfaRoutes(app: App, deps: IdentityModuleDeps & { identityService: IdentityService }) {
  const identityRepo = createIdentityRepo(deps.db, { sessionIdleMinutes: deps.identity.sessionIdleMinutes });
  const service = createMfaService({
    ...deps,
    mfaRepo: createMfaRepo(deps.db),
    identityRepo,
    throttle: createSignInThrottle({
      db: deps.db as Db,
      clock: deps.clock,
      identityRepo,
      settings: deps.identity,
    }),
  });
  const session = (request: FastifyRequest, states: readonly SessionState[]) =>
    cookieSession(request, deps.identityService, states);
  /** After a completed step: the new cookie, and the state the caller is now in. */
  const stepDone = (
    request: FastifyRequest,
    reply: FastifyReply,
    current: { token: string; session: { state: SessionState; expires_at: string } },
    activated: { sessionToken: string; csrfToken: string; expiresAt: string } | undefined,
  ) => {
    if (!activated) {
      return {
        state: current.session.state,
        expiresAt: current.session.expires_at,
        csrfToken: csrfTokenFor(current.token),
      };
    }
    setSessionCookie(request, reply, deps.identity, activated.sessionToken, activated.expiresAt);
    return { state: 'active' as const, expiresAt: activated.expiresAt, csrfToken: activated.csrfToken };
  };
  const tags = ['mfa'];

  app.route({
    method: 'GET',
    url: '/api/auth/mfa',
    config: { permission: 'public' },
    schema: {
      tags,
      summary: 'Your enrolled factors',
      response: { 200: mfaStatusResponse, ...errorResponses(401) },
    },
    handler: async (request) => service.status((await session(request, ENROLLING)).session.user_id),
  });

  app.route({
    method: 'POST',
    url: '/api/auth/mfa/totp/enroll',
    config: { permission: 'public' },
    schema: {
      tags,
      summary: 'Start enrolling an authenticator app: the secret is shown once',
      response: { 200: totpEnrollResponse, ...errorResponses(401, 403, 409) },
    },
    handler: async (request) => service.enrollTotp((await session(request, ENROLLING)).session),
  });

  app.route({
    method: 'POST',
    url: '/api/auth/mfa/totp/confirm',
    config: { permission: 'public', rateLimit: { max: 10, timeWindow: '1 minute' } },
    schema: {
      tags,
      summary: 'Confirm the authenticator app with a code; returns recovery codes once',
      body: totpCodeBody,
      response: { 200: totpConfirmResponse, ...errorResponses(400, 401, 403, 409, 429) },
    },
    handler: async (request, reply) => {
      const current = await session(request, ENROLLING);
      const result = await service
        .confirmTotp(current.session, request.body.code, request.id)
        .catch((err: unknown) => withRetryAfter(reply, err));
      return { ...stepDone(request, reply, current, result.activated), recoveryCodes: result.recoveryCodes };
    },
  });

  app.route({
    method: 'POST',
    url: '/api/auth/mfa/verify',
    config: { permission: 'public', rateLimit: { max: 10, timeWindow: '1 minute' } },
    schema: {
      tags,
      summary: 'Complete sign-in with an authenticator code or a recovery code',
      body: mfaVerifyBody,
      response: { 200: sessionStepResponse, ...errorResponses(400, 401, 403, 429) },
    },
    handler: async (request, reply) => {
      const current = await session(request, PENDING);
      const activated = await service
        .verify(current.session, request.body, request.id)
        .catch((err: unknown) => withRetryAfter(reply, err));
      return stepDone(request, reply, current, activated);
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/auth/mfa/totp',
    config: { permission: 'public' },
    schema: {
      tags,
      summary: 'Remove your authenticator app (refused for your last factor when MFA is required)',
      response: { 204: z.null(), ...errorResponses(401, 403, 404, 409) },
    },
    handler: async (request, reply) => {
      // Only a fully signed-in session: a pending one must not strip the factor it owes.
      await service.removeFactor((await session(request, ACTIVE)).session, { kind: 'totp' }, request.id);
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/auth/mfa/webauthn/credentials/:credentialId',
    config: { permission: 'public' },
    schema: {
      tags,
      summary: 'Remove one of your passkeys (refused for your last factor when MFA is required)',
      params: passkeyParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request, reply) => {
      await service.removeFactor(
        (await session(request, ACTIVE)).session,
        { kind: 'webauthn', id: request.params.credentialId },
        request.id,
      );
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/auth/mfa/webauthn/registration/options',
    config: { permission: 'public' },
    schema: {
      tags,
      summary: 'Options for navigator.credentials.create() to register a passkey',
      response: { 200: ceremonyOptionsResponse, ...errorResponses(401, 403, 503) },
    },
    handler: async (request) => service.registrationOptions((await session(request, ENROLLING)).session),
  });

  app.route({
    method: 'POST',
    url: '/api/auth/mfa/webauthn/registration/verify',
    config: { permission: 'public', rateLimit: { max: 10, timeWindow: '1 minute' } },
    schema: {
      tags,
      summary: 'Register the passkey the browser created',
      body: registrationVerifyBody,
      response: { 200: passkeyRegisteredResponse, ...errorResponses(400, 401, 403, 503) },
    },
    handler: async (request, reply) => {
      const current = await session(request, ENROLLING);
      const result = await service.verifyRegistration(
        current.session,
        request.body.credential,
        request.body.name,
        request.id,
      );
      return {
        ...stepDone(request, reply, current, result.activated),
        ...(result.recoveryCodes ? { recoveryCodes: result.recoveryCodes } : {}),
      };
    },
  });

  app.route({
    method: 'POST',
    url: '/api/auth/mfa/webauthn/authentication/options',
    config: { permission: 'public' },
    schema: {
      tags,
      summary: 'Options for navigator.credentials.get() to complete sign-in with a passkey',
      response: { 200: ceremonyOptionsResponse, ...errorResponses(401, 403, 409, 503) },
    },
    handler: async (request) => service.authenticationOptions((await session(request, PENDING)).session),
  });

  app.route({
    method: 'POST',
    url: '/api/auth/mfa/webauthn/authentication/verify',
    config: { permission: 'public', rateLimit: { max: 10, timeWindow: '1 minute' } },
    schema: {
      tags,
      summary: 'Complete sign-in with the passkey assertion',
      body: authenticationVerifyBody,
      response: { 200: sessionStepResponse, ...errorResponses(400, 401, 403, 429, 503) },
    },
    handler: async (request, reply) => {
      const current = await session(request, PENDING);
      const activated = await service
        .verifyAuthentication(current.session, request.body.credential, request.id)
        .catch((err: unknown) => withRetryAfter(reply, err));
      return stepDone(request, reply, current, activated);
    },
  });

  return service;
}
