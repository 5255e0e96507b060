/**
 * The statements node-postgres sends while `run` runs, in order: how the PostgreSQL tests count
 * round trips (each statement is one) and, with their values, ask PostgreSQL for their plans.
 * Every client in the process is watched, so run nothing else meanwhile.
 */
import pg from 'pg';

export interface SentStatement {
  text: string;
  /** The bound values; empty for a statement sent without parameters. */
  values: unknown[];
}

export async function sentStatementsOf(run: () => Promise<unknown>): Promise<SentStatement[]> {
  const sent: SentStatement[] = [];
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const [first, second] = args as [string | pg.QueryConfig, unknown];
    const text = typeof first === 'string' ? first : first.text;
    const values = typeof first === 'string' ? second : first.values;
    sent.push({ text, values: Array.isArray(values) ? values : [] });
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    await run();
  } finally {
    pg.Client.prototype.query = original;
  }
  return sent;
}

/** The texts alone. */
export async function statementsOf(run: () => Promise<unknown>): Promise<string[]> {
  return (await sentStatementsOf(run)).map((statement) => statement.text);
}
