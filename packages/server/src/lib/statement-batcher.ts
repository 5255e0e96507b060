/**
 * Many callers, one statement: group commit for small writes that every request makes (PostgreSQL).
 *
 * On a loaded server most of what a short statement costs is the round trip and the commit, in
 * the server and in PostgreSQL alike (bench/RESULTS.md). Callers that arrive while a statement is
 * running wait for it and then go together in the next one, up to `maxBatch`.
 *
 * Nothing waits for a batch to fill: a caller that finds one of the `maxInFlight` slots free runs
 * at once, alone, exactly as without this. Only while every slot is busy do callers queue, and the
 * next slot to free takes all of them. Each caller's promise settles when its batch's statement has
 * committed, with that item's own answer.
 *
 * If a batch fails, each of its items runs again alone, so an error reaches only the caller it
 * belongs to; if the database is unreachable, every caller gets the error at once (each would fail
 * alone too, after as long a wait again).
 */
import { classifyDatabaseFailure } from './database-errors.js';

export interface StatementBatcherOptions<I, O> {
  /** Runs a batch as one statement; answers in the items' order. */
  runBatch(items: readonly I[]): Promise<readonly O[]>;
  /** Runs one item alone: a batch of one, and each item again after its batch failed. */
  runAlone?(item: I): Promise<O>;
  /** Items with one exclusive key never share a batch (the later waits for the next one). */
  exclusiveKey?(item: I): string;
  /** Statements running at once (1); the database pool must have room for them and the rest. */
  maxInFlight?: number;
  /** Items in one statement at most (64). */
  maxBatch?: number;
}

interface Queued<I, O> {
  item: I;
  resolve: (answer: O) => void;
  reject: (err: unknown) => void;
}

/** A function that runs its item in the next statement; see the file comment. */
export function createStatementBatcher<I, O>(
  options: StatementBatcherOptions<I, O>,
): (item: I) => Promise<O> {
  const { runBatch, exclusiveKey } = options;
  const runAlone =
    options.runAlone ??
    (async (item: I) => {
      const [answer] = await runBatch([item]);
      return answer as O;
    });
  const maxInFlight = options.maxInFlight ?? 1;
  const maxBatch = options.maxBatch ?? 64;
  let queue: Queued<I, O>[] = [];
  let inFlight = 0;

  /** The oldest queued items, at most one per exclusive key; the rest stay queued in their order. */
  function takeBatch(): Queued<I, O>[] {
    if (!exclusiveKey && queue.length <= maxBatch) {
      const batch = queue;
      queue = [];
      return batch;
    }
    const batch: Queued<I, O>[] = [];
    const rest: Queued<I, O>[] = [];
    const keys = new Set<string>();
    for (const queued of queue) {
      const key = exclusiveKey?.(queued.item);
      if (batch.length < maxBatch && (key === undefined || !keys.has(key))) {
        if (key !== undefined) keys.add(key);
        batch.push(queued);
      } else {
        rest.push(queued);
      }
    }
    queue = rest;
    return batch;
  }

  function runOne(queued: Queued<I, O>): Promise<void> {
    return runAlone(queued.item).then(queued.resolve, queued.reject);
  }

  async function run(batch: Queued<I, O>[]): Promise<void> {
    if (batch.length === 1) return runOne(batch[0]!);
    let answers: readonly O[];
    try {
      answers = await runBatch(batch.map((queued) => queued.item));
      // A wrong count would hand callers each other's answers (or none): treat it as a failed batch.
      if (answers.length !== batch.length) {
        throw new Error(`statement batch answered ${answers.length} of ${batch.length} items`);
      }
    } catch (err) {
      if (classifyDatabaseFailure(err) === 'unavailable') {
        for (const queued of batch) queued.reject(err);
        return;
      }
      await Promise.all(batch.map(runOne));
      return;
    }
    batch.forEach((queued, n) => queued.resolve(answers[n] as O));
  }

  function pump(): void {
    while (inFlight < maxInFlight && queue.length > 0) {
      const batch = takeBatch();
      inFlight += 1;
      void run(batch).finally(() => {
        inFlight -= 1;
        pump();
      });
    }
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      pump();
    });
}
