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
 * Nothing waits for a batch to fill: a disclosure that finds one of the `maxInFlight` slots free is
 * written at once, alone, exactly as without this. Only while every slot is busy do disclosures
 * queue, and the next slot to free takes all of them (up to `maxBatch`). One slot by default: the
 * commits queue behind the chain head anyway, so a second statement in flight mostly adds a waiter
 * on it (bench/RESULTS.md, 2026-12-04 group commit section: one slot did as well or better at 4, 16
 * and 64 concurrent writers). Two disclosures of one key
 * never share a statement (they would race inside it); the later waits for the next batch.
 *
 * The password is still handed out only after the commit that records it: each caller's promise
 * settles when its batch's statement has committed, with that item's own answer.
 */
import { classifyDatabaseFailure } from '../../lib/database-errors.js';
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

interface Queued {
  input: OneStatementDisclosureWrite;
  resolve: (written: boolean) => void;
  reject: (err: unknown) => void;
}

export function createDisclosureWriteBatcher(
  repo: OneStatementDisclosureRepo,
  options: DisclosureWriteBatcherOptions = {},
): OneStatementDisclosure {
  const maxInFlight = options.maxInFlight ?? 1;
  const maxBatch = options.maxBatch ?? 64;
  let queue: Queued[] = [];
  let inFlight = 0;

  /** The oldest queued disclosures, at most one per key; the rest stay queued in their order. */
  function takeBatch(): Queued[] {
    const batch: Queued[] = [];
    const rest: Queued[] = [];
    const keys = new Set<string>();
    for (const queued of queue) {
      const keyId = queued.input.key.id;
      if (batch.length < maxBatch && !keys.has(keyId)) {
        keys.add(keyId);
        batch.push(queued);
      } else {
        rest.push(queued);
      }
    }
    queue = rest;
    return batch;
  }

  function writeAlone(queued: Queued): Promise<void> {
    return repo.write(queued.input).then(queued.resolve, queued.reject);
  }

  async function writeBatch(batch: Queued[]): Promise<void> {
    if (batch.length === 1) return writeAlone(batch[0]!);
    let written: boolean[];
    try {
      written = await repo.writeMany(batch.map((queued) => queued.input));
    } catch (err) {
      // The database is gone: every item would fail alone too, after as long a wait again.
      if (classifyDatabaseFailure(err) === 'unavailable') {
        for (const queued of batch) queued.reject(err);
        return;
      }
      // The statement failed for one item's sake (a lost race on a rotation request, a row it may
      // not write). Each is written alone, so each caller gets its own answer: a conflict becomes
      // `false` (the caller's transaction takes over), any other error is that caller's.
      await Promise.all(batch.map(writeAlone));
      return;
    }
    batch.forEach((queued, n) => queued.resolve(written[n] ?? false));
  }

  function pump(): void {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = takeBatch();
      inFlight += 1;
      void writeBatch(batch).finally(() => {
        inFlight -= 1;
        pump();
      });
    }
  }

  return {
    write(input) {
      return new Promise<boolean>((resolve, reject) => {
        queue.push({ input, resolve, reject });
        pump();
      });
    },
  };
}
