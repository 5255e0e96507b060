// API tokens over HTTP: permission and device-group scope, personal tokens bounded by their user, revocation, expiry, storage.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app-types.js';
import { bearer, createTestVault, type TestVault } from '../helpers.js';
import { testDialect } from '../support/postgres.js';
import { auditRows, movableClock } from './people.js';
import { assignRole, createPerson, deviceWithKey, groupId, nextAddress, personalToken } from './support.js';

let t: TestVault;
let groupG: string;
let groupH: string;
let inG: Awaited<ReturnType<typeof deviceWithKey>>;
let inH: Awaited<ReturnType<typeof deviceWithKey>>;

beforeAll(async () => {
  t = await createTestVault();
  groupG = await groupId(t, t.adminToken, 'Unit G');
  groupH = await groupId(t, t.adminToken, 'Unit H');
  inG = await deviceWithKey(t, t.adminToken, 'Unit G');
  inH = await deviceWithKey(t, t.adminToken, 'Unit H');
}, 120_000);

afterAll(async () => {
  await t?.close();
});

async function createToken(caller: string, payload: Record<string, unknown>, app: App = t.app) {
  return app.inject({ method: 'POST', url: '/api/api-tokens', headers: bearer(caller), payload });
}

const call = (token: string, request: InjectOptions, app: App = t.app) =>
  app.inject({
    ...request,
    remoteAddress: nextAddress(),
    headers: { ...(request.headers ?? {}), ...bearer(token) },
  } as InjectOptions);

const disclose = (keyRecordId: string): InjectOptions => ({
  method: 'POST',
  url: `/api/recovery-keys/${keyRecordId}/disclose`,
  payload: { reason: 'token test' },
});

describe('scope enforcement', () => {
  it('a token holds only its permissions (403 for the rest)', async () => {
    const created = await createToken(t.adminToken, { name: 'reader', permissions: ['devices:read'] });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({
      kind: 'service',
      permissions: ['devices:read'],
      deviceGroupIds: null,
    });
    const token = created.json().token as string;
    expect((await call(token, { url: `/api/devices/${inG.deviceId}` })).statusCode).toBe(200);
    for (const request of [
      disclose(inG.keyRecordId),
      { url: `/api/recovery-keys/${inG.keyRecordId}` },
      { url: '/api/audit-log' },
      { method: 'DELETE' as const, url: `/api/devices/${inG.deviceId}` },
    ]) {
      const res = await call(token, request);
      expect(res.statusCode, String(request.url)).toBe(403);
      expect(res.json().error.code).toBe('FORBIDDEN');
    }
  });

  it('a token scoped to a device group reaches only that group’s devices (404 elsewhere)', async () => {
    const created = await createToken(t.adminToken, {
      name: 'unit G discloser',
      permissions: ['devices:read', 'keys:read-metadata', 'keys:disclose'],
      deviceGroupIds: [groupG],
    });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().deviceGroupIds).toEqual([groupG]);
    const token = created.json().token as string;
    expect((await call(token, { url: `/api/devices/${inG.deviceId}` })).statusCode).toBe(200);
    const ok = await call(token, disclose(inG.keyRecordId));
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().recoveryPassword).toBe(inG.password);

    const device = await call(token, { url: `/api/devices/${inH.deviceId}` });
    expect(device.statusCode).toBe(404);
    expect(device.json().error.code).toBe('DEVICE_NOT_FOUND');
    const refused = await call(token, disclose(inH.keyRecordId));
    expect(refused.statusCode).toBe(404);
    expect(refused.json().error.code).toBe('KEY_NOT_FOUND');
    expect(await auditRows(t, 'recovery-key.disclosed', inH.keyRecordId)).toEqual([]);
    const byName = await call(token, { url: `/api/devices?name=${inH.name}` });
    expect(byName.json().devices).toEqual([]);
    // A device-group token holds no organization-level permission even if it asks for one.
    const groups = await call(token, { url: '/api/device-groups' });
    expect(groups.json().deviceGroups.map((g: { id: string }) => g.id)).toEqual([groupG]);
  });
});

describe('personal tokens are bounded by their user, now', () => {
  it('loses a permission when the user loses the role, and is narrowed when the role is narrowed', async () => {
    const user = await createPerson(t, t.organizationId);
    const assignment = await assignRole(t, t.organizationId, user, 'device-administrator');
    const token = (await personalToken(t, t.organizationId, user)).token;
    expect((await call(token, disclose(inH.keyRecordId))).statusCode).toBe(200);

    // Org-wide becomes group-scoped: the same token now reaches G only.
    const removed = await t.app.inject({
      method: 'DELETE',
      url: `/api/role-assignments/${assignment.id}`,
      headers: bearer(t.adminToken),
    });
    expect(removed.statusCode, removed.body).toBe(204);
    const scoped = await assignRole(t, t.organizationId, user, 'device-administrator', [groupG]);
    expect((await call(token, disclose(inH.keyRecordId))).statusCode).toBe(404);
    expect((await call(token, disclose(inG.keyRecordId))).statusCode).toBe(200);

    // Down to Security Reader: the disclosure permission is gone everywhere.
    const narrowed = await t.app.inject({
      method: 'DELETE',
      url: `/api/role-assignments/${scoped.id}`,
      headers: bearer(t.adminToken),
    });
    expect(narrowed.statusCode, narrowed.body).toBe(204);
    await assignRole(t, t.organizationId, user, 'security-reader');
    const res = await call(token, disclose(inG.keyRecordId));
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('FORBIDDEN');
    expect((await call(token, { url: `/api/devices/${inH.deviceId}` })).statusCode).toBe(200);
  });

  it('stops working (401) when its user is disabled', async () => {
    const user = await createPerson(t, t.organizationId);
    await assignRole(t, t.organizationId, user, 'security-reader');
    const token = (await personalToken(t, t.organizationId, user)).token;
    expect((await call(token, { url: `/api/devices/${inG.deviceId}` })).statusCode).toBe(200);
    const disabled = await t.app.inject({
      method: 'POST',
      url: `/api/users/${user}/disable`,
      headers: bearer(t.adminToken),
    });
    expect(disabled.statusCode, disabled.body).toBeLessThan(300);
    const res = await call(token, { url: `/api/devices/${inG.deviceId}` });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('UNAUTHENTICATED');
  });
});

describe('a token never exceeds its creator', () => {
  let creator: string;
  let creatorId: string;

  beforeAll(async () => {
    creatorId = await createPerson(t, t.organizationId);
    const role = await t.app.inject({
      method: 'POST',
      url: '/api/roles',
      headers: bearer(t.adminToken),
      payload: { name: 'Token manager', permissions: ['api-tokens:manage'] },
    });
    expect(role.statusCode, role.body).toBe(201);
    await assignRole(t, t.organizationId, creatorId, role.json().id);
    await assignRole(t, t.organizationId, creatorId, 'device-administrator', [groupG]);
    creator = (await personalToken(t, t.organizationId, creatorId)).token;
  });

  it('refuses tokens with more permissions or wider device scope than the creator (403, nothing stored)', async () => {
    // Ordered: PostgreSQL returns rows in storage order, which an update (last use) changes.
    const before = await t.vault.db.selectFrom('api_tokens').select('id').orderBy('id').execute();
    for (const payload of [
      { name: 'wider', permissions: ['keys:disclose'] },
      { name: 'more groups', permissions: ['keys:disclose'], deviceGroupIds: [groupG, groupH] },
      { name: 'other group', permissions: ['devices:read'], deviceGroupIds: [groupH] },
      { name: 'audit', permissions: ['audit:read'] },
      { name: 'everything', permissions: ['*'], deviceGroupIds: [groupG] },
      { name: 'admin', permissions: ['org:admin'] },
    ]) {
      const res = await createToken(creator, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(403);
      expect(res.json().error.code).toBe('FORBIDDEN');
    }
    expect(await t.vault.db.selectFrom('api_tokens').select('id').orderBy('id').execute()).toEqual(before);
  });

  it('allows a token within the creator, which then works only within it', async () => {
    const res = await createToken(creator, {
      name: 'within',
      permissions: ['keys:disclose', 'devices:read'],
      deviceGroupIds: [groupG],
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ kind: 'personal', createdByUserId: creatorId });
    const token = res.json().token as string;
    expect((await call(token, disclose(inG.keyRecordId))).statusCode).toBe(200);
    expect((await call(token, disclose(inH.keyRecordId))).statusCode).toBe(404);
    const created = await auditRows(t, 'api-token.created', res.json().id);
    expect(created[0]!.details).toMatchObject({ kind: 'personal', deviceGroupIds: groupG });
  });
});

describe('revocation, expiry, storage and last use', () => {
  it('a revoked token is refused with 401', async () => {
    const created = await createToken(t.adminToken, { name: 'to revoke', permissions: ['devices:read'] });
    const token = created.json().token as string;
    expect((await call(token, { url: `/api/devices/${inG.deviceId}` })).statusCode).toBe(200);
    const revoked = await t.app.inject({
      method: 'DELETE',
      url: `/api/api-tokens/${created.json().id}`,
      headers: bearer(t.adminToken),
    });
    expect(revoked.statusCode, revoked.body).toBe(204);
    const res = await call(token, { url: `/api/devices/${inG.deviceId}` });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('UNAUTHENTICATED');
    expect((await auditRows(t, 'api-token.revoked', created.json().id)).length).toBe(1);
    const again = await t.app.inject({
      method: 'DELETE',
      url: `/api/api-tokens/${created.json().id}`,
      headers: bearer(t.adminToken),
    });
    expect(again.statusCode).toBe(404);
  });

  it('an expired token is refused with 401; last use follows the clock', async () => {
    const clock = movableClock('2031-03-01T08:00:00.000Z');
    const app = await t.appWith({ clock });
    const created = await createToken(
      t.adminToken,
      { name: 'short', permissions: ['devices:read'], expiresInDays: 1 },
      app,
    );
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ expiresAt: '2031-03-02T08:00:00.000Z', lastUsedAt: null });
    const token = created.json().token as string;

    clock.advance(60 * 60 * 1000);
    expect((await call(token, { url: `/api/devices/${inG.deviceId}` }, app)).statusCode).toBe(200);
    const listed = await app.inject({ url: '/api/api-tokens', headers: bearer(t.adminToken) });
    const summary = (listed.json().apiTokens as { id: string; lastUsedAt: string | null }[]).find(
      (x) => x.id === created.json().id,
    );
    expect(summary?.lastUsedAt).toBe('2031-03-01T09:00:00.000Z');
    expect(listed.body).not.toContain(token);

    clock.advance(23 * 60 * 60 * 1000);
    const expired = await call(token, { url: `/api/devices/${inG.deviceId}` }, app);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error.code).toBe('UNAUTHENTICATED');
  });

  // Reads the SQLite file itself; on PostgreSQL there is no file to search.
  it.skipIf(testDialect === 'postgres')(
    'never stores the token value in clear (database file and WAL searched byte by byte)',
    async () => {
      const created = await createToken(t.adminToken, { name: 'secret', permissions: ['devices:read'] });
      const token = created.json().token as string;
      expect((await call(token, { url: `/api/devices/${inG.deviceId}` })).statusCode).toBe(200);
      const secret = token.slice('bdv_at_'.length);
      const row = await t.vault.db
        .selectFrom('api_tokens')
        .select(['lookup_prefix', 'token_hash'])
        .where('id', '=', created.json().id)
        .executeTakeFirstOrThrow();
      const files = readdirSync(t.dir).filter((f) => f.startsWith('bdevault.sqlite'));
      expect(files).toContain('bdevault.sqlite');
      const bytes = Buffer.concat(files.map((f) => readFileSync(join(t.dir, f))));
      // The search works: the public lookup prefix and the hash are there ...
      expect(bytes.includes(Buffer.from(row.lookup_prefix))).toBe(true);
      expect(bytes.includes(Buffer.from(row.token_hash))).toBe(true);
      // ... and the secret is not, whole or in its non-public part, in text or UTF-16.
      for (const needle of [token, secret, secret.slice(row.lookup_prefix.length)]) {
        expect(bytes.includes(Buffer.from(needle, 'utf8'))).toBe(false);
        expect(bytes.includes(Buffer.from(needle, 'utf16le'))).toBe(false);
      }
    },
  );

  it('a malformed or unknown token is refused with 401', async () => {
    for (const token of [`bdv_at_${'a'.repeat(52)}`, 'not-a-token', `bdv_dc_${'b'.repeat(52)}`]) {
      const res = await call(token, { url: `/api/devices/${inG.deviceId}` });
      expect(res.statusCode, token).toBe(401);
    }
  });
});
