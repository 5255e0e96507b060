/** Directory sync settings and runs, and CSV / JSON recovery-key import: organization administrators only. */
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../lib/errors.js';
import { errorResponses } from '../../lib/schemas.js';
import { principalOf } from '../access/access.hooks.js';
import { actorOf } from '../access/principal.js';
import { createDevicesRepo } from '../devices/devices.repo.js';
import { createRecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import { createDirectoryImportRepo } from './directory-import.repo.js';
import {
  fileImportBody,
  fileImportResponse,
  syncNowResponse,
  syncSettingsBody,
  syncView,
} from './directory-import.schemas.js';
import { createDirectoryImportService } from './directory-import.service.js';
import { createDirectorySyncService } from './directory-sync.service.js';
import { itemsFromRows, rowsFromCsv, rowsFromJson } from './file-import.js';

/** The import and sync services over one set of dependencies (routes, CLI and scheduler share it). */
export function buildDirectoryImportServices(deps: AppDeps) {
  const directoryImportRepo = createDirectoryImportRepo(deps.db);
  const importService = createDirectoryImportService({
    ...deps,
    devicesRepo: createDevicesRepo(deps.db),
    recoveryKeysRepo: createRecoveryKeysRepo(deps.db),
    directoryImportRepo,
  });
  const syncService = createDirectorySyncService({ ...deps, directoryImportRepo, importService });
  return { importService, syncService };
}

export function registerDirectoryImportModule(app: App, deps: AppDeps) {
  const { importService, syncService } = buildDirectoryImportServices(deps);
  // Manual runs started here finish before the app closes.
  app.addHook('onClose', async () => syncService.idle());

  app.route({
    method: 'GET',
    url: '/api/directory-sync',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['directory-import'],
      summary: 'The Active Directory sync settings (never the bind password) and the last run',
      response: { 200: syncView, ...errorResponses(401, 403, 404) },
    },
    handler: async (request) => syncService.get(principalOf(request).organizationId),
  });

  app.route({
    method: 'PUT',
    url: '/api/directory-sync',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['directory-import'],
      summary: 'Create or change the Active Directory sync; the bind password is stored encrypted',
      body: syncSettingsBody,
      response: { 200: syncView, ...errorResponses(400, 401, 403) },
    },
    handler: async (request) => {
      const principal = principalOf(request);
      return syncService.put(principal.organizationId, request.body, actorOf(principal), request.id);
    },
  });

  app.route({
    method: 'DELETE',
    url: '/api/directory-sync',
    config: { permission: 'org:admin' },
    schema: {
      tags: ['directory-import'],
      summary: 'Remove the Active Directory sync (imported devices and keys stay)',
      response: { 204: z.null(), ...errorResponses(401, 403, 404) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      await syncService.remove(principal.organizationId, actorOf(principal), request.id);
      return reply.code(204).send(null);
    },
  });

  app.route({
    method: 'POST',
    url: '/api/directory-sync/sync-now',
    config: { permission: 'org:admin', rateLimit: { max: 10, timeWindow: '1 minute' } },
    schema: {
      tags: ['directory-import'],
      summary: 'Start a sync now in the background; GET /api/directory-sync shows its progress and result',
      response: { 202: syncNowResponse, 409: syncNowResponse, ...errorResponses(401, 403, 404, 429) },
    },
    handler: async (request, reply) => {
      const started = await syncService.start(principalOf(request).organizationId, 'manual');
      return reply.code(started ? 202 : 409).send({ started });
    },
  });

  app.route({
    method: 'POST',
    url: '/api/import/recovery-keys',
    config: { permission: 'org:admin', rateLimit: { max: 10, timeWindow: '1 minute' } },
    schema: {
      tags: ['directory-import'],
      summary:
        'Import recovery keys from a CSV or JSON file: valid rows are stored, invalid rows reported (dryRun stores nothing)',
      body: fileImportBody,
      response: { 200: fileImportResponse, ...errorResponses(400, 401, 403, 413, 429) },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const { format, dryRun } = request.body;
      const parsed =
        format === 'csv'
          ? rowsFromCsv(request.body.csv ?? '')
          : { rows: rowsFromJson(request.body.rows), ignoredColumns: [] };
      if (parsed.rows.length === 0) throw new AppError('VALIDATION_FAILED', 'The file has no rows');
      const { items, rejected } = itemsFromRows(parsed.rows, deps.clock.now().toISOString());
      const report = await importService.importItems({
        organizationId: principal.organizationId,
        source: format,
        items,
        rejected,
        dryRun,
        actor: actorOf(principal),
        requestId: request.id,
      });
      reply.header('cache-control', 'no-store');
      return { ...report, ignoredColumns: parsed.ignoredColumns };
    },
  });
}
