/** Access administration routes (roles, assignments, members, device groups, settings, suspensions) and your organizations. */
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../lib/errors.js';
import { errorResponses } from '../../lib/schemas.js';
import { createAccessAdminService } from './access-admin.service.js';
import { buildAccess } from './access.build.js';
import { principalOf, SESSION_COOKIE } from './access.hooks.js';
import {
  addMembersBody,
  createRoleAssignmentBody,
  createRoleBody,
  createSuspensionBody,
  deviceGroup,
  deviceGroupBody,
  deviceGroupMembers,
  deviceGroupParams,
  groupDeviceParams,
  groupUserParams,
  memberParams,
  myOrganization,
  role,
  roleAssignment,
  roleAssignmentParams,
  roleParams,
  settings,
  suspension,
  suspensionParams,
  switchOrganizationBody,
  switchOrganizationResponse,
  updateRoleBody,
  updateSettingsBody,
} from './access.schemas.js';
import { actorOf } from './principal.js';

export function buildAccessAdminService(deps: AppDeps) {
  const { accessRepo, rights } = buildAccess(deps);
  return createAccessAdminService({ ...deps, accessRepo, rights });
}

export function registerAccessModule(app: App, deps: AppDeps) {
  const service = buildAccessAdminService(deps);
  const { authorizer } = buildAccess(deps);
  const admin = { permission: 'org:admin' } as const;
  const ctx = (request: Parameters<typeof principalOf>[0]) => {
    const principal = principalOf(request);
    return { organizationId: principal.organizationId, actor: actorOf(principal), requestId: request.id };
  };

  app.route({
    method: 'GET',
    url: '/api/roles',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Built-in and custom roles',
      response: { 200: z.object({ roles: z.array(role) }), ...errorResponses(401, 403) },
    },
    handler: async (request) => ({ roles: await service.listRoles(principalOf(request).organizationId) }),
  });

  app.route({
    method: 'POST',
    url: '/api/roles',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Create a custom role from any set of permissions',
      body: createRoleBody,
      response: { 201: role, ...errorResponses(400, 401, 403, 409) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      return reply.code(201).send(await service.createRole(organizationId, request.body, actor, requestId));
    },
  });

  app.route({
    method: 'PATCH',
    url: '/api/roles/:roleId',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Change a custom role; assignments of it change with it',
      params: roleParams,
      body: updateRoleBody,
      response: { 200: role, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) => {
      const { organizationId, actor, requestId } = ctx(request);
      return service.updateRole(organizationId, request.params.roleId, request.body, actor, requestId);
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/roles/:roleId',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Delete a custom role that is no longer assigned',
      params: roleParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      await service.deleteRole(organizationId, request.params.roleId, actor, requestId);
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/role-assignments',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Who holds which role, where',
      response: { 200: z.object({ roleAssignments: z.array(roleAssignment) }), ...errorResponses(401, 403) },
    },
    handler: async (request) => ({
      roleAssignments: await service.listAssignments(principalOf(request).organizationId),
    }),
  });

  app.route({
    method: 'POST',
    url: '/api/role-assignments',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Assign a role to a user or an external group, organization-wide or on device groups',
      body: createRoleAssignmentBody,
      response: { 201: roleAssignment, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      return reply
        .code(201)
        .send(await service.createAssignment(organizationId, request.body, actor, requestId));
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/role-assignments/:roleAssignmentId',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Remove a role assignment',
      params: roleAssignmentParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      await service.deleteAssignment(organizationId, request.params.roleAssignmentId, actor, requestId);
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/device-groups',
    config: { permission: 'devices:read' },
    schema: {
      tags: ['access'],
      summary: 'Device groups (administrative units) you can see devices of',
      response: { 200: z.object({ deviceGroups: z.array(deviceGroup) }), ...errorResponses(401, 403) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      const scope = authorizer.scopeOf(principal, 'devices:read');
      const groups = await service.listGroups(principal.organizationId);
      return {
        deviceGroups:
          scope.kind === 'groups'
            ? groups.filter((g) => scope.constraints.every((c) => c.includes(g.id)))
            : groups,
      };
    },
  });

  app.route({
    method: 'POST',
    url: '/api/device-groups',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Create a device group',
      body: deviceGroupBody,
      response: { 201: deviceGroup, ...errorResponses(400, 401, 403, 409) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      return reply
        .code(201)
        .send(await service.createGroup(organizationId, request.body.name, actor, requestId));
    },
  });

  app.route({
    method: 'PATCH',
    url: '/api/device-groups/:deviceGroupId',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Rename a device group',
      params: deviceGroupParams,
      body: deviceGroupBody,
      response: { 200: deviceGroup, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request) => {
      const { organizationId, actor, requestId } = ctx(request);
      return service.renameGroup(
        organizationId,
        request.params.deviceGroupId,
        request.body.name,
        actor,
        requestId,
      );
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/device-groups/:deviceGroupId',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Delete a device group; assignments scoped to it lose it (they never widen)',
      params: deviceGroupParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      await service.deleteGroup(organizationId, request.params.deviceGroupId, actor, requestId);
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/device-groups/:deviceGroupId/members',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Devices and users in a device group',
      params: deviceGroupParams,
      response: { 200: deviceGroupMembers, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) =>
      service.groupMembers(principalOf(request).organizationId, request.params.deviceGroupId),
  });

  app.route({
    method: 'POST',
    url: '/api/device-groups/:deviceGroupId/members',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Add devices, and users (whose owned devices are then in the group)',
      params: deviceGroupParams,
      body: addMembersBody,
      response: { 200: deviceGroupMembers, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request) => {
      const { organizationId, actor, requestId } = ctx(request);
      return service.addMembers(organizationId, request.params.deviceGroupId, request.body, actor, requestId);
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/device-groups/:deviceGroupId/devices/:deviceId',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Remove a device from a device group',
      params: groupDeviceParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      const { deviceGroupId, deviceId } = request.params;
      await service.removeMember(organizationId, deviceGroupId, { deviceId }, actor, requestId);
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/device-groups/:deviceGroupId/users/:userId',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Remove a user member from a device group',
      params: groupUserParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      const { deviceGroupId, userId } = request.params;
      await service.removeMember(organizationId, deviceGroupId, { userId }, actor, requestId);
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/organization/members/:userId',
    config: admin,
    schema: {
      tags: ['access'],
      summary:
        "Remove a member from this organization (roles, device groups, sessions and personal tokens here); the account and its other organizations stay. The account's home organization disables it instead",
      params: memberParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      await service.removeFromOrganization(organizationId, request.params.userId, actor, requestId);
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/organization/settings',
    config: admin,
    schema: {
      tags: ['access'],
      summary: "The organization's access policy",
      response: { 200: settings, ...errorResponses(401, 403) },
    },
    handler: async (request) => service.getSettings(principalOf(request).organizationId),
  });

  app.route({
    method: 'PATCH',
    url: '/api/organization/settings',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Change the access policy (self-service restriction, disclosure alert threshold, suspension)',
      body: updateSettingsBody,
      response: { 200: settings, ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => {
      const { organizationId, actor, requestId } = ctx(request);
      return service.updateSettings(organizationId, request.body, actor, requestId);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/account-suspensions',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Accounts suspended in the organization (most recent first)',
      response: { 200: z.object({ suspensions: z.array(suspension) }), ...errorResponses(401, 403) },
    },
    handler: async (request) => ({
      suspensions: await service.listSuspensions(principalOf(request).organizationId),
    }),
  });

  app.route({
    method: 'POST',
    url: '/api/account-suspensions',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Suspend a member in this organization only (sessions here are refused until it is lifted)',
      body: createSuspensionBody,
      response: { 201: suspension, ...errorResponses(400, 401, 403, 404, 409) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      return reply
        .code(201)
        .send(
          await service.suspendMember(
            organizationId,
            request.body.userId,
            request.body.reason,
            actor,
            requestId,
          ),
        );
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/account-suspensions/:suspensionId',
    config: admin,
    schema: {
      tags: ['access'],
      summary: 'Lift a suspension',
      params: suspensionParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const { organizationId, actor, requestId } = ctx(request);
      await service.liftSuspension(organizationId, request.params.suspensionId, actor, requestId);
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/me/organizations',
    config: { permission: 'authenticated', principals: ['user'], allowSuspended: true },
    schema: {
      tags: ['access'],
      summary: 'The organizations you belong to, with your roles in each',
      response: { 200: z.object({ organizations: z.array(myOrganization) }), ...errorResponses(401) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      if (principal.kind !== 'user') throw new AppError('UNAUTHENTICATED', 'Sign in first');
      return { organizations: await service.myOrganizations(principal.userId, principal.organizationId) };
    },
  });

  app.route({
    method: 'POST',
    url: '/api/auth/switch-organization',
    config: {
      permission: 'authenticated',
      principals: ['user'],
      allowSuspended: true,
      rateLimit: { max: 30, timeWindow: '1 minute' },
    },
    schema: {
      tags: ['auth'],
      summary: 'Act in another organization you belong to: a new session replaces the current one',
      body: switchOrganizationBody,
      response: { 200: switchOrganizationResponse, ...errorResponses(400, 401, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      if (principal.kind !== 'user') throw new AppError('UNAUTHENTICATED', 'Sign in first');
      const result = await service.switchOrganization(
        principal.userId,
        principal.sessionId,
        request.body.organizationId,
        request.id,
      );
      reply.setCookie(SESSION_COOKIE, result.sessionToken, {
        httpOnly: true,
        sameSite: 'strict',
        secure: request.protocol === 'https',
        path: '/',
        expires: new Date(result.expiresAt),
      });
      reply.header('cache-control', 'no-store');
      return { organizationId: result.organizationId, expiresAt: result.expiresAt };
    },
  });
}
