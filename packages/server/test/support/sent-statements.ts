/**
 * The statement texts node-postgres sends while `run` runs, in order: how the PostgreSQL tests
 * count round trips (each statement is one). Every client in the process is watched, so run
 * nothing else meanwhile.
 */
import pg from 'pg';

export async function statementsOf(run: () => Promise<unknown>): Promise<string[]> {
  const sent: string[] = [];
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const first = args[0] as string | { text: string };
    sent.push(typeof first === 'string' ? first : first.text);
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    await run();
  } finally {
    pg.Client.prototype.query = original;
  }
  return sent;
}
