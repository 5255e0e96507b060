/** `POST /api/export/recovery-keys`: the age-encrypted break-glass export, for organization administrators. */
import { z } from 'zod';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { errorResponses } from '../../lib/schemas.js';
import { principalOf } from '../access/access.hooks.js';
import { actorOf } from '../access/principal.js';
import { createRecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import { AGE_RECIPIENT_PATTERN } from './age.js';
import { createKeyExportService } from './key-export.service.js';

export const exportBody = z.strictObject({
  recipient: z
    .string()
    .max(100)
    .transform((s) => s.trim().toLowerCase())
    .pipe(z.string().regex(AGE_RECIPIENT_PATTERN, 'must be an age X25519 recipient (age1…)'))
    .describe('age X25519 public key (`age-keygen` prints it); the only key that can open the file'),
});

export function registerKeyExportModule(app: App, deps: AppDeps) {
  const service = createKeyExportService({ ...deps, recoveryKeysRepo: createRecoveryKeysRepo(deps.db) });

  app.route({
    method: 'POST',
    url: '/api/export/recovery-keys',
    config: { permission: 'org:admin', rateLimit: { max: 5, timeWindow: '1 minute' } },
    schema: {
      tags: ['export'],
      summary:
        'Every recovery key of the organization as CSV encrypted to an age recipient (never in clear); audited',
      body: exportBody,
      response: {
        200: z.unknown().describe('application/octet-stream: an age-encrypted CSV file'),
        ...errorResponses(400, 401, 403, 429),
      },
    },
    handler: async (request, reply) => {
      const principal = principalOf(request);
      const result = await service.exportRecoveryKeys({
        organizationId: principal.organizationId,
        recipient: request.body.recipient,
        actor: actorOf(principal),
        requestId: request.id,
      });
      const date = deps.clock.now().toISOString().slice(0, 10);
      return reply
        .header('cache-control', 'no-store')
        .header('content-type', 'application/octet-stream')
        .header('content-disposition', `attachment; filename="bdevault-recovery-keys-${date}.csv.age"`)
        .header('x-exported-keys', String(result.count))
        .send(result.data);
    },
  });
}
