// Overdue detection on a controlled clock: the sweep marks a late rotation once and emits rotation.overdue once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRotationSweep } from '../../src/modules/rotation/rotation-sweep.scheduler.js';
import { bearer, newKey } from '../helpers.js';
import { createRotationVault, DAY, disclose, FakeAgent, rotationsOf, type RotationVault } from './support.js';

let r: RotationVault;

beforeAll(async () => {
  r = await createRotationVault();
});

afterAll(async () => {
  await r?.close();
});

describe('overdue rotations', () => {
  it('is overdue only after the deadline, marked and announced once, and listed', async () => {
    const agent = await FakeAgent.enroll(r);
    const old = await agent.escrowNewKey();
    await disclose(r, old.id);
    const [rotation] = await rotationsOf(r, agent.deviceId);
    expect(Date.parse(rotation!.dueAt) - r.clock.now().getTime()).toBe(7 * DAY);
    await agent.checkIn();

    r.clock.advance(7 * DAY - 1000);
    expect(await r.services.rotations.sweepOverdue()).toEqual([]);
    expect((await rotationsOf(r, agent.deviceId))[0]!.status).toBe('delivered');

    r.clock.advance(2000);
    expect(await r.services.rotations.sweepOverdue()).toEqual([rotation!.id]);
    expect(await r.services.rotations.sweepOverdue()).toEqual([]);

    const overdueEvents = r.sink.ofType('rotation.overdue').filter((e) => e.rotationId === rotation!.id);
    expect(overdueEvents).toHaveLength(1);
    expect(overdueEvents[0]).toMatchObject({
      deviceId: agent.deviceId,
      keyId: old.keyId,
      dueAt: rotation!.dueAt,
    });

    const listed = await r.app.inject({
      url: '/api/rotations?status=overdue',
      headers: bearer(r.adminToken),
    });
    expect(listed.statusCode).toBe(200);
    expect(listed.json().rotations.map((x: { id: string }) => x.id)).toContain(rotation!.id);
    const audit = await r.vault.db
      .selectFrom('audit_log')
      .select(['action', 'actor_type'])
      .where('target_id', '=', rotation!.id)
      .where('action', '=', 'rotation.overdue')
      .execute();
    expect(audit).toEqual([{ action: 'rotation.overdue', actor_type: 'system' }]);

    // Still delivered at check-in, and a late completion closes it.
    const [action] = (await agent.checkIn()).actions;
    expect(action!.rotationId).toBe(rotation!.id);
    const replacement = newKey();
    await agent.escrow([old, replacement]);
    const done = await agent.report(rotation!.id, {
      outcome: 'completed',
      newRecoveryKeyId: replacement.keyId,
      oldProtectorRemoved: true,
    });
    expect(done.json().status).toBe('completed');
    expect(await r.services.rotations.sweepOverdue()).toEqual([]);
    expect(r.sink.ofType('rotation.overdue').filter((e) => e.rotationId === rotation!.id)).toHaveLength(1);
  });

  it("follows the organization's deadline, and the server's sweep runs on the injected timer", async () => {
    const changed = await r.app.inject({
      method: 'PATCH',
      url: '/api/rotation-policy',
      headers: bearer(r.adminToken),
      payload: { deadlineDays: 2 },
    });
    expect(changed.json()).toEqual({ singleUsePasswords: true, deadlineDays: 2 });

    const agent = await FakeAgent.enroll(r);
    const key = await agent.escrowNewKey();
    await disclose(r, key.id);
    const [rotation] = await rotationsOf(r, agent.deviceId);
    expect(Date.parse(rotation!.dueAt) - r.clock.now().getTime()).toBe(2 * DAY);

    let tick: (() => Promise<void>) | undefined;
    let cancelled = false;
    const sweep = startRotationSweep(r.services.rotations, {
      timer: {
        every: (_ms, fn) => {
          tick = fn;
          return { cancel: () => (cancelled = true) };
        },
      },
    });
    await tick!();
    expect((await rotationsOf(r, agent.deviceId))[0]!.status).toBe('requested');
    r.clock.advance(2 * DAY + 1);
    await tick!();
    expect((await rotationsOf(r, agent.deviceId))[0]!.status).toBe('overdue');
    await sweep.stop();
    expect(cancelled).toBe(true);
    expect(r.sink.ofType('rotation.overdue').filter((e) => e.rotationId === rotation!.id)).toHaveLength(1);
  });
});
