/** One PostgreSQL connection for the length of `fn`, closed afterwards (also when `fn` throws). */
import pg from 'pg';

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}
