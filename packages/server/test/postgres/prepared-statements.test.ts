// Statements are prepared once per PostgreSQL connection (db/prepared-statement-client.ts), survive
// a migration that changes a table's columns, and can be turned off for statement-unaware poolers.
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import type { Database } from '../../src/db/schema.js';
import { loadConfig } from '../../src/lib/config.js';
import { createPgDatabase, PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';

const pgUp = await postgresAvailable();
if (!pgUp)
  console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the prepared-statement test is skipped`);

// The test talks to a scratch table the schema does not know.
type Scratch = Kysely<Database & { scratch: { id: number; label: string; extra?: string } }>;

const preparedNames = async (db: Scratch) =>
  (await sql<{ name: string }>`select name from pg_prepared_statements`.execute(db)).rows.map((r) => r.name);

describe.skipIf(!pgUp)('prepared statements on PostgreSQL', () => {
  let database: { url: string; drop(): Promise<void> };
  const opened: Scratch[] = [];
  const open = (preparedStatements?: boolean) => {
    const db = openDatabase({
      dialect: 'postgres',
      url: database.url,
      ...(preparedStatements === undefined ? {} : { preparedStatements }),
    }) as unknown as Scratch;
    opened.push(db);
    return db;
  };

  beforeAll(async () => {
    database = await createPgDatabase();
    const db = open();
    await sql`create table scratch (id int primary key, label text not null)`.execute(db);
    await sql`insert into scratch select g, 'row ' || g from generate_series(1, 10) g`.execute(db);
  });
  afterAll(async () => {
    for (const db of opened) await db.destroy();
    await database?.drop();
  });

  // Each test pins one connection, so pg_prepared_statements shows what that connection prepared.
  const onOneConnection = <T>(db: Scratch, run: (conn: Scratch) => Promise<T>) =>
    db.connection().execute((conn) => run(conn as Scratch));

  it('prepares a parameterized statement once and reuses it', () =>
    onOneConnection(open(), async (db) => {
      const find = (id: number) =>
        db.selectFrom('scratch').selectAll().where('id', '=', id).executeTakeFirst();
      expect(await find(3)).toEqual({ id: 3, label: 'row 3' });
      const names = await preparedNames(db);
      expect(names.filter((n) => n.startsWith('bdv_'))).toHaveLength(1);
      expect(await find(4)).toEqual({ id: 4, label: 'row 4' });
      expect(await preparedNames(db)).toEqual(names);
    }));

  it('prepares the statement again when a migration changes the columns it returns', () =>
    onOneConnection(open(), async (db) => {
      const all = () => db.selectFrom('scratch').selectAll().where('id', '<=', 2).orderBy('id').execute();
      expect(await all()).toEqual([
        { id: 1, label: 'row 1' },
        { id: 2, label: 'row 2' },
      ]);
      await sql`alter table scratch add column extra text not null default 'x'`.execute(db);
      // Outside a transaction the query is retried under a new name at once.
      expect(await all()).toEqual([
        { id: 1, label: 'row 1', extra: 'x' },
        { id: 2, label: 'row 2', extra: 'x' },
      ]);
      await sql`alter table scratch drop column extra`.execute(db);
      // Inside a transaction that one transaction fails; the next one prepares anew and works.
      // (BEGIN by hand: the connection is pinned, and a Kysely transaction would ask for another.)
      await sql`begin`.execute(db);
      await expect(all()).rejects.toThrow(/cached plan/);
      await sql`rollback`.execute(db);
      await sql`begin`.execute(db);
      expect(await all()).toHaveLength(2);
      await sql`commit`.execute(db);
      expect((await preparedNames(db)).filter((n) => n.startsWith('bdv_'))).toHaveLength(3);
    }));

  it('runs unnamed statements when turned off', () =>
    onOneConnection(open(false), async (db) => {
      expect(await db.selectFrom('scratch').select('label').where('id', '=', 5).executeTakeFirst()).toEqual({
        label: 'row 5',
      });
      expect(await preparedNames(db)).toEqual([]);
    }));

  it('is on by default and turned off by BDEVAULT_DATABASE_PREPARED_STATEMENTS=false', () => {
    const on = loadConfig({ dataDir: '/tmp/unused', databaseUrl: database.url });
    expect(on.database).toMatchObject({ dialect: 'postgres', preparedStatements: true });
    const off = loadConfig({
      dataDir: '/tmp/unused',
      databaseUrl: database.url,
      databasePreparedStatements: 'false',
    });
    expect(off.database).toMatchObject({ dialect: 'postgres', preparedStatements: false });
    expect(() =>
      loadConfig({
        dataDir: '/tmp/unused',
        databaseUrl: database.url,
        databasePreparedStatements: 'perhaps',
      }),
    ).toThrow(/databasePreparedStatements|PREPARED/i);
  });
});
