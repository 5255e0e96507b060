// How many statements a disclosure sends to PostgreSQL. On the benchmark machine each round trip
// costs the server about as much CPU as the rest of the request's work together (bench/RESULTS.md),
// so the count is what disclosure throughput rests on; this test keeps it from creeping back up.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPgDatabase, PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';
import {
  bearer,
  createTestVault,
  enrollDevice,
  escrowPayload,
  newKey,
  randomKeyId,
  type TestVault,
} from '../helpers.js';

const pgUp = await postgresAvailable();
if (!pgUp)
  console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the disclosure round-trip count is skipped`);

describe.skipIf(!pgUp)('statements per disclosure on PostgreSQL', () => {
  let t: TestVault;
  let database: { url: string; drop(): Promise<void> };
  let keyRecordIds: string[];

  beforeAll(async () => {
    database = await createPgDatabase();
    t = await createTestVault({ databaseUrl: database.url });
    const device = await enrollDevice(t, 'PC-ROUND-TRIPS');
    const keys = [newKey(), newKey(), newKey()];
    const escrow = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), keys),
    });
    expect(escrow.statusCode, escrow.body).toBe(200);
    keyRecordIds = (escrow.json().volumes[0].recoveryKeys as { id: string }[]).map((k) => k.id);
  });
  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });

  /** The statement texts sent while `run` runs, in order. */
  async function statementsOf(run: () => Promise<unknown>): Promise<string[]> {
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

  const disclose = (id: string) =>
    t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${id}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'round-trip count' },
    });

  it('a first disclosure over HTTP: token, policy, limits, the authorizing write, routing', async () => {
    // The first request warms what is cached per process (the token's organization, prepared names).
    expect((await disclose(keyRecordIds[0]!)).statusCode).toBe(200);
    let response: Awaited<ReturnType<typeof disclose>> | undefined;
    const sent = await statementsOf(async () => (response = await disclose(keyRecordIds[1]!)));
    expect(response!.statusCode, response!.body).toBe(200);
    expect(response!.json().recoveryPassword).toMatch(/^\d{6}(-\d{6}){7}$/);
    console.log(`${sent.length} statements:\n${sent.map((s) => `  ${s.slice(0, 110)}`).join('\n')}`);
    expect(sent.length).toBeLessThanOrEqual(5);
    expect(sent.map((s) => s.trim().toLowerCase())).not.toContain('begin');
  });
});
