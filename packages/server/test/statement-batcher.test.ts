// The batcher under every group-committed statement (lib/statement-batcher.ts), without a database:
// a free slot runs a caller at once and alone; callers that arrive while it runs go together next,
// at most `maxBatch` at a time and never two with one exclusive key; each caller gets its own
// answer; a failed batch is retried item by item, unless the database is unreachable.
import { describe, expect, it } from 'vitest';
import { createStatementBatcher } from '../src/lib/statement-batcher.js';

/** A statement that records each batch it is given and answers when `release` is called. */
function recordingStatement(answer: (item: number) => string = (item) => `answer ${item}`) {
  const batches: number[][] = [];
  const pending: (() => void)[] = [];
  return {
    batches,
    runBatch(items: readonly number[]): Promise<string[]> {
      batches.push([...items]);
      return new Promise((resolve) => pending.push(() => resolve(items.map(answer))));
    },
    /** Lets the oldest running statement finish. */
    async release() {
      pending.shift()?.();
      await new Promise((resolve) => setImmediate(resolve));
    },
  };
}

const unavailable = () => Object.assign(new Error('the database is restarting'), { code: '57P03' });

describe('statement batcher', () => {
  it('runs the first caller alone at once; the callers that queue meanwhile go together, each with its own answer', async () => {
    const statement = recordingStatement();
    const run = createStatementBatcher({ runBatch: (items: readonly number[]) => statement.runBatch(items) });
    const first = run(1);
    const rest = [run(2), run(3), run(4)];
    expect(statement.batches).toEqual([[1]]);
    await statement.release();
    expect(statement.batches).toEqual([[1], [2, 3, 4]]);
    await statement.release();
    expect(await first).toBe('answer 1');
    expect(await Promise.all(rest)).toEqual(['answer 2', 'answer 3', 'answer 4']);
  });

  it('takes at most maxBatch callers per statement, in their order, and keeps one exclusive key per batch', async () => {
    const statement = recordingStatement();
    const run = createStatementBatcher({
      runBatch: (items: readonly number[]) => statement.runBatch(items),
      maxBatch: 3,
      exclusiveKey: (item: number) => String(item % 10),
    });
    const all = [run(0), run(1), run(11), run(2), run(3), run(4)];
    await statement.release();
    // 11 shares its key with 1, so it waits; 4 is past maxBatch.
    expect(statement.batches).toEqual([[0], [1, 2, 3]]);
    await statement.release();
    await statement.release();
    expect(statement.batches).toEqual([[0], [1, 2, 3], [11, 4]]);
    expect(await Promise.all(all)).toEqual([
      'answer 0',
      'answer 1',
      'answer 11',
      'answer 2',
      'answer 3',
      'answer 4',
    ]);
  });

  it('runs up to maxInFlight statements at once', async () => {
    const statement = recordingStatement();
    const run = createStatementBatcher({
      runBatch: (items: readonly number[]) => statement.runBatch(items),
      maxInFlight: 2,
    });
    const all = [run(1), run(2), run(3), run(4)];
    expect(statement.batches).toEqual([[1], [2]]);
    await statement.release();
    expect(statement.batches).toEqual([[1], [2], [3, 4]]);
    await statement.release();
    await statement.release();
    await Promise.all(all);
  });

  it('a failed batch is retried item by item, so only the failing caller gets the error', async () => {
    const calls: number[][] = [];
    const run = createStatementBatcher({
      async runBatch(items: readonly number[]) {
        calls.push([...items]);
        await new Promise((resolve) => setImmediate(resolve));
        if (items.includes(13)) throw new Error('item 13 is refused');
        return items.map((item) => item * 2);
      },
    });
    const outcomes = await Promise.allSettled([run(1), run(12), run(13), run(14)]);
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value : (o.reason as Error).message))).toEqual([
      2,
      24,
      'item 13 is refused',
      28,
    ]);
    expect(calls).toEqual([[1], [12, 13, 14], [12], [13], [14]]);
  });

  it('when the database is unreachable, every caller of the batch gets that error, without retries', async () => {
    const calls: number[][] = [];
    const run = createStatementBatcher({
      async runBatch(items: readonly number[]): Promise<number[]> {
        calls.push([...items]);
        await new Promise((resolve) => setImmediate(resolve));
        throw unavailable();
      },
    });
    const outcomes = await Promise.allSettled([run(1), run(2), run(3)]);
    expect(outcomes.map((o) => o.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(calls).toEqual([[1], [2, 3]]);
  });

  it('a batch that answers for the wrong number of items is retried item by item, not handed out', async () => {
    const calls: number[][] = [];
    const run = createStatementBatcher({
      async runBatch(items: readonly number[]) {
        calls.push([...items]);
        await new Promise((resolve) => setImmediate(resolve));
        // A broken statement: drops its last answer when given several.
        return items.slice(0, items.length > 1 ? -1 : undefined).map((item) => item * 2);
      },
    });
    expect(await Promise.all([run(1), run(2), run(3)])).toEqual([2, 4, 6]);
    expect(calls).toEqual([[1], [2, 3], [2], [3]]);
  });
});
