// One suite, run on SQLite and on PostgreSQL (skipped, and saying so, when PostgreSQL is not running).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { bearer, createTestVault, enrollDevice, escrowPayload, newKey, randomKeyId } from './helpers.js';

const PG_ADMIN_URL = process.env.BDEVAULT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function postgresAvailable(): Promise<boolean> {
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

const pgUp = await postgresAvailable();
if (!pgUp)
  console.warn(
    `PostgreSQL not reachable at ${PG_ADMIN_URL}: the postgres half of the dialect suite is skipped`,
  );
const created: string[] = [];

async function createPgDatabase(): Promise<string> {
  const name = `bdevault_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  await client.query(`create database ${name}`);
  await client.end();
  created.push(name);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

afterAll(async () => {
  if (created.length === 0) return;
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  for (const name of created) await client.query(`drop database if exists ${name} with (force)`);
  await client.end();
});

const dialects = [
  { name: 'sqlite', skip: false, databaseUrl: async () => undefined },
  { name: 'postgres', skip: !pgUp, databaseUrl: createPgDatabase },
];

for (const dialect of dialects) {
  describe.skipIf(dialect.skip)(`vault on ${dialect.name}`, () => {
    it('escrows, looks up (name prefix, key id, prefix), discloses with audit, verifies the chain', async () => {
      const databaseUrl = await dialect.databaseUrl();
      const t = await createTestVault(databaseUrl === undefined ? {} : { databaseUrl });
      try {
        const device = await enrollDevice(t, 'ws_100%-A');
        await enrollDevice(t, 'WSX100-B');
        const volumeGuid = randomKeyId();
        const [k1, k2] = [newKey(), newKey()];
        const send = (keys: { keyId: string; password: string }[]) =>
          t.app.inject({
            method: 'POST',
            url: '/api/escrow/recovery-keys',
            headers: bearer(device.credential),
            payload: escrowPayload(volumeGuid, keys),
          });
        expect((await send([k1])).statusCode).toBe(200);
        expect((await send([k1])).json().volumes[0].recoveryKeys[0].created).toBe(false);
        expect((await send([k2])).statusCode).toBe(200);

        // LIKE wildcards in a name are matched literally on both dialects.
        const prefix = await t.app.inject({
          url: `/api/devices?name=${encodeURIComponent('WS_100%')}&match=prefix`,
          headers: bearer(t.adminToken),
        });
        expect(prefix.json().devices.map((d: { name: string }) => d.name)).toEqual(['ws_100%-A']);

        const byPrefix = await t.app.inject({
          url: `/api/recovery-keys?keyIdPrefix=${k1.keyId.slice(0, 8).toLowerCase()}`,
          headers: bearer(t.adminToken),
        });
        expect(byPrefix.json().recoveryKeys).toHaveLength(1);
        expect(byPrefix.json().recoveryKeys[0].status).toBe('superseded');
        const byKeyId = await t.app.inject({
          url: `/api/recovery-keys?keyId=${k2.keyId}`,
          headers: bearer(t.adminToken),
        });
        const id = byKeyId.json().recoveryKeys[0].id;
        const disclosed = await t.app.inject({
          method: 'POST',
          url: `/api/recovery-keys/${id}/disclose`,
          headers: bearer(t.adminToken),
          payload: { reason: `dialect ${dialect.name}` },
        });
        expect(disclosed.json().recoveryPassword).toBe(k2.password);

        expect(await t.vault.services.audit.verifyChain()).toMatchObject({ ok: true });
        expect((await t.vault.services.rotateKek()).rewrapped).toBe(2);
        const again = await t.app.inject({
          method: 'POST',
          url: `/api/recovery-keys/${id}/disclose`,
          headers: bearer(t.adminToken),
          payload: { reason: 'after rotation' },
        });
        expect(again.json().recoveryPassword).toBe(k2.password);
        expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
      } finally {
        await t.close();
      }
    });
  });
}
