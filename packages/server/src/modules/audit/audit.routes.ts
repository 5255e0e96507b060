/** Reading, filtering and exporting the organization's audit log, and verifying the hash chain. */
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AuditLogRow } from '../../db/schema.js';
import type { AppDeps } from '../../deps.js';
import { errorResponses } from '../../lib/schemas.js';
import { principalOf } from '../access/access.hooks.js';
import { actorOf } from '../access/principal.js';
import { createAuditRepo } from './audit.repo.js';
import {
  auditActionsResponse,
  exportAuditQuery,
  listAuditQuery,
  listAuditResponse,
  verifyResponse,
} from './audit.schemas.js';
import { createAuditExportService, createAuditService } from './audit.service.js';

function toEntry(r: AuditLogRow) {
  return {
    seq: r.seq,
    id: r.id,
    occurredAt: r.occurred_at,
    actorType: r.actor_type,
    actorId: r.actor_id,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    outcome: r.outcome,
    reason: r.reason,
    details: JSON.parse(r.details) as Record<string, unknown>,
    requestId: r.request_id,
    hash: r.hash,
  };
}

export function registerAuditModule(app: App, deps: AppDeps) {
  const service = createAuditService({ auditRepo: createAuditRepo(deps.db) });
  const exports = createAuditExportService({ ...deps, audit: service });

  app.route({
    method: 'GET',
    url: '/api/audit-log',
    config: { permission: 'audit:read' },
    schema: {
      tags: ['audit'],
      summary:
        "The organization's audit entries, filtered; newest first with order=desc, paged by nextCursor",
      querystring: listAuditQuery,
      response: { 200: listAuditResponse, ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => {
      const { order, cursor, afterSeq, limit, ...filter } = request.query;
      const page = await service.page({
        organizationId: principalOf(request).organizationId,
        filter,
        order,
        cursor,
        afterSeq,
        limit,
      });
      return { entries: page.rows.map(toEntry), nextCursor: page.nextCursor };
    },
  });

  app.route({
    method: 'GET',
    url: '/api/audit-log/actions',
    config: { permission: 'audit:read' },
    schema: {
      tags: ['audit'],
      summary: "The actions that occur in the organization's audit log (for a filter's choices)",
      response: { 200: auditActionsResponse, ...errorResponses(401, 403) },
    },
    handler: async (request) => ({
      actions: await service.actions(principalOf(request).organizationId),
    }),
  });

  app.route({
    method: 'GET',
    url: '/api/audit-log/export',
    // No HEAD twin: it would write the export's audit row and read the whole log for no body.
    exposeHeadRoute: false,
    config: { permission: 'audit:read', rateLimit: { max: 10, timeWindow: '1 minute' } },
    schema: {
      tags: ['audit'],
      summary:
        "The organization's audit log, filtered, in chain order as JSON lines or CSV (every column, as `bdevault audit export` writes it); audited",
      querystring: exportAuditQuery,
      response: {
        200: z.unknown().describe('application/x-ndjson or text/csv, streamed'),
        ...errorResponses(400, 401, 403, 429),
      },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const { format, ...filter } = request.query;
      const started = await exports.start({
        organizationId: principal.organizationId,
        format,
        filter,
        actor: actorOf(principal),
        requestId: request.id,
      });
      const day = deps.clock.now().toISOString().slice(0, 10);
      async function* body() {
        // One chunk per page of rows: memory stays at a page whatever the log's size.
        for await (const lines of started.lines) yield `${lines.join('\n')}\n`;
      }
      return reply
        .header('cache-control', 'no-store')
        .header('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
        .header('content-disposition', `attachment; filename="bdevault-audit-log-${day}.${format}"`)
        .header('x-audit-entry-id', started.auditEntryId)
        .send(Readable.from(body()));
    },
  });

  app.route({
    method: 'GET',
    url: '/api/audit-log/verify',
    // The chain spans every organization, so checking it is an administrator's job.
    config: { permission: 'org:admin' },
    schema: {
      tags: ['audit'],
      summary: 'Verify the whole hash chain; reports the first edited, missing or reordered row',
      response: { 200: verifyResponse, ...errorResponses(401, 403) },
    },
    handler: async () => service.verifyChain(),
  });
}
