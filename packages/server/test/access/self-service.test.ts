// Self-service over HTTP with a cookie session: an owner's own devices and keys, with the restriction policy off and on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestVault, type TestVault } from '../helpers.js';
import {
  auditRows,
  patchSettings,
  personWithPassword,
  setOwner,
  signIn,
  type CookieSession,
} from './people.js';
import { deviceWithKey, nextAddress } from './support.js';

let t: TestVault;
let owner: CookieSession;
let ownerId: string;
let mine: Awaited<ReturnType<typeof deviceWithKey>>;
let theirs: Awaited<ReturnType<typeof deviceWithKey>>;

beforeAll(async () => {
  t = await createTestVault();
  const person = await personWithPassword(t, t.organizationId);
  const other = await personWithPassword(t, t.organizationId);
  ownerId = person.userId;
  mine = await deviceWithKey(t, t.adminToken);
  theirs = await deviceWithKey(t, t.adminToken);
  await setOwner(t, t.adminToken, mine.deviceId, person.userId);
  await setOwner(t, t.adminToken, theirs.deviceId, other.userId);
  // No role at all: ownership alone is what self-service goes by.
  owner = await signIn(t.app, person);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const disclose = (keyRecordId: string, headers: Record<string, string>) =>
  t.app.inject({
    method: 'POST',
    url: `/api/self-service/recovery-keys/${keyRecordId}/disclose`,
    remoteAddress: nextAddress(),
    headers,
    payload: { reason: 'locked out at the preboot screen' },
  });

describe('self-service with the restriction off (the default)', () => {
  it('lists only the devices the caller owns', async () => {
    const res = await t.app.inject({ url: '/api/self-service/devices', headers: owner.read });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().devices.map((d: { id: string }) => d.id)).toEqual([mine.deviceId]);
    expect(res.json().devices[0].ownerUserId).toBe(ownerId);
  });

  it('shows key metadata of an owned device, never the password', async () => {
    const res = await t.app.inject({
      url: `/api/self-service/devices/${mine.deviceId}/recovery-keys`,
      headers: owner.read,
    });
    expect(res.statusCode, res.body).toBe(200);
    const keys = res.json().recoveryKeys as Record<string, unknown>[];
    expect(keys.map((k) => [k.id, k.recoveryKeyId, k.status])).toEqual([
      [mine.keyRecordId, mine.keyId, 'active'],
    ]);
    expect(res.body).not.toContain(mine.password);
  });

  it('answers 404 for a device somebody else owns, exactly like a missing one', async () => {
    const res = await t.app.inject({
      url: `/api/self-service/devices/${theirs.deviceId}/recovery-keys`,
      headers: owner.read,
    });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('DEVICE_NOT_FOUND');
    const missing = await t.app.inject({
      url: `/api/self-service/devices/dev_${'0'.repeat(26)}/recovery-keys`,
      headers: owner.read,
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toMatchObject({
      code: 'DEVICE_NOT_FOUND',
      message: res.json().error.message,
    });
  });

  it('finds a key by the 8-digit key id prefix among the caller’s own devices only', async () => {
    const found = await t.app.inject({
      url: `/api/self-service/recovery-keys?keyIdPrefix=${mine.keyId.slice(0, 8)}`,
      headers: owner.read,
    });
    expect(found.statusCode, found.body).toBe(200);
    expect(found.json().recoveryKeys.map((k: { id: string }) => k.id)).toEqual([mine.keyRecordId]);
    // The same digits in braces and lower case, as people type them off the recovery screen.
    const braced = await t.app.inject({
      url: `/api/self-service/recovery-keys?keyIdPrefix={${mine.keyId.slice(0, 8).toLowerCase()}`,
      headers: owner.read,
    });
    expect(braced.json().recoveryKeys.map((k: { id: string }) => k.id)).toEqual([mine.keyRecordId]);
    const notMine = await t.app.inject({
      url: `/api/self-service/recovery-keys?keyIdPrefix=${theirs.keyId.slice(0, 8)}`,
      headers: owner.read,
    });
    expect(notMine.statusCode).toBe(200);
    expect(notMine.json().recoveryKeys).toEqual([]);
    const bad = await t.app.inject({
      url: '/api/self-service/recovery-keys?keyIdPrefix=zz',
      headers: owner.read,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('VALIDATION_FAILED');
  });

  it('refuses a cookie disclosure without the CSRF token, and discloses nothing', async () => {
    const res = await disclose(mine.keyRecordId, owner.read);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('CSRF_TOKEN_INVALID');
    expect(await auditRows(t, 'recovery-key.disclosed', mine.keyRecordId)).toEqual([]);
  });

  it('discloses with a reason: password, audit row, key marked for rotation', async () => {
    const res = await disclose(mine.keyRecordId, owner.write);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.json()).toMatchObject({
      id: mine.keyRecordId,
      recoveryKeyId: mine.keyId,
      recoveryPassword: mine.password,
    });
    const rows = await auditRows(t, 'recovery-key.disclosed', mine.keyRecordId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: res.json().auditEntryId,
      organization_id: t.organizationId,
      actor_type: 'user',
      actor_id: ownerId,
      outcome: 'success',
      reason: 'locked out at the preboot screen',
    });
    expect(rows[0]!.details).toMatchObject({ channel: 'self-service', deviceId: mine.deviceId });
    const meta = await t.app.inject({
      url: `/api/recovery-keys/${mine.keyRecordId}`,
      headers: bearer(t.adminToken),
    });
    expect(meta.json().status).toBe('rotation_pending');
    expect(meta.json().lastDisclosedAt).not.toBeNull();
  });

  it('cannot disclose the key of a device somebody else owns (404, nothing audited)', async () => {
    const res = await disclose(theirs.keyRecordId, owner.write);
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('KEY_NOT_FOUND');
    expect(res.body).not.toContain(theirs.password);
    expect(await auditRows(t, 'recovery-key.disclosed', theirs.keyRecordId)).toEqual([]);
  });

  it('is for people: a bearer token is refused', async () => {
    const res = await t.app.inject({ url: '/api/self-service/devices', headers: bearer(t.adminToken) });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('FORBIDDEN');
  });
});

describe('self-service with "Restrict users from recovering the BitLocker key(s) for their owned devices" on', () => {
  beforeAll(async () => {
    const settings = await patchSettings(t, t.adminToken, { restrictOwnerKeyRecovery: true });
    expect(settings.restrictOwnerKeyRecovery).toBe(true);
  });

  afterAll(async () => {
    await patchSettings(t, t.adminToken, { restrictOwnerKeyRecovery: false });
  });

  it('refuses disclosure with a stable code; nothing is disclosed, audited or counted', async () => {
    const auditBefore = await auditRows(t, 'recovery-key.disclosed', mine.keyRecordId);
    const before = await t.vault.db
      .selectFrom('recovery_keys')
      .select(['status', 'last_disclosed_at'])
      .where('id', '=', mine.keyRecordId)
      .executeTakeFirstOrThrow();
    const counters = await t.vault.db.selectFrom('rate_limit_counters').selectAll().execute();

    const res = await disclose(mine.keyRecordId, owner.write);
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('FORBIDDEN');
    expect(res.json().error.message).toMatch(/does not let users recover the keys of their own devices/);
    expect(res.body).not.toContain(mine.password);

    // A policy refusal happens before the disclosure path: no audit row, no mark, no limit counted.
    expect(await auditRows(t, 'recovery-key.disclosed', mine.keyRecordId)).toEqual(auditBefore);
    expect(
      await t.vault.db
        .selectFrom('recovery_keys')
        .select(['status', 'last_disclosed_at'])
        .where('id', '=', mine.keyRecordId)
        .executeTakeFirstOrThrow(),
    ).toEqual(before);
    expect(await t.vault.db.selectFrom('rate_limit_counters').selectAll().execute()).toEqual(counters);
  });

  it('refuses key metadata and key-id lookup the same way', async () => {
    const keys = await t.app.inject({
      url: `/api/self-service/devices/${mine.deviceId}/recovery-keys`,
      headers: owner.read,
    });
    expect(keys.statusCode).toBe(403);
    expect(keys.json().error.code).toBe('FORBIDDEN');
    const lookup = await t.app.inject({
      url: `/api/self-service/recovery-keys?keyIdPrefix=${mine.keyId.slice(0, 8)}`,
      headers: owner.read,
    });
    expect(lookup.statusCode).toBe(403);
    expect(lookup.json().error.code).toBe('FORBIDDEN');
  });

  it('still lists the owned devices (the policy is about keys)', async () => {
    const res = await t.app.inject({ url: '/api/self-service/devices', headers: owner.read });
    expect(res.statusCode).toBe(200);
    expect(res.json().devices.map((d: { id: string }) => d.id)).toEqual([mine.deviceId]);
  });

  it('does not stop a role holder: an administrator still discloses through the admin route', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${mine.keyRecordId}/disclose`,
      remoteAddress: nextAddress(),
      headers: bearer(t.adminToken),
      payload: { reason: 'helpdesk call 4711' },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().recoveryPassword).toBe(mine.password);
  });

  it('turning the policy off again restores self-service', async () => {
    await patchSettings(t, t.adminToken, { restrictOwnerKeyRecovery: false });
    const res = await disclose(mine.keyRecordId, owner.write);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().recoveryPassword).toBe(mine.password);
    const changes = await auditRows(t, 'organization.settings-changed', t.organizationId);
    expect(changes.map((r) => r.details.restrictOwnerKeyRecovery)).toEqual([true, false]);
  });
});
