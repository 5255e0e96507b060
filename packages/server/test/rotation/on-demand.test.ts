// On-demand rotation of a key, a device and a device group, with the caller's scope enforced (out of scope: 404).
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers.js';
import { assignRole, createPerson, groupId, personalToken } from '../access/support.js';
import type { TestVault } from '../helpers.js';
import { createRotationVault, FakeAgent, keyStatus, rotationsOf, type RotationVault } from './support.js';

let r: RotationVault;
let helpdeskA: string;
let readerA: string;
let groupA: string;
let groupB: string;

/** The access helpers take the shared test vault's shape; these fields are all they use. */
const asTestVault = (x: RotationVault) => x as unknown as TestVault;

beforeAll(async () => {
  r = await createRotationVault();
  const t = asTestVault(r);
  groupA = await groupId(t, r.adminToken, 'Unit A');
  groupB = await groupId(t, r.adminToken, 'Unit B');
  const helpdesk = await createPerson(t, r.organizationId);
  await assignRole(t, r.organizationId, helpdesk, 'helpdesk', [groupA]);
  helpdeskA = (await personalToken(t, r.organizationId, helpdesk)).token;
  const reader = await createPerson(t, r.organizationId);
  await assignRole(t, r.organizationId, reader, 'security-reader');
  readerA = (await personalToken(t, r.organizationId, reader)).token;
});

afterAll(async () => {
  await r?.close();
});

const post = (url: string, token: string, payload: object = { reason: 'suspected exposure' }) =>
  r.app.inject({ method: 'POST', url, headers: bearer(token), payload });

describe('on-demand rotation', () => {
  it('for one key: opened once, idempotent after', async () => {
    const agent = await FakeAgent.enroll(r, { groupName: 'Unit A' });
    const key = await agent.escrowNewKey();
    const first = await post(`/api/recovery-keys/${key.id}/rotation`, helpdeskA);
    expect(first.statusCode, first.body).toBe(200);
    expect(first.json()).toMatchObject({ created: 1, alreadyOpen: 0, truncated: false });
    expect(first.json().rotations[0]).toMatchObject({ trigger: 'on-demand', reason: 'suspected exposure' });
    const second = await post(`/api/recovery-keys/${key.id}/rotation`, helpdeskA, {});
    expect(second.json()).toMatchObject({ created: 0, alreadyOpen: 1 });
    expect(await rotationsOf(r, agent.deviceId)).toHaveLength(1);
    expect(await keyStatus(r, key.id)).toBe('rotation_pending');
    const [action] = (await agent.checkIn()).actions;
    expect(action!.recoveryKeyId).toBe(key.keyId);
  });

  it('for a device: every current key, not the superseded ones', async () => {
    const agent = await FakeAgent.enroll(r, { groupName: 'Unit A' });
    const old = await agent.escrowNewKey();
    const current = await agent.escrowNewKey();
    expect(await keyStatus(r, old.id)).toBe('superseded');
    const res = await post(`/api/devices/${agent.deviceId}/rotations`, helpdeskA);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().created).toBe(1);
    expect(res.json().rotations.map((x: { recoveryKey: { id: string } }) => x.recoveryKey.id)).toEqual([
      current.id,
    ]);
    const again = await post(`/api/devices/${agent.deviceId}/rotations`, helpdeskA);
    expect(again.json()).toMatchObject({ created: 0, alreadyOpen: 1 });
    const superseded = await post(`/api/recovery-keys/${old.id}/rotation`, helpdeskA);
    expect(superseded.statusCode).toBe(409);
    expect(superseded.json().error.code).toBe('ROTATION_CLOSED');
  });

  it('for a device group: every device of the group', async () => {
    const a1 = await FakeAgent.enroll(r, { groupName: 'Unit A' });
    const a2 = await FakeAgent.enroll(r, { groupName: 'Unit A' });
    const b1 = await FakeAgent.enroll(r, { groupName: 'Unit B' });
    for (const agent of [a1, a2, b1]) await agent.escrowNewKey();
    const before = r.sink.ofType('rotation.requested').length;
    const res = await post(`/api/device-groups/${groupA}/rotations`, helpdeskA);
    expect(res.statusCode, res.body).toBe(200);
    const devices = new Set(res.json().rotations.map((x: { device: { id: string } }) => x.device.id));
    expect(devices.has(a1.deviceId) && devices.has(a2.deviceId)).toBe(true);
    expect(devices.has(b1.deviceId)).toBe(false);
    expect(r.sink.ofType('rotation.requested').length - before).toBe(res.json().created);
    expect(await rotationsOf(r, b1.deviceId)).toEqual([]);
    // The organization administrator may rotate the other group.
    const admin = await post(`/api/device-groups/${groupB}/rotations`, r.adminToken);
    expect(admin.statusCode).toBe(200);
    expect((await rotationsOf(r, b1.deviceId)).length).toBe(1);
  });

  it('outside the scope answers 404; without the permission 403', async () => {
    const b = await FakeAgent.enroll(r, { groupName: 'Unit B' });
    const key = await b.escrowNewKey();
    for (const url of [
      `/api/recovery-keys/${key.id}/rotation`,
      `/api/devices/${b.deviceId}/rotations`,
      `/api/device-groups/${groupB}/rotations`,
      '/api/device-groups/grp_00000000000000000000000000/rotations',
    ]) {
      const res = await post(url, helpdeskA);
      expect(res.statusCode, url).toBe(404);
    }
    const reader = await post(`/api/devices/${b.deviceId}/rotations`, readerA);
    expect(reader.statusCode).toBe(403);
    expect(await rotationsOf(r, b.deviceId)).toEqual([]);
    // The scoped helpdesk lists only rotations of devices it may read.
    await post(`/api/devices/${b.deviceId}/rotations`, r.adminToken);
    const listed = await r.app.inject({ url: '/api/rotations', headers: bearer(helpdeskA) });
    expect(listed.statusCode).toBe(200);
    const ids = listed.json().rotations.map((x: { device: { id: string } }) => x.device.id);
    expect(ids).not.toContain(b.deviceId);
    const one = (await rotationsOf(r, b.deviceId))[0]!;
    const direct = await r.app.inject({ url: `/api/rotations/${one.id}`, headers: bearer(helpdeskA) });
    expect(direct.statusCode).toBe(404);
    const asAdmin = await r.app.inject({ url: `/api/rotations/${one.id}`, headers: bearer(r.adminToken) });
    expect(asAdmin.statusCode).toBe(200);
  });

  it('lists page by page with a cursor', async () => {
    const all: string[] = [];
    let cursor: string | null = null;
    do {
      const res: LightMyRequestResponse = await r.app.inject({
        url: `/api/rotations?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        headers: bearer(r.adminToken),
      });
      expect(res.statusCode, res.body).toBe(200);
      all.push(...res.json().rotations.map((x: { id: string }) => x.id));
      cursor = res.json().nextCursor;
    } while (cursor);
    const whole = await r.app.inject({ url: '/api/rotations?limit=200', headers: bearer(r.adminToken) });
    expect(all).toEqual(whole.json().rotations.map((x: { id: string }) => x.id));
    expect(new Set(all).size).toBe(all.length);
    const bad = await r.app.inject({ url: '/api/rotations?cursor=!!', headers: bearer(r.adminToken) });
    expect(bad.statusCode).toBe(400);
  });
});
