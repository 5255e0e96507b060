/**
 * Group commit for one-statement disclosures (PostgreSQL).
 *
 * Every audited commit takes the audit chain head's row lock (migration 0011), so the commits of
 * audited writes queue one behind the other across every server on the database. One disclosure
 * per commit therefore tops out at the rate the head can be passed from commit to commit (about
 * 1,500/s on the bench machine, bench/RESULTS.md), whatever the servers do. Disclosures that arrive
 * while earlier ones are being written are written together instead, in one statement and one
 * commit (one-statement-disclosure.repo.ts `writeMany`): the head is taken once for all of them.
 *
 * The batching itself (free slot: at once, alone; busy: queue and go together; a failed batch
 * retried item by item) is lib/statement-batcher.ts. One slot by default: the commits queue behind
 * the chain head anyway, so a second statement in flight mostly adds a waiter on it (bench/RESULTS.md,
 * 2026-12-04 group commit section: one slot did as well or better at 4, 16 and 64 concurrent
 * writers). Two disclosures of one key never share a statement (they would race inside it); the
 * later waits for the next batch.
 *
 * The password is still handed out only after the commit that records it: each caller's promise
 * settles when its batch's statement has committed, with that item's own answer.
 */
import { createStatementBatcher } from '../../lib/statement-batcher.js';
import type {
  OneStatementDisclosure,
  OneStatementDisclosureRepo,
  OneStatementDisclosureWrite,
} from './one-statement-disclosure.repo.js';

export interface DisclosureWriteBatcherOptions {
  /** Statements writing at once (1); the database pool must have room for them and the reads besides. */
  maxInFlight?: number;
  /** Disclosures in one statement at most. */
  maxBatch?: number;
}

export function createDisclosureWriteBatcher(
  repo: OneStatementDisclosureRepo,
  options: DisclosureWriteBatcherOptions = {},
): OneStatementDisclosure {
  const write = createStatementBatcher<OneStatementDisclosureWrite, boolean>({
    runBatch: (inputs) => repo.writeMany(inputs),
    // Alone, a conflict (a lost race on a rotation request) answers false: the caller's transaction
    // takes over. Any other error is that caller's.
    runAlone: (input) => repo.write(input),
    exclusiveKey: (input) => input.key.id,
    maxInFlight: options.maxInFlight ?? 1,
    maxBatch: options.maxBatch ?? 64,
  });
  return { write };
}
