/** Notification settings (SMTP, security addresses), webhooks, test sends and the delivery log; administrators only. */
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { errorResponses } from '../../lib/schemas.js';
import { principalOf } from '../access/access.hooks.js';
import { actorOf } from '../access/principal.js';
import { createNotificationsRepo } from './notifications.repo.js';
import {
  createWebhookBody,
  deliveriesQuery,
  deliverySummary,
  settingsBody,
  settingsResponse,
  testMailBody,
  testResult,
  updateWebhookBody,
  webhookParams,
  webhookSummary,
  webhookWithSecret,
} from './notifications.schemas.js';
import { createNotificationsService } from './notifications.service.js';

// Test sends reach out to other servers on demand: a few a minute is plenty for checking a setup.
const TEST_RATE = { max: 10, timeWindow: '1 minute' };

export function buildNotificationsService(deps: AppDeps) {
  return createNotificationsService({ ...deps, notificationsRepo: createNotificationsRepo(deps.db) });
}

export function registerNotificationsModule(app: App, deps: AppDeps) {
  const service = buildNotificationsService(deps);
  const tags = ['notifications'];

  app.route({
    method: 'GET',
    url: '/api/notifications/settings',
    config: { permission: 'org:admin' },
    schema: {
      tags,
      summary: 'Mail (SMTP) settings and security addresses; the SMTP password is never returned',
      response: { 200: settingsResponse, ...errorResponses(401, 403) },
    },
    handler: async (request) => service.getSettings(principalOf(request).organizationId),
  });

  app.route({
    method: 'PUT',
    url: '/api/notifications/settings',
    config: { permission: 'org:admin' },
    schema: {
      tags,
      summary: 'Replace the mail settings and security addresses (an omitted SMTP password is kept)',
      body: settingsBody,
      response: { 200: settingsResponse, ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      return service.putSettings(principal.organizationId, request.body, actorOf(principal), request.id);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/notifications/settings/test-mail',
    config: { permission: 'org:admin', rateLimit: TEST_RATE },
    schema: {
      tags,
      summary: 'Send a test mail now through the configured SMTP server and report its answer',
      body: testMailBody,
      response: { 200: testResult, ...errorResponses(400, 401, 403, 429) },
    },
    handler: async (request) => service.testMail(principalOf(request).organizationId, request.body.to),
  });

  app.route({
    method: 'GET',
    url: '/api/notifications/webhooks',
    config: { permission: 'org:admin' },
    schema: {
      tags,
      summary: 'Webhooks of the organization (signing secrets are never returned)',
      response: { 200: z.object({ webhooks: z.array(webhookSummary) }), ...errorResponses(401, 403) },
    },
    handler: async (request) => ({
      webhooks: await service.listWebhooks(principalOf(request).organizationId),
    }),
  });

  app.route({
    method: 'POST',
    url: '/api/notifications/webhooks',
    config: { permission: 'org:admin' },
    schema: {
      tags,
      summary: 'Add a signed webhook; the answer carries its signing secret, once',
      body: createWebhookBody,
      response: { 201: webhookWithSecret, ...errorResponses(400, 401, 403) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const created = await service.createWebhook(
        principal.organizationId,
        request.body,
        actorOf(principal),
        request.id,
      );
      return reply.code(201).header('cache-control', 'no-store').send(created);
    },
  });

  app.route({
    method: 'PATCH',
    url: '/api/notifications/webhooks/:webhookId',
    config: { permission: 'org:admin' },
    schema: {
      tags,
      summary: 'Change a webhook; `rotateSecret` answers a new signing secret, once',
      params: webhookParams,
      body: updateWebhookBody,
      response: { 200: webhookWithSecret, ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const updated = await service.updateWebhook(
        principal.organizationId,
        request.params.webhookId,
        request.body,
        actorOf(principal),
        request.id,
      );
      return reply.header('cache-control', 'no-store').send(updated);
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/notifications/webhooks/:webhookId',
    config: { permission: 'org:admin' },
    schema: {
      tags,
      summary: 'Remove a webhook; its pending deliveries fail as gone',
      params: webhookParams,
      response: { 204: z.null(), ...errorResponses(400, 401, 403, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      await service.deleteWebhook(
        principal.organizationId,
        request.params.webhookId,
        actorOf(principal),
        request.id,
      );
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/notifications/webhooks/:webhookId/test',
    config: { permission: 'org:admin', rateLimit: TEST_RATE },
    schema: {
      tags,
      summary: 'Send a signed `notification.test` event to the webhook now and report its answer',
      params: webhookParams,
      response: { 200: testResult, ...errorResponses(400, 401, 403, 404, 429) },
    },
    handler: async (request) =>
      service.testWebhook(principalOf(request).organizationId, request.params.webhookId),
  });

  app.route({
    method: 'GET',
    url: '/api/notifications/deliveries',
    config: { permission: 'org:admin' },
    schema: {
      tags,
      summary: 'The delivery log, newest first: attempts, next attempt, last status and error',
      querystring: deliveriesQuery,
      response: { 200: z.object({ deliveries: z.array(deliverySummary) }), ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => ({
      deliveries: await service.listDeliveries(principalOf(request).organizationId, request.query),
    }),
  });
}
