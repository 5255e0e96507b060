/** Liveness (the process answers) and readiness (the database answers). */
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { pingDatabase } from '../../db/database.js';
import { AppError } from '../../lib/errors.js';
import { errorResponses } from '../../lib/schemas.js';

export function registerHealthModule(app: App, deps: Pick<AppDeps, 'db'>) {
  app.route({
    method: 'GET',
    url: '/healthz',
    config: { permission: 'public' },
    schema: {
      tags: ['health'],
      summary: 'Liveness',
      response: { 200: z.object({ status: z.literal('ok') }) },
    },
    handler: async () => ({ status: 'ok' as const }),
  });

  app.route({
    method: 'GET',
    url: '/readyz',
    config: { permission: 'public' },
    schema: {
      tags: ['health'],
      summary: 'Readiness: the database answers',
      response: { 200: z.object({ status: z.literal('ready') }), ...errorResponses(503) },
    },
    handler: async () => {
      try {
        await pingDatabase(deps.db);
      } catch (cause) {
        throw new AppError('NOT_READY', 'The database is not reachable', { cause });
      }
      return { status: 'ready' as const };
    },
  });
}
