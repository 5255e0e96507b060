// A fresh PostgreSQL database per test file on the machine's server (skipped, and saying so, when absent).
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_ADMIN_URL = process.env.BDEVAULT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Creates an empty database and returns its URL and a function that drops it. */
export async function createPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `bdevault_test_${randomBytes(6).toString('hex')}`;
  const admin = async (statement: string, values: unknown[] = []) => {
    const client = new pg.Client({ connectionString: PG_ADMIN_URL });
    await client.connect();
    try {
      return (await client.query<{ n: number }>(statement, values)).rows;
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  const drop = async () => {
    // pool.end() resolves before its backends have exited; forcing the drop at once would terminate
    // them, and their clients, already detached from the pool, would throw 57P01 as uncaught errors.
    for (let i = 0; i < 50; i++) {
      const [row] = await admin('select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
      if (row?.n === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await admin(`drop database if exists ${name} with (force)`);
  };
  return { url: url.toString(), drop };
}

/**
 * Which database the test vault helpers open: the `server-postgres` vitest project sets
 * BDEVAULT_TEST_DIALECT=postgres so the same suites exercise the PostgreSQL repositories.
 */
export const testDialect: 'sqlite' | 'postgres' =
  process.env.BDEVAULT_TEST_DIALECT === 'postgres' ? 'postgres' : 'sqlite';

/**
 * The database for one test vault: on the postgres run a fresh database (dropped by `drop`), so
 * vaults stay as isolated as their temp SQLite files; on SQLite (or when the caller already chose a
 * URL) nothing, and the vault opens its file in the data dir.
 */
export async function testDatabase(
  input: { databaseUrl?: string | undefined } = {},
): Promise<{ input: { databaseUrl?: string }; drop(): Promise<void> }> {
  if (testDialect === 'sqlite' || input.databaseUrl !== undefined)
    return { input: {}, drop: async () => undefined };
  const db = await createPgDatabase();
  return { input: { databaseUrl: db.url }, drop: db.drop };
}
