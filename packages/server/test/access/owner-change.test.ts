// The owner-change rule over HTTP: group-scoped access that came through the previous owner ends with the ownership.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestVault, type TestVault } from '../helpers.js';
import { auditRows, setOwner } from './people.js';
import { assignRole, createPerson, deviceWithKey, groupId, nextAddress, personalToken } from './support.js';

let t: TestVault;
let groupG: string;
let userU: string;
let userV: string;
let helpdesk: string;
let deviceAdmin: string;
let throughOwner: Awaited<ReturnType<typeof deviceWithKey>>;
let direct: Awaited<ReturnType<typeof deviceWithKey>>;

beforeAll(async () => {
  t = await createTestVault();
  groupG = await groupId(t, t.adminToken, 'Branch office');
  userU = await createPerson(t, t.organizationId);
  userV = await createPerson(t, t.organizationId);
  // U is a user-member of G: the devices U owns are in G through U.
  const members = await t.app.inject({
    method: 'POST',
    url: `/api/device-groups/${groupG}/members`,
    headers: bearer(t.adminToken),
    payload: { userIds: [userU] },
  });
  expect(members.statusCode, members.body).toBe(200);
  expect(members.json()).toEqual({ deviceIds: [], userIds: [userU] });
  throughOwner = await deviceWithKey(t, t.adminToken);
  // A direct device member of G, owned by U as well.
  direct = await deviceWithKey(t, t.adminToken, 'Branch office');
  await setOwner(t, t.adminToken, throughOwner.deviceId, userU);
  await setOwner(t, t.adminToken, direct.deviceId, userU);

  const h = await createPerson(t, t.organizationId);
  await assignRole(t, t.organizationId, h, 'helpdesk', [groupG]);
  helpdesk = (await personalToken(t, t.organizationId, h)).token;
  const da = await createPerson(t, t.organizationId);
  await assignRole(t, t.organizationId, da, 'device-administrator');
  deviceAdmin = (await personalToken(t, t.organizationId, da)).token;
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const readDevice = (token: string, deviceId: string) =>
  t.app.inject({ url: `/api/devices/${deviceId}`, headers: bearer(token) });
const readKey = (token: string, keyRecordId: string) =>
  t.app.inject({ url: `/api/recovery-keys/${keyRecordId}`, headers: bearer(token) });
const listed = async (token: string, name: string) => {
  const res = await t.app.inject({ url: `/api/devices?name=${name}`, headers: bearer(token) });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().devices.map((d: { id: string }) => d.id) as string[];
};

describe('owner change', () => {
  it('before: a helpdesk scoped to G reads the device that is in G through its owner', async () => {
    const res = await readDevice(helpdesk, throughOwner.deviceId);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ id: throughOwner.deviceId, ownerUserId: userU, groupIds: [] });
    expect((await readKey(helpdesk, throughOwner.keyRecordId)).statusCode).toBe(200);
    expect(await listed(helpdesk, throughOwner.name)).toEqual([throughOwner.deviceId]);
  });

  it('after the owner becomes V (not in G): the helpdesk gets 404; an org-wide Device Administrator still reads it', async () => {
    await setOwner(t, t.adminToken, throughOwner.deviceId, userV);
    const audit = await auditRows(t, 'device.owner-changed', throughOwner.deviceId);
    expect(audit.at(-1)!.details).toEqual({ from: userU, to: userV });

    const device = await readDevice(helpdesk, throughOwner.deviceId);
    expect(device.statusCode).toBe(404);
    expect(device.json().error.code).toBe('DEVICE_NOT_FOUND');
    const key = await readKey(helpdesk, throughOwner.keyRecordId);
    expect(key.statusCode).toBe(404);
    expect(key.json().error.code).toBe('KEY_NOT_FOUND');
    expect(await listed(helpdesk, throughOwner.name)).toEqual([]);
    const keys = await t.app.inject({
      url: `/api/recovery-keys?deviceId=${throughOwner.deviceId}`,
      headers: bearer(helpdesk),
    });
    expect(keys.json().recoveryKeys).toEqual([]);

    const admin = await readDevice(deviceAdmin, throughOwner.deviceId);
    expect(admin.statusCode, admin.body).toBe(200);
    expect(admin.json().ownerUserId).toBe(userV);
    const disclosed = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${throughOwner.keyRecordId}/disclose`,
      remoteAddress: nextAddress(),
      headers: bearer(deviceAdmin),
      payload: { reason: 'owner moved departments' },
    });
    expect(disclosed.statusCode, disclosed.body).toBe(200);
    expect(disclosed.json().recoveryPassword).toBe(throughOwner.password);
  });

  it('a direct device member of G keeps its access when its owner changes', async () => {
    await setOwner(t, t.adminToken, direct.deviceId, userV);
    const res = await readDevice(helpdesk, direct.deviceId);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ ownerUserId: userV, groupIds: [groupG] });
    expect((await readKey(helpdesk, direct.keyRecordId)).statusCode).toBe(200);
    expect(await listed(helpdesk, direct.name)).toEqual([direct.deviceId]);
  });

  it('clearing the owner also ends access through the owner; giving it back to U restores it', async () => {
    await setOwner(t, t.adminToken, throughOwner.deviceId, null);
    expect((await readDevice(helpdesk, throughOwner.deviceId)).statusCode).toBe(404);
    await setOwner(t, t.adminToken, throughOwner.deviceId, userU);
    expect((await readDevice(helpdesk, throughOwner.deviceId)).statusCode).toBe(200);
  });

  it('removing U from G ends access through U at once', async () => {
    const removed = await t.app.inject({
      method: 'DELETE',
      url: `/api/device-groups/${groupG}/users/${userU}`,
      headers: bearer(t.adminToken),
    });
    expect(removed.statusCode, removed.body).toBe(204);
    expect((await readDevice(helpdesk, throughOwner.deviceId)).statusCode).toBe(404);
    expect((await readDevice(helpdesk, direct.deviceId)).statusCode).toBe(200);
  });
});
