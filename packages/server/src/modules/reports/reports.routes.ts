/** Report routes: each answers JSON, or CSV with `?format=csv` (a download named after the report and day). */
import type { FastifyReply } from 'fastify';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { toCsv } from '../../lib/csv.js';
import { errorResponses } from '../../lib/schemas.js';
import { buildAccess } from '../access/access.build.js';
import { principalOf } from '../access/access.hooks.js';
import { createReportsRepo } from './reports.repo.js';
import {
  coverageReport,
  formatQuery,
  operatorsReport,
  periodQuery,
  postRecoveryQuery,
  postRecoveryReport,
  recoveriesQuery,
  recoveriesReport,
  rotationReport,
} from './reports.schemas.js';
import { createReportsService } from './reports.service.js';

type Cell = string | number | boolean | null;

export function registerReportsModule(app: App, deps: AppDeps) {
  const { authorizer } = buildAccess(deps);
  const service = createReportsService({ clock: deps.clock, reportsRepo: createReportsRepo(deps.db) });
  const tags = ['reports'];
  const errors = errorResponses(400, 401, 403);

  function csv(reply: FastifyReply, name: string, columns: string[], rows: Record<string, Cell>[]) {
    const day = deps.clock.now().toISOString().slice(0, 10);
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="bdevault-${name}-${day}.csv"`)
      .header('cache-control', 'no-store')
      .send(toCsv(columns, rows));
  }

  app.route({
    method: 'GET',
    url: '/api/reports/escrow-coverage',
    config: { permission: 'reports:read' },
    schema: {
      tags,
      summary: 'Devices and volumes with and without a current recovery key, overall and per device group',
      querystring: formatQuery,
      response: { 200: coverageReport, ...errors },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const report = await service.escrowCoverage(
        principal.organizationId,
        authorizer.scopeOf(principal, 'reports:read'),
      );
      if (request.query.format === 'json') return report;
      const columns = ['scope', 'deviceGroupId', 'name', ...Object.keys(report.overall)];
      return csv(reply, 'escrow-coverage', columns, [
        { scope: 'overall', deviceGroupId: null, name: null, ...report.overall },
        ...report.groups.map((g) => ({ scope: 'device-group', ...g })),
      ]);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/reports/recoveries',
    config: { permission: 'reports:read' },
    schema: {
      tags,
      summary: 'Recoveries (disclosures in the audit log) per day or week, by path and by root cause',
      querystring: recoveriesQuery,
      response: { 200: recoveriesReport, ...errors },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const report = await service.recoveries(
        principal.organizationId,
        service.period(request.query),
        request.query.bucket,
        authorizer.scopeOf(principal, 'reports:read'),
      );
      if (request.query.format === 'json') return report;
      return csv(reply, 'recoveries', ['period', 'path', 'rootCause', 'count'], report.series);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/reports/rotation-compliance',
    config: { permission: 'reports:read' },
    schema: {
      tags,
      summary: 'Rotation requests of the period: completed, failed, overdue, open, median time to complete',
      querystring: periodQuery,
      response: { 200: rotationReport, ...errors },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const report = await service.rotationCompliance(
        principal.organizationId,
        service.period(request.query),
        authorizer.scopeOf(principal, 'reports:read'),
      );
      if (request.query.format === 'json') return report;
      return csv(reply, 'rotation-compliance', Object.keys(report), [report]);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/reports/disclosures-by-operator',
    config: { permission: 'reports:read' },
    schema: {
      tags,
      summary: 'Disclosures per operator (user or API token) in the period, most first',
      querystring: periodQuery,
      response: { 200: operatorsReport, ...errors },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const report = await service.disclosuresByOperator(
        principal.organizationId,
        service.period(request.query),
        authorizer.scopeOf(principal, 'reports:read'),
      );
      if (request.query.format === 'json') return report;
      const columns = ['actorType', 'actorId', 'actorName', 'disclosures', 'devices', 'firstAt', 'lastAt'];
      return csv(reply, 'disclosures-by-operator', columns, report.operators);
    },
  });

  app.route({
    method: 'GET',
    url: '/api/reports/post-recovery',
    config: { permission: 'reports:read' },
    schema: {
      tags,
      summary: 'Devices flagged for post-recovery analysis: two or more disclosures in the last 30 days',
      querystring: postRecoveryQuery,
      response: { 200: postRecoveryReport, ...errors },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const { windowDays, minDisclosures } = request.query;
      const report = await service.postRecovery(
        principal.organizationId,
        windowDays,
        minDisclosures,
        authorizer.scopeOf(principal, 'reports:read'),
      );
      if (request.query.format === 'json') return report;
      const columns = ['deviceId', 'deviceName', 'disclosures', 'firstAt', 'lastAt', 'paths', 'rootCauses'];
      return csv(
        reply,
        'post-recovery',
        columns,
        report.devices.map((d) => ({ ...d, paths: d.paths.join(' '), rootCauses: d.rootCauses.join(' ') })),
      );
    },
  });
}
