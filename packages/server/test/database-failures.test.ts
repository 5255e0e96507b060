// Database failures a caller can act on: a lost race is a 409 and an unreachable or locked database
// a 503 with Retry-After, never a bare 500 and never the driver's text (it can quote row values).
// The classifier is checked on errors the real drivers raise; the HTTP answers on a real outage:
// on PostgreSQL a TCP path to the server that is cut and restored, on SQLite a write lock held by
// another connection past the busy timeout.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { openDatabase } from '../src/db/database.js';
import { classifyDatabaseFailure } from '../src/lib/database-errors.js';
import { bearer, createTestVault, enrollDevice, type TestVault } from './helpers.js';
import { createPgDatabase, PG_ADMIN_URL, postgresAvailable, testDialect } from './support/postgres.js';

const pgUp = await postgresAvailable();
if (!pgUp) console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: its driver-error checks are skipped`);

async function caught(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (err) {
    return err;
  }
  throw new Error('expected a failure');
}

/** A port with nothing listening on it: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('classifying the drivers’ own errors', () => {
  it('SQLite: a taken unique key is a conflict; a lock held past the busy timeout is unavailable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bdv-dberr-'));
    const file = join(dir, 'x.sqlite');
    const a = new BetterSqlite3(file);
    const b = new BetterSqlite3(file);
    try {
      a.pragma('journal_mode = WAL');
      a.exec('create table t (id integer primary key, name text unique, n integer check (n > 0))');
      a.exec("insert into t (id, name, n) values (1, 'one', 1)");
      expect(classifyDatabaseFailure(await caught(() => a.exec("insert into t values (2, 'one', 1)")))).toBe(
        'conflict',
      );
      expect(classifyDatabaseFailure(await caught(() => a.exec("insert into t values (1, 'two', 1)")))).toBe(
        'conflict',
      );
      // A check constraint is a bug in the caller, not a race: left to the 500 path.
      expect(
        classifyDatabaseFailure(await caught(() => a.exec("insert into t values (3, 'three', 0)"))),
      ).toBeUndefined();
      a.exec('begin immediate');
      b.pragma('busy_timeout = 0');
      expect(classifyDatabaseFailure(await caught(() => b.exec("insert into t values (4, 'four', 4)")))).toBe(
        'unavailable',
      );
      a.exec('rollback');
    } finally {
      a.close();
      b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a refused connection is unavailable through the database layer, and only there', async () => {
    const port = await closedPort();
    const url = `postgres://postgres@127.0.0.1:${port}/test`;
    const db = openDatabase({ dialect: 'postgres', url });
    try {
      expect(classifyDatabaseFailure(await caught(() => sql`select 1`.execute(db)))).toBe('unavailable');
    } finally {
      await db.destroy();
    }
    // The same refusal met by a webhook, an LDAP bind or an OIDC discovery is not the database's.
    const fetched = await caught(() => fetch(`http://127.0.0.1:${port}/`));
    expect((fetched as { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
    expect(classifyDatabaseFailure(fetched)).toBeUndefined();
    expect(classifyDatabaseFailure((fetched as { cause: unknown }).cause)).toBeUndefined();
    expect(
      classifyDatabaseFailure(await caught(() => new pg.Client({ connectionString: url }).connect())),
    ).toBe(undefined);
  });

  it('plain errors and errors of other kinds are left alone', () => {
    expect(classifyDatabaseFailure(new Error('boom'))).toBeUndefined();
    expect(classifyDatabaseFailure('ECONNREFUSED')).toBeUndefined();
    expect(
      classifyDatabaseFailure(Object.assign(new Error('x'), { code: 'ERR_INVALID_ARG_TYPE' })),
    ).toBeUndefined();
  });

  describe.skipIf(!pgUp)('PostgreSQL', () => {
    let database: { url: string; drop(): Promise<void> };
    let client: pg.Client;
    beforeAll(async () => {
      database = await createPgDatabase();
      client = new pg.Client({ connectionString: database.url });
      await client.connect();
      await client.query('create table t (id int primary key, n int check (n > 0))');
      await client.query('insert into t values (1, 1)');
    });
    afterAll(async () => {
      await client?.end();
      await database?.drop();
    });

    it('a unique violation is a conflict, a check violation is not, a terminated backend is unavailable', async () => {
      expect(classifyDatabaseFailure(await caught(() => client.query('insert into t values (1, 2)')))).toBe(
        'conflict',
      );
      expect(
        classifyDatabaseFailure(await caught(() => client.query('insert into t values (2, 0)'))),
      ).toBeUndefined();
      const victim = new pg.Client({ connectionString: database.url });
      await victim.connect();
      victim.on('error', () => undefined);
      const { rows } = await victim.query<{ pid: number }>('select pg_backend_pid() as pid');
      const pid = rows[0]!.pid;
      // Terminate the backend while a query runs on it, as a restart does: that query receives the
      // server's 57P01. (Terminating an idle connection races: the next query may find the socket
      // already closed and get node-postgres's unmarked "not queryable" error instead.)
      const running = caught(() => victim.query('select pg_sleep(30)'));
      await expect
        .poll(async () => {
          const active = await client.query(
            "select 1 from pg_stat_activity where pid = $1 and state = 'active'",
            [pid],
          );
          return active.rowCount;
        })
        .toBe(1);
      await client.query('select pg_terminate_backend($1)', [pid]);
      const err = await running;
      expect((err as { code?: string }).code).toBe('57P01');
      expect(classifyDatabaseFailure(err)).toBe('unavailable');
      await victim.end().catch(() => undefined);
    });
  });
});

/**
 * A TCP relay to PostgreSQL that the test can cut (every open connection dropped, new ones refused)
 * and restore on the same port: what a database restart or a network partition looks like to the pool.
 */
async function cuttableRelay(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const open = async () => {
    server = createServer((inbound) => {
      const outbound = connect(target.port, target.host);
      for (const s of [inbound, outbound]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      inbound.pipe(outbound).pipe(inbound);
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, '127.0.0.1', resolve);
    });
    port = (server.address() as { port: number }).port;
  };
  await open();
  return {
    get port() {
      return port;
    },
    async cut() {
      const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
    async restore() {
      if (!server?.listening) await open();
    },
    async close() {
      for (const s of sockets) s.destroy();
      if (server?.listening) await new Promise<void>((resolve) => server!.close(() => resolve()));
    },
  };
}

describe('what callers get while the database is out', () => {
  let t: TestVault;
  let relay: Awaited<ReturnType<typeof cuttableRelay>> | undefined;
  let database: { url: string; drop(): Promise<void> } | undefined;
  let holder: BetterSqlite3.Database | undefined;
  let client: { id: string; token: string };

  beforeAll(async () => {
    if (testDialect === 'postgres') {
      database = await createPgDatabase();
      const real = new URL(database.url);
      relay = await cuttableRelay({ host: real.hostname, port: Number(real.port || 5432) });
      const viaRelay = new URL(database.url);
      viaRelay.port = String(relay.port);
      t = await createTestVault({ databaseUrl: viaRelay.toString() });
    } else {
      t = await createTestVault();
    }
    await enrollDevice(t, 'PC-OUTAGE-1');
    client = await t.vault.services.apiTokens.createApiToken({
      organizationId: t.organizationId,
      name: 'graph script',
      permissions: ['devices:read'],
      creatorPermissions: undefined,
      actor: { type: 'cli', id: null },
    });
  }, 120_000);

  afterAll(async () => {
    holder?.close();
    await relay?.restore().catch(() => undefined);
    await t?.close();
    await relay?.close();
    await database?.drop();
  });

  const cut = async () => {
    if (relay) return relay.cut();
    // SQLite: another process-like connection holds the write lock; the vault's writes wait out
    // their busy timeout (5 s) and then fail.
    holder = new BetterSqlite3(join(t.dir, 'bdevault.sqlite'));
    holder.exec('begin exclusive');
  };
  const restore = async () => {
    if (relay) return relay.restore();
    holder!.exec('rollback');
    holder!.close();
    holder = undefined;
  };

  const createGroup = (name: string) =>
    t.app.inject({
      method: 'POST',
      url: '/api/device-groups',
      headers: bearer(t.adminToken),
      payload: { name },
    });

  it('answers 503 DATABASE_UNAVAILABLE with Retry-After, in JSON, Graph and OAuth shapes, then recovers', async () => {
    const before = await t.app.inject({ url: '/api/device-groups', headers: bearer(t.adminToken) });
    expect(before.statusCode, before.body).toBe(200);

    const lost: Error[] = [];
    t.vault.onDatabaseConnectionLost((err) => lost.push(err));
    await cut();
    // A write: on SQLite reads still work under another connection's lock, writes do not.
    const write = await createGroup('written during the outage');
    expect(write.statusCode, write.body).toBe(503);
    expect(write.headers['retry-after']).toBe('5');
    expect(write.json().error).toMatchObject({ code: 'DATABASE_UNAVAILABLE', requestId: expect.any(String) });
    // The driver's own words (which can quote values, hosts or file paths) stay in the server log.
    expect(write.body).not.toMatch(/ECONNREFUSED|SQLITE|terminated|database is locked|127\.0\.0\.1/i);

    // A rate-limited route: its counters live in the database too, so it cannot admit the request.
    const signIn = await t.app.inject({
      method: 'POST',
      url: '/api/auth/sign-in',
      payload: { username: 'nobody', password: 'not a real password' },
    });
    expect(signIn.statusCode, signIn.body).toBe(503);
    expect(signIn.json().error.code).toBe('DATABASE_UNAVAILABLE');

    if (relay) {
      // The pool's connections died with the relay, one of them under the write's query: each loss
      // is reported, none is thrown (an `error` event nobody hears would end the process).
      expect(lost.length).toBeGreaterThan(0);
      const graph = await t.app.inject({ url: '/v1.0/devices', headers: bearer(t.adminToken) });
      expect(graph.statusCode, graph.body).toBe(503);
      expect(graph.json().error.code).toBe('ServiceUnavailable');
      // Graph SDKs' retry handlers wait as long as this says.
      expect(graph.headers['retry-after']).toBe('5');
      const token = await t.app.inject({
        method: 'POST',
        url: '/oauth2/v2.0/token',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: new URLSearchParams({
          client_id: client.id,
          client_secret: client.token,
          scope: 'https://graph.microsoft.com/.default',
          grant_type: 'client_credentials',
        }).toString(),
      });
      expect(token.statusCode, token.body).toBe(503);
      expect(token.json().error).toBe('temporarily_unavailable');
      expect(token.headers['retry-after']).toBe('5');
      const ready = await t.app.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(503);
    }

    await restore();
    const after = await createGroup('written after the outage');
    expect(after.statusCode, after.body).toBe(201);
    const groups = await t.app.inject({ url: '/api/device-groups', headers: bearer(t.adminToken) });
    const names = (groups.json().deviceGroups as { name: string }[]).map((g) => g.name);
    expect(names).toContain('written after the outage');
    expect(names).not.toContain('written during the outage');
  }, 60_000);
});
