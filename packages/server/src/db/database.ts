/** Opens the database for a configured target (embedded SQLite or PostgreSQL) as one Kysely type. */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  Kysely,
  PostgresDialect,
  SqliteDialect,
  sql,
  type PostgresPool,
  type PostgresPoolClient,
  type Transaction,
} from 'kysely';
import pg from 'pg';
import type { DatabaseTarget } from '../lib/config.js';
import { fromDatabase } from '../lib/database-errors.js';
import { PreparedStatementClient } from './prepared-statement-client.js';
import type { Database } from './schema.js';

export type Db = Kysely<Database>;
/** What every repository method accepts: the database, or a transaction to join. */
export type Executor = Kysely<Database> | Transaction<Database>;

/**
 * `onConnectionLost`: a pooled PostgreSQL connection that dies (a database restart, a failover, a
 * proxy's idle timeout) is reported here once; the pool replaces it on next use. node-postgres
 * emits the loss as an `error` event on the client, and on the pool too while the client is idle;
 * an `error` event nobody listens to ends the process, so both always have a listener. A query
 * that was running on the connection fails on its own, and its request answers 503.
 */
export function openDatabase(
  target: DatabaseTarget,
  onConnectionLost: (err: Error) => void = () => undefined,
): Db {
  if (target.dialect === 'postgres') {
    const pool = new pg.Pool({
      connectionString: target.url,
      max: 10,
      // A request waits at most this long for a connection (database down, pool exhausted), then
      // fails as DATABASE_UNAVAILABLE (503) instead of hanging until the client gives up.
      connectionTimeoutMillis: 15_000,
      ...(target.preparedStatements === false ? {} : { Client: PreparedStatementClient }),
    });
    pool.on('connect', (client) => client.on('error', onConnectionLost));
    pool.on('error', () => undefined);
    return new Kysely<Database>({ dialect: new PostgresDialect({ pool: markingErrors(pool) }) });
  }
  mkdirSync(dirname(target.path), { recursive: true, mode: 0o700 });
  const handle = new BetterSqlite3(target.path);
  handle.pragma('journal_mode = WAL');
  handle.pragma('foreign_keys = ON');
  handle.pragma('busy_timeout = 5000');
  handle.pragma('synchronous = NORMAL');
  return new Kysely<Database>({ dialect: new SqliteDialect({ database: handle }) });
}

/**
 * The pool as Kysely sees it, with every error of a connect or a query marked as the database's
 * own, so the error handler can tell a lost database connection from a lost LDAP or SMTP one.
 */
function markingErrors(pool: pg.Pool): PostgresPool {
  const mark = (err: unknown): never => {
    throw fromDatabase(err);
  };
  return {
    async connect() {
      const client = await pool.connect().catch(mark);
      const query = (...args: unknown[]) => {
        const result = (client.query as (...a: unknown[]) => unknown)(...args);
        // A cursor (streamed rows) is returned as it is; a query's promise gets its errors marked.
        return result instanceof Promise ? result.catch(mark) : result;
      };
      return {
        query: query as PostgresPoolClient['query'],
        release: (destroy?: boolean) => client.release(destroy),
      };
    },
    end: () => pool.end(),
  };
}

/** Readiness probe: one round trip. */
export async function pingDatabase(db: Executor): Promise<void> {
  await sql`select 1`.execute(db);
}
