// Rotation lifecycle through the API: disclosure opens one request, the device (through the escrow API) completes or fails it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, newKey } from '../helpers.js';
import {
  createRotationVault,
  disclose,
  FakeAgent,
  keyStatus,
  rotationsOf,
  type RotationVault,
} from './support.js';

let r: RotationVault;

beforeAll(async () => {
  r = await createRotationVault();
});

afterAll(async () => {
  await r?.close();
});

describe('disclosure opens a rotation request', () => {
  it('creates one request per key, however often the key is disclosed', async () => {
    const agent = await FakeAgent.enroll(r);
    const old = await agent.escrowNewKey();
    const before = r.sink.ofType('rotation.requested').length;

    await disclose(r, old.id);
    await disclose(r, old.id);

    const rotations = await rotationsOf(r, agent.deviceId);
    expect(rotations).toHaveLength(1);
    expect(rotations[0]).toMatchObject({
      status: 'requested',
      trigger: 'disclosure',
      recoveryKey: { id: old.id, recoveryKeyId: old.keyId },
    });
    expect(await keyStatus(r, old.id)).toBe('rotation_pending');
    const requested = r.sink.ofType('rotation.requested').slice(before);
    expect(requested).toHaveLength(1);
    expect(requested[0]).toMatchObject({
      rotationId: rotations[0]!.id,
      trigger: 'disclosure',
      deviceId: agent.deviceId,
    });
    // Identifiers only: no event carries the password.
    expect(JSON.stringify(r.sink.events)).not.toContain(old.password);
  });

  it('the disclosure service names the request it opened, and the audit row records it', async () => {
    const agent = await FakeAgent.enroll(r);
    const old = await agent.escrowNewKey();
    const disclosed = await r.vault.services.recoveryKeys.discloseRecoveryPassword({
      organizationId: r.organizationId,
      recoveryKeyRecordId: old.id,
      reason: 'service call',
      actor: { type: 'cli', id: null },
    });
    const [rotation] = await rotationsOf(r, agent.deviceId);
    expect(disclosed.rotationRequestId).toBe(rotation!.id);
    const audit = await r.vault.db
      .selectFrom('audit_log')
      .select('details')
      .where('id', '=', disclosed.auditEntryId)
      .executeTakeFirstOrThrow();
    expect(JSON.parse(audit.details).rotationRequestId).toBe(rotation!.id);
  });

  it('with single-use passwords switched off, a disclosure opens nothing and the key stays active', async () => {
    const off = await r.app.inject({
      method: 'PATCH',
      url: '/api/rotation-policy',
      headers: bearer(r.adminToken),
      payload: { singleUsePasswords: false },
    });
    expect(off.statusCode, off.body).toBe(200);
    expect(off.json()).toEqual({ singleUsePasswords: false, deadlineDays: 7 });
    try {
      const agent = await FakeAgent.enroll(r);
      const key = await agent.escrowNewKey();
      await disclose(r, key.id);
      expect(await rotationsOf(r, agent.deviceId)).toEqual([]);
      expect(await keyStatus(r, key.id)).toBe('active');
    } finally {
      const on = await r.app.inject({
        method: 'PATCH',
        url: '/api/rotation-policy',
        headers: bearer(r.adminToken),
        payload: { singleUsePasswords: true },
      });
      expect(on.statusCode).toBe(200);
    }
    const policy = await r.app.inject({ url: '/api/rotation-policy', headers: bearer(r.adminToken) });
    expect(policy.json()).toEqual({ singleUsePasswords: true, deadlineDays: 7 });
  });

  it('refuses an empty or unbounded policy change', async () => {
    for (const payload of [{}, { deadlineDays: 0 }, { deadlineDays: 10_000 }, { other: true }]) {
      const res = await r.app.inject({
        method: 'PATCH',
        url: '/api/rotation-policy',
        headers: bearer(r.adminToken),
        payload,
      });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
  });
});

describe('the device side, through the escrow API', () => {
  it('check-in delivers it; escrow of the new key and confirmed removal complete it', async () => {
    const agent = await FakeAgent.enroll(r);
    const old = await agent.escrowNewKey();
    await disclose(r, old.id);

    const checkIn = await agent.checkIn();
    expect(checkIn.actions).toHaveLength(1);
    const action = checkIn.actions[0]!;
    expect(action).toMatchObject({
      type: 'rotate-recovery-password',
      recoveryKeyId: old.keyId,
      volumeGuid: agent.volumeGuid,
    });
    expect((await rotationsOf(r, agent.deviceId))[0]!.status).toBe('delivered');

    // Reporting completion before the new key is escrowed is refused.
    const replacement = newKey();
    const early = await agent.report(action.rotationId, {
      outcome: 'completed',
      newRecoveryKeyId: replacement.keyId,
      oldProtectorRemoved: true,
    });
    expect(early.statusCode, early.body).toBe(409);
    expect(early.json().error.code).toBe('ROTATION_KEY_NOT_ESCROWED');
    // The old key itself is not a replacement.
    const same = await agent.report(action.rotationId, {
      outcome: 'completed',
      newRecoveryKeyId: old.keyId,
      oldProtectorRemoved: true,
    });
    expect(same.json().error.code).toBe('ROTATION_KEY_NOT_ESCROWED');
    // Completion without the removal confirmed is not a completion.
    const unconfirmed = await agent.report(action.rotationId, {
      outcome: 'completed',
      newRecoveryKeyId: replacement.keyId,
      oldProtectorRemoved: false,
    });
    expect(unconfirmed.statusCode).toBe(400);

    // The agent adds the protector, escrows it with the old one still present, removes the old one.
    const [oldAgain, newId] = await agent.escrow([old, replacement]);
    expect(oldAgain).toBe(old.id);
    const done = await agent.report(action.rotationId, {
      outcome: 'completed',
      newRecoveryKeyId: `{${replacement.keyId.toLowerCase()}}`,
      oldProtectorRemoved: true,
    });
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json()).toMatchObject({ rotationId: action.rotationId, status: 'completed' });

    expect(await keyStatus(r, old.id)).toBe('superseded');
    expect(await keyStatus(r, newId!)).toBe('active');
    const [rotation] = await rotationsOf(r, agent.deviceId);
    expect(rotation).toMatchObject({
      status: 'completed',
      newRecoveryKey: { id: newId, recoveryKeyId: replacement.keyId },
    });
    const completed = r.sink.ofType('rotation.completed').filter((e) => e.rotationId === action.rotationId);
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({ newKeyId: replacement.keyId, keyId: old.keyId });

    // The same report again answers the same; nothing more is emitted. Nothing is pending any more.
    const again = await agent.report(action.rotationId, {
      outcome: 'completed',
      newRecoveryKeyId: replacement.keyId,
      oldProtectorRemoved: true,
    });
    expect(again.statusCode).toBe(200);
    expect(
      r.sink.ofType('rotation.completed').filter((e) => e.rotationId === action.rotationId),
    ).toHaveLength(1);
    expect((await agent.checkIn()).actions).toEqual([]);
    const failLate = await agent.report(action.rotationId, { outcome: 'failed', reason: 'too late' });
    expect(failLate.statusCode).toBe(409);
    expect(failLate.json().error.code).toBe('ROTATION_CLOSED');
  });

  it('a failure is recorded with its reason; a later disclosure opens a new request', async () => {
    const agent = await FakeAgent.enroll(r);
    const old = await agent.escrowNewKey();
    await disclose(r, old.id);
    const [action] = (await agent.checkIn()).actions;

    const failed = await agent.report(action!.rotationId, {
      outcome: 'failed',
      reason: 'Add-BitLockerKeyProtector: access denied (0x80070005)',
    });
    expect(failed.statusCode, failed.body).toBe(200);
    expect(failed.json().status).toBe('failed');
    const [rotation] = await rotationsOf(r, agent.deviceId, 'failed');
    expect(rotation).toMatchObject({
      id: action!.rotationId,
      failureReason: 'Add-BitLockerKeyProtector: access denied (0x80070005)',
    });
    expect(r.sink.ofType('rotation.failed').map((e) => e.rotationId)).toContain(action!.rotationId);
    // The password is still exposed: the key keeps waiting for a rotation.
    expect(await keyStatus(r, old.id)).toBe('rotation_pending');
    expect((await agent.checkIn()).actions).toEqual([]);

    const completeAfterFailure = await agent.report(action!.rotationId, {
      outcome: 'completed',
      newRecoveryKeyId: newKey().keyId,
      oldProtectorRemoved: true,
    });
    expect(completeAfterFailure.json().error.code).toBe('ROTATION_CLOSED');

    await disclose(r, old.id);
    const open = await rotationsOf(r, agent.deviceId, 'requested');
    expect(open).toHaveLength(1);
    expect(open[0]!.id).not.toBe(action!.rotationId);
  });

  it("another device's rotation is not found; bad input and user credentials are refused", async () => {
    const agent = await FakeAgent.enroll(r);
    const other = await FakeAgent.enroll(r);
    const old = await agent.escrowNewKey();
    await disclose(r, old.id);
    const [action] = (await agent.checkIn()).actions;

    expect((await other.checkIn()).actions).toEqual([]);
    const foreign = await other.report(action!.rotationId, { outcome: 'failed', reason: 'not mine' });
    expect(foreign.statusCode).toBe(404);

    for (const payload of [
      { outcome: 'failed' },
      { outcome: 'failed', reason: '' },
      { outcome: 'failed', reason: 'x'.repeat(501) },
      { outcome: 'completed', newRecoveryKeyId: 'not-a-guid', oldProtectorRemoved: true },
      { outcome: 'done' },
      { outcome: 'failed', reason: 'x', extra: 1 },
    ]) {
      const res = await agent.report(action!.rotationId, payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    const badId = await agent.report('rot_nope', { outcome: 'failed', reason: 'x' });
    expect(badId.statusCode).toBe(400);

    const asAdmin = await r.app.inject({
      method: 'POST',
      url: '/api/escrow/check-in',
      headers: bearer(r.adminToken),
      payload: {},
    });
    expect(asAdmin.statusCode).toBe(403);
    const anonymous = await r.app.inject({ method: 'POST', url: '/api/escrow/check-in', payload: {} });
    expect(anonymous.statusCode).toBe(401);
    // The device credential is good for the agent routes only.
    const deviceOnOperatorRoute = await r.app.inject({
      url: '/api/rotations',
      headers: bearer(agent.credential),
    });
    expect(deviceOnOperatorRoute.statusCode).toBe(403);
  });

  it('check-in records the heartbeat: last seen and agent version', async () => {
    const agent = await FakeAgent.enroll(r);
    r.clock.advance(60_000);
    const res = await agent.post('/api/escrow/check-in', {
      agentVersion: '1.2.3',
      device: { os: 'Windows 11 Enterprise 24H2' },
    });
    expect(res.statusCode, res.body).toBe(200);
    const device = await r.app.inject({
      url: `/api/devices/${agent.deviceId}`,
      headers: bearer(r.adminToken),
    });
    expect(device.json()).toMatchObject({
      os: 'Windows 11 Enterprise 24H2',
      lastSeenAt: r.clock.now().toISOString(),
    });
    const status = await r.vault.db
      .selectFrom('device_agent_status')
      .selectAll()
      .where('device_id', '=', agent.deviceId)
      .executeTakeFirstOrThrow();
    expect(status.agent_version).toBe('1.2.3');
  });
});
