/**
 * Group commit for the rate-limit counters (PostgreSQL).
 *
 * Every disclosure and every rate-limited request counts itself in `rate_limit_counters` before it
 * does anything else: one upsert and one commit per request. Under load those commits are a large
 * share of what a request costs PostgreSQL (bench/RESULTS.md). The increments of requests that
 * arrive while one upsert runs go together in the next one (lib/statement-batcher.ts), several
 * requests' counts of one window adding up to one `+ k`.
 *
 * Each caller still gets the count it would have got alone: the increments of one window are
 * numbered in the order the callers queued, so with k of them ending at n the first sees n - k + 1
 * and the last n, exactly as k upserts one after the other. So a limit still refuses from the same
 * attempt on, and the alert threshold is still crossed by exactly one attempt.
 */
import { createStatementBatcher } from '../../lib/statement-batcher.js';
import type { AccessRepo, CounterWindow } from './access.repo.js';

export type CounterIncrements = Pick<AccessRepo, 'incrementCounters'>;

const windowKey = (c: { bucket: string; windowStart: string }) => `${c.bucket}\n${c.windowStart}`;

/** Adds up one batch's increments per window, runs them as one upsert, and numbers each caller's counts. */
async function incrementTogether(
  repo: Pick<AccessRepo, 'addToCounters'>,
  attempts: readonly (readonly CounterWindow[])[],
): Promise<Map<string, number>[]> {
  const increments = new Map<string, CounterWindow & { by: number }>();
  for (const counters of attempts) {
    for (const c of counters) {
      const key = windowKey(c);
      const seen = increments.get(key);
      if (seen) seen.by += 1;
      else increments.set(key, { ...c, by: 1 });
    }
  }
  const rows = await repo.addToCounters([...increments.values()]);
  const totals = new Map(rows.map((r) => [windowKey(r), r.count]));
  // The count each increment would have seen alone: the window's total less the increments after it.
  const after = new Map([...increments].map(([key, i]) => [key, i.by]));
  return attempts.map((counters) => {
    const counts = new Map<string, number>();
    for (const c of counters) {
      const key = windowKey(c);
      const later = (after.get(key) ?? 1) - 1;
      after.set(key, later);
      counts.set(c.bucket, (totals.get(key) ?? 0) - later);
    }
    return counts;
  });
}

/**
 * `incrementCounters` for every rate limit of one process. Not for use inside a transaction: a
 * caller that passes one gets the repository's own statement in it.
 */
export function createCounterBatcher(
  repo: Pick<AccessRepo, 'addToCounters' | 'incrementCounters'>,
  options: { maxInFlight?: number; maxBatch?: number } = {},
): CounterIncrements {
  const increment = createStatementBatcher<readonly CounterWindow[], Map<string, number>>({
    runBatch: (attempts) => incrementTogether(repo, attempts),
    maxInFlight: options.maxInFlight ?? 1,
    maxBatch: options.maxBatch ?? 64,
  });
  return {
    incrementCounters(counters, trx) {
      if (trx) return repo.incrementCounters(counters, trx);
      if (counters.length === 0) return Promise.resolve(new Map());
      return increment(counters);
    },
  };
}
