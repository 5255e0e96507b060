/**
 * A node-postgres client that prepares each distinct parameterized statement once per connection
 * (a named statement) instead of having PostgreSQL parse and plan it on every execution.
 *
 * Why: Kysely sends every query as an unnamed extended-protocol statement, so PostgreSQL re-parses
 * and re-plans the same few dozen statements thousands of times a second. Measured on the
 * benchmark machine (a one-row primary-key SELECT, 16 concurrent): 81 µs of PostgreSQL CPU per
 * query unnamed, 38 µs named; 9,400 against 14,500 queries/s.
 *
 * What can go wrong, and what this does about it:
 * - A migration that changes a table's columns makes PostgreSQL refuse a prepared `SELECT *` on
 *   it ("cached plan must not change result type", 0A000). The statement is then prepared again
 *   under a new name; outside a transaction the query is retried at once, inside one the
 *   transaction fails as any database error would and the next one works.
 * - Unbounded distinct texts (IN lists and multi-row inserts of every length): a connection
 *   prepares at most MAX_PREPARED statements, beyond which queries run unnamed as before, and only
 *   statements with parameters are named (DDL and multi-statement scripts keep the simple protocol).
 * - Poolers that move a session's statements between server connections (PgBouncer in transaction
 *   mode before 1.21) cannot follow named statements: set BDEVAULT_DATABASE_PREPARED_STATEMENTS=false.
 */
import { createHash } from 'node:crypto';
import pg from 'pg';

const MAX_PREPARED = 500;
const PLAN_CHANGED = /cached plan must not change result type/i;

export class PreparedStatementClient extends pg.Client {
  /** Statement text → how many times its plan's result type changed under it on this connection. */
  readonly #generations = new Map<string, number>();
  /** Statement text → its name (hashing the text on every query would cost more than the lookup). */
  readonly #names = new Map<string, string>();
  readonly #prepared = new Set<string>();

  override query(...args: unknown[]): never {
    const [text, values] = args;
    const plain = () => (pg.Client.prototype.query as (...a: unknown[]) => never).apply(this, args);
    if (args.length !== 2 || typeof text !== 'string' || !Array.isArray(values) || values.length === 0) {
      return plain();
    }
    const name = this.#nameOf(text);
    if (!this.#prepared.has(name) && this.#prepared.size >= MAX_PREPARED) return plain();
    this.#prepared.add(name);
    const run = (pg.Client.prototype.query as (config: pg.QueryConfig) => Promise<pg.QueryResult>).call(
      this,
      { name, text, values },
    );
    return run.catch((err: unknown) => {
      if (!(err instanceof Error) || !PLAN_CHANGED.test(err.message)) throw err;
      this.#generations.set(text, (this.#generations.get(text) ?? 0) + 1);
      this.#names.delete(text);
      if (this.getTransactionStatus() !== 'I') throw err;
      return this.query(text, values);
    }) as never;
  }

  #nameOf(text: string): string {
    let name = this.#names.get(text);
    if (name === undefined) {
      const digest = createHash('sha1').update(text).digest('hex').slice(0, 24);
      name = `bdv_${digest}_${this.#generations.get(text) ?? 0}`;
      if (this.#names.size < 2 * MAX_PREPARED) this.#names.set(text, name);
    }
    return name;
  }
}
