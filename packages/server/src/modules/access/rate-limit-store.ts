/**
 * The store behind `@fastify/rate-limit`'s per-route limits (sign-in, MFA, the token endpoint,
 * enrolment, exports, Graph): counters live in the shared `rate_limit_counters` table, so several
 * servers behind one load balancer allow one budget between them, not one each (docs/scale-out.md).
 * Fixed windows, like the disclosure limits that use the same table.
 */
import type { FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { Clock } from '../../lib/clock.js';
import type { AccessRepo } from './access.repo.js';
import type { CounterIncrements } from './counter-batcher.js';
import { windowStart } from './disclosure-guard.js';

type Counters = Pick<AccessRepo, 'pruneCounters'>;
type Result = { current: number; ttl: number };
type Callback = (err: Error | null, result?: Result) => void;

/**
 * What the plugin really hands `child()` for a route with its own `config.rateLimit`: the merged
 * limit parameters with the route under `routeInfo` (its type declaration says the route itself).
 */
interface RouteParams {
  routeInfo?: { method?: string | string[]; url?: string };
}

/** A store class for the plugin's `store` option; the plugin constructs it itself. */
export function databaseRateLimitStore(deps: {
  accessRepo: Counters;
  /** Every rate limit's counting (batched on PostgreSQL: AppDeps.rateCounters). */
  rateCounters: CounterIncrements;
  clock: Clock;
}): FastifyRateLimitStoreCtor {
  const { accessRepo, rateCounters, clock } = deps;
  // Expired counters are swept at most once a minute per process, not on every request.
  let lastPrune = 0;

  async function count(bucket: string, timeWindowMs: number): Promise<Result> {
    const now = clock.now();
    if (now.getTime() - lastPrune >= 60_000 || now.getTime() < lastPrune) {
      lastPrune = now.getTime();
      // Housekeeping only: a failed sweep must not fail the request it rides on.
      await accessRepo.pruneCounters(now.toISOString()).catch(() => undefined);
    }
    const seconds = Math.max(1, Math.ceil(timeWindowMs / 1000));
    const start = windowStart(now, seconds);
    const end = start.getTime() + seconds * 1000;
    const counts = await rateCounters.incrementCounters([
      { bucket, windowStart: start.toISOString(), expiresAt: new Date(end).toISOString() },
    ]);
    return { current: counts.get(bucket) ?? 0, ttl: end - now.getTime() };
  }

  class DatabaseRateLimitStore implements FastifyRateLimitStore {
    // The plugin constructs the store with its options; `child` adds the prefix naming the route,
    // so each route's budget is its own, as with the plugin's own stores.
    constructor(
      _options: unknown,
      private readonly prefix = 'route:',
    ) {}

    incr(key: string, callback: Callback, timeWindowMs: number): void {
      count(`${this.prefix}${key}`, timeWindowMs).then(
        (result) => callback(null, result),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    }

    child(routeOptions: object): FastifyRateLimitStore {
      const route = (routeOptions as RouteParams).routeInfo;
      const method = [route?.method ?? ''].flat().join(',');
      return new DatabaseRateLimitStore(undefined, `route:${method} ${route?.url ?? ''}:`);
    }
  }
  return DatabaseRateLimitStore;
}
