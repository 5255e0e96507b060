// Lookup by key id alone stays inside the groups where the caller holds keys:lookup-by-id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestVault, type TestVault } from '../helpers.js';
import { assignRole, createPerson, deviceWithKey, groupId, personalToken } from './support.js';

let t: TestVault;
let inG: Awaited<ReturnType<typeof deviceWithKey>>;
let outside: Awaited<ReturnType<typeof deviceWithKey>>;
let token: string;

beforeAll(async () => {
  t = await createTestVault();
  const groupG = await groupId(t, t.adminToken, 'Advanced unit');
  inG = await deviceWithKey(t, t.adminToken, 'Advanced unit');
  outside = await deviceWithKey(t, t.adminToken);
  // Helpdesk everywhere (metadata, no key-id search), Helpdesk Advanced (key-id search) in G only.
  const person = await createPerson(t, t.organizationId);
  await assignRole(t, t.organizationId, person, 'helpdesk');
  await assignRole(t, t.organizationId, person, 'helpdesk-advanced', [groupG]);
  token = (await personalToken(t, t.organizationId, person)).token;
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const found = async (query: string) => {
  const res = await t.app.inject({ url: `/api/recovery-keys?${query}`, headers: bearer(token) });
  expect(res.statusCode, res.body).toBe(200);
  return (res.json().recoveryKeys as { id: string }[]).map((k) => k.id);
};

describe('key-id lookup scope', () => {
  it('finds a key by its id alone in the group where lookup-by-id is held', async () => {
    expect(await found(`keyIdPrefix=${inG.keyId.slice(0, 8)}`)).toEqual([inG.keyRecordId]);
    expect(await found(`keyId=${inG.keyId}`)).toEqual([inG.keyRecordId]);
  });

  it('does not find a key by its id alone outside that group, though the caller may read its metadata', async () => {
    expect(await found(`keyIdPrefix=${outside.keyId.slice(0, 8)}`)).toEqual([]);
    expect(await found(`keyId=${outside.keyId}`)).toEqual([]);
    // With its device (the helpdesk's normal path) the same key is readable.
    expect(await found(`deviceId=${outside.deviceId}`)).toEqual([outside.keyRecordId]);
    expect(await found(`deviceId=${outside.deviceId}&keyId=${outside.keyId}`)).toEqual([outside.keyRecordId]);
  });
});
