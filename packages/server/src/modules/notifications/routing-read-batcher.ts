/**
 * The routing read every audited change makes after its commit (who hears of it: security
 * addresses, webhooks, the device's owner), batched on PostgreSQL: the reads of changes that commit
 * while one runs go together in the next statement (lib/statement-batcher.ts; `routingMany`, one
 * JSON parameter). A read on a quiet server runs at once, alone, as before. Nothing is cached: a
 * webhook or address configured a moment ago hears of the next change.
 */
import { createStatementBatcher } from '../../lib/statement-batcher.js';
import type { NotificationsRepo, Routing, RoutingTarget } from './notifications.repo.js';

export type RoutingReads = Pick<NotificationsRepo, 'routing'>;

export function createRoutingReadBatcher(
  repo: Pick<NotificationsRepo, 'routing' | 'routingMany'>,
  options: { maxInFlight?: number; maxBatch?: number } = {},
): RoutingReads {
  const read = createStatementBatcher<RoutingTarget, Routing>({
    runBatch: (targets) => repo.routingMany(targets),
    runAlone: ({ organizationId, deviceId }) => repo.routing(organizationId, deviceId),
    // Reads wait for nothing but each other; a second slot keeps one slow read from holding up
    // every notification.
    maxInFlight: options.maxInFlight ?? 2,
    maxBatch: options.maxBatch ?? 64,
  });
  return {
    routing(organizationId, deviceId, trx) {
      if (trx) return repo.routing(organizationId, deviceId, trx);
      return read({ organizationId, deviceId });
    },
  };
}
