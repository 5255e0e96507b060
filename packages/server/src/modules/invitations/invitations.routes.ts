/** Invitation routes: an organization's administrators invite and revoke; the invited account answers. */
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../lib/errors.js';
import { errorResponses } from '../../lib/schemas.js';
import { principalOf } from '../access/access.hooks.js';
import { buildAccessAdminService } from '../access/access.routes.js';
import { createAccessRepo } from '../access/access.repo.js';
import { actorOf } from '../access/principal.js';
import { createOrganizationsRepo } from '../organizations/organizations.repo.js';
import { createInvitationsRepo } from './invitations.repo.js';
import {
  acceptedInvitation,
  createInvitationBody,
  invitation,
  invitationParams,
  myInvitation,
} from './invitations.schemas.js';
import { createInvitationsService } from './invitations.service.js';

export function buildInvitationsService(deps: AppDeps) {
  return createInvitationsService({
    ...deps,
    invitationsRepo: createInvitationsRepo(deps.db),
    accessRepo: createAccessRepo(deps.db),
    access: buildAccessAdminService(deps),
    organizationsRepo: createOrganizationsRepo(deps.db),
  });
}

export function registerInvitationsModule(app: App, deps: AppDeps) {
  const service = buildInvitationsService(deps);
  const admin = { permission: 'org:admin', rateLimit: { max: 60, timeWindow: '1 minute' } } as const;
  // The invited person, in a cookie session (a token cannot say yes for its user); also while
  // suspended in the current organization, since the invitation is to another one.
  const invitee = {
    permission: 'authenticated',
    principals: ['user'],
    allowSuspended: true,
    rateLimit: { max: 30, timeWindow: '1 minute' },
  } as const;
  const userIdOf = (request: Parameters<typeof principalOf>[0]) => {
    const principal = principalOf(request);
    if (principal.kind !== 'user') throw new AppError('UNAUTHENTICATED', 'Sign in first');
    return principal.userId;
  };

  const inviteAt = (url: string, summary: string) =>
    app.route({
      method: 'POST',
      url,
      config: admin,
      schema: {
        tags: ['access'],
        summary,
        body: createInvitationBody,
        response: { 202: invitation, ...errorResponses(400, 401, 403, 404, 409, 429) },
      },
      handler: async (request, reply) => {
        const principal = principalOf(request);
        const created = await service.invite(
          principal.organizationId,
          request.body,
          actorOf(principal),
          request.id,
        );
        return reply.code(202).send(created);
      },
    });
  inviteAt(
    '/api/organization/invitations',
    'Invite an existing account (e.g. an MSP technician) to join with a role; it joins when it accepts. The answer is the same whether or not the user name exists',
  );
  inviteAt(
    '/api/organization/members',
    'Same as POST /api/organization/invitations (kept for older clients): an existing account is invited, never added directly',
  );

  app.route({
    method: 'GET',
    url: '/api/organization/invitations',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['access'],
      summary: "The organization's invitations, newest first, with their status",
      response: { 200: z.object({ invitations: z.array(invitation) }), ...errorResponses(401, 403) },
    },
    handler: async (request) => ({ invitations: await service.list(principalOf(request).organizationId) }),
  });

  app.route({
    method: 'DELETE',
    url: '/api/organization/invitations/:invitationId',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['access'],
      summary: 'Withdraw a pending invitation',
      params: invitationParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      await service.revoke(
        principal.organizationId,
        request.params.invitationId,
        actorOf(principal),
        request.id,
      );
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/auth/invitations',
    config: invitee,
    schema: {
      tags: ['auth'],
      summary: 'Your pending invitations to join other organizations',
      response: { 200: z.object({ invitations: z.array(myInvitation) }), ...errorResponses(401, 403, 429) },
    },
    handler: async (request) => ({ invitations: await service.mine(userIdOf(request)) }),
  });

  app.route({
    method: 'POST',
    url: '/api/auth/invitations/:invitationId/accept',
    config: invitee,
    schema: {
      tags: ['auth'],
      summary: 'Accept an invitation: you join the organization with the role it offers',
      params: invitationParams,
      response: { 200: acceptedInvitation, ...errorResponses(400, 401, 403, 404, 409, 429) },
    },
    handler: async (request) => service.accept(userIdOf(request), request.params.invitationId, request.id),
  });

  app.route({
    method: 'POST',
    url: '/api/auth/invitations/:invitationId/decline',
    config: invitee,
    schema: {
      tags: ['auth'],
      summary: 'Decline an invitation',
      params: invitationParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404, 409, 429) },
    },
    handler: async (request, reply) => {
      await service.decline(userIdOf(request), request.params.invitationId, request.id);
      return reply.code(204).send(null);
    },
  });
}
