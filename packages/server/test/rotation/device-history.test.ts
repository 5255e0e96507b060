// Agent events, the device timeline, the likely cause and the post-recovery flag, through the API on a controlled clock.
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { likelyCause } from '../../src/modules/rotation/bitlocker-events.js';
import { bearer, newKey } from '../helpers.js';
import { assignRole, createPerson, personalToken } from '../access/support.js';
import type { TestVault } from '../helpers.js';
import { createRotationVault, DAY, disclose, FakeAgent, type RotationVault } from './support.js';

let r: RotationVault;

beforeAll(async () => {
  r = await createRotationVault();
});

afterAll(async () => {
  await r?.close();
});

const event = (recordId: number, eventId: number, minutesAgo: number, message?: string) => ({
  recordId,
  eventId,
  occurredAt: new Date(r.clock.now().getTime() - minutesAgo * 60_000).toISOString(),
  level: 'Warning',
  ...(message === undefined ? {} : { message }),
});

describe('likelyCause', () => {
  it.each([
    [[{ eventId: 524 }], 'boot-or-firmware-change', 'medium'],
    [[{ eventId: 526 }, { eventId: 823 }], 'boot-or-firmware-change', 'high'],
    [[{ eventId: 527 }], 'unknown-pin', 'medium'],
    [[{ eventId: 529 }], 'lost-startup-key', 'medium'],
    [[{ eventId: 521 }], 'tpm-change', 'medium'],
    [[{ eventId: 531 }], 'unknown', 'low'],
    // A specific cause beats `unknown`, and text beats the id's default.
    [[{ eventId: 531 }, { eventId: 524 }], 'boot-or-firmware-change', 'medium'],
    [
      [{ eventId: 531, message: 'Bootmgr failed to obtain the key from the TPM + PIN' }],
      'unknown-pin',
      'high',
    ],
    [
      [
        {
          eventId: 522,
          message: 'failed to unseal the key because Secure Boot configuration changed unexpectedly',
        },
      ],
      'boot-or-firmware-change',
      'high',
    ],
  ] as const)('%j suggests %s (%s)', (events, cause, confidence) => {
    expect(likelyCause(events)).toMatchObject({ cause, confidence });
  });

  it('suggests nothing from unlock or protector events alone', () => {
    expect(likelyCause([{ eventId: 782 }, { eventId: 775 }, { eventId: 776 }])).toBeUndefined();
    expect(likelyCause([])).toBeUndefined();
  });
});

describe('device events from the agent', () => {
  it('stores a batch once, updates last seen, suggests the cause and announces it', async () => {
    const agent = await FakeAgent.enroll(r);
    const key = await agent.escrowNewKey();
    r.clock.advance(60_000);
    const batch = [
      event(1001, 524, 30, 'The boot configuration (BCD) changed since BitLocker was enabled.'),
      event(1002, 782, 29, `A recovery password was used to start Windows. Protector ID: {${key.keyId}}.`),
      event(1003, 775, 10),
    ];
    const res = await agent.post('/api/escrow/events', { events: batch });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      accepted: 3,
      duplicates: 0,
      likelyCause: { cause: 'boot-or-firmware-change', evidence: [524] },
    });
    const resent = await agent.post('/api/escrow/events', { events: batch });
    expect(resent.json()).toMatchObject({ accepted: 0, duplicates: 3 });

    const reported = r.sink.ofType('device.event-reported').filter((e) => e.deviceId === agent.deviceId);
    expect(reported).toHaveLength(1);
    expect(reported[0]).toMatchObject({ eventIds: [524, 782, 775], likelyCause: 'boot-or-firmware-change' });

    const device = await r.app.inject({
      url: `/api/devices/${agent.deviceId}`,
      headers: bearer(r.adminToken),
    });
    expect(device.json().lastSeenAt).toBe(r.clock.now().toISOString());

    const listed = await r.app.inject({
      url: `/api/devices/${agent.deviceId}/bitlocker-events`,
      headers: bearer(r.adminToken),
    });
    expect(listed.statusCode, listed.body).toBe(200);
    expect(listed.json().events.map((e: { eventId: number }) => e.eventId)).toEqual([524, 782, 775]);
    expect(listed.json().events[1]).toMatchObject({ role: 'unlock', protectorId: key.keyId });
    expect(listed.json().likelyCause.cause).toBe('boot-or-firmware-change');

    // What recovery cases call: events of the device since a time, with the suggestion.
    const since = new Date(r.clock.now().getTime() - 20 * 60_000).toISOString();
    const forCase = await r.services.deviceEvents.eventsForDevice(r.organizationId, agent.deviceId, since);
    expect(forCase.events.map((e) => e.recordId)).toEqual([1003]);
    expect(forCase.likelyCause).toBeUndefined();
  });

  it('never stores anything shaped like a recovery password', async () => {
    const agent = await FakeAgent.enroll(r);
    const { password } = newKey();
    const res = await agent.post('/api/escrow/events', {
      events: [event(7, 776, 1, `Protector removed; password ${password} was on it`)],
    });
    expect(res.statusCode).toBe(200);
    const rows = await r.vault.db
      .selectFrom('device_events')
      .select('message')
      .where('device_id', '=', agent.deviceId)
      .execute();
    expect(rows[0]!.message).toContain('[redacted]');
    expect(rows[0]!.message).not.toContain(password);
    expect(JSON.stringify(r.sink.events)).not.toContain(password);
  });

  it('refuses unknown ids, oversized batches and malformed records; devices only', async () => {
    const agent = await FakeAgent.enroll(r);
    for (const payload of [
      { events: [] },
      { events: [event(1, 4624, 1)] },
      { events: [{ ...event(1, 524, 1), occurredAt: 'yesterday' }] },
      { events: [{ ...event(1, 524, 1), recordId: -1 }] },
      { events: [{ ...event(1, 524, 1), message: 'x'.repeat(4001) }] },
      { events: [{ ...event(1, 524, 1), extra: true }] },
      { events: Array.from({ length: 201 }, (_, i) => event(i, 524, 1)) },
    ]) {
      const res = await agent.post('/api/escrow/events', payload);
      expect(res.statusCode, JSON.stringify(payload).slice(0, 80)).toBe(400);
    }
    const asAdmin = await r.app.inject({
      method: 'POST',
      url: '/api/escrow/events',
      headers: bearer(r.adminToken),
      payload: { events: [event(1, 524, 1)] },
    });
    expect(asAdmin.statusCode).toBe(403);
  });
});

describe('device timeline', () => {
  it('puts escrows, disclosures, rotations and agent events in time order, page by page', async () => {
    const agent = await FakeAgent.enroll(r);
    const old = await agent.escrowNewKey();
    r.clock.advance(1000);
    await agent.post('/api/escrow/events', { events: [event(50, 527, 0, 'A wrong PIN was entered')] });
    r.clock.advance(1000);
    await disclose(r, old.id);
    r.clock.advance(1000);
    const [action] = (await agent.checkIn()).actions;
    r.clock.advance(1000);
    const replacement = newKey();
    await agent.escrow([replacement]);
    r.clock.advance(1000);
    await agent.report(action!.rotationId, {
      outcome: 'completed',
      newRecoveryKeyId: replacement.keyId,
      oldProtectorRemoved: true,
    });

    const whole = await r.app.inject({
      url: `/api/devices/${agent.deviceId}/timeline?order=asc&limit=200`,
      headers: bearer(r.adminToken),
    });
    expect(whole.statusCode, whole.body).toBe(200);
    const kinds = whole.json().entries.map((e: { kind: string }) => e.kind);
    expect(kinds).toEqual([
      'key.escrowed',
      'agent.event',
      'key.disclosed',
      'rotation.requested',
      'rotation.delivered',
      'key.escrowed',
      'key.superseded',
      'rotation.completed',
    ]);
    const disclosed = whole.json().entries[2];
    expect(disclosed.details).toMatchObject({
      recoveryKeyId: old.keyId,
      actorType: 'api-token',
      channel: null,
    });
    expect(whole.body).not.toContain(replacement.password);

    // Newest first by default; walking with a cursor gives the same entries, none twice.
    for (const limit of [1, 3]) {
      const walked: string[] = [];
      let cursor: string | null = null;
      do {
        const page: LightMyRequestResponse = await r.app.inject({
          url: `/api/devices/${agent.deviceId}/timeline?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
          headers: bearer(r.adminToken),
        });
        expect(page.statusCode, page.body).toBe(200);
        walked.push(...page.json().entries.map((e: { kind: string; id: string }) => `${e.kind}:${e.id}`));
        cursor = page.json().nextCursor;
      } while (cursor);
      expect(walked).toEqual(
        whole
          .json()
          .entries.map((e: { kind: string; id: string }) => `${e.kind}:${e.id}`)
          .reverse(),
      );
    }
  });

  it('is 404 outside the caller’s scope and 403 without devices:read', async () => {
    const agent = await FakeAgent.enroll(r, { groupName: 'Elsewhere' });
    const t = r as unknown as TestVault;
    const scoped = await createPerson(t, r.organizationId);
    const inside = await r.app.inject({
      method: 'POST',
      url: '/api/device-groups',
      headers: bearer(r.adminToken),
      payload: { name: 'Inside' },
    });
    await assignRole(t, r.organizationId, scoped, 'helpdesk', [inside.json().id]);
    const token = (await personalToken(t, r.organizationId, scoped)).token;
    const res = await r.app.inject({
      url: `/api/devices/${agent.deviceId}/timeline`,
      headers: bearer(token),
    });
    expect(res.statusCode).toBe(404);
    const reportReader = await createPerson(t, r.organizationId);
    await assignRole(t, r.organizationId, reportReader, 'report-reader');
    const rr = (await personalToken(t, r.organizationId, reportReader)).token;
    const denied = await r.app.inject({
      url: `/api/devices/${agent.deviceId}/timeline`,
      headers: bearer(rr),
    });
    expect(denied.statusCode).toBe(403);
  });
});

describe('post-recovery flag', () => {
  const flagged = async () => {
    // The flagged list is the post-recovery report; the timeline carries each device's own flag.
    const res = await r.app.inject({ url: '/api/reports/post-recovery', headers: bearer(r.adminToken) });
    expect(res.statusCode, res.body).toBe(200);
    return (res.json().devices as { deviceId: string; disclosures: number }[]).map((d) => ({
      device: { id: d.deviceId },
      recoveriesInWindow: d.disclosures,
    }));
  };
  const timelineFlag = async (deviceId: string) =>
    (
      await r.app.inject({ url: `/api/devices/${deviceId}/timeline?limit=1`, headers: bearer(r.adminToken) })
    ).json().postRecovery;

  it('flags a device with two recoveries within 30 days, not two recoveries further apart', async () => {
    const agent = await FakeAgent.enroll(r);
    const key = await agent.escrowNewKey();
    await disclose(r, key.id);
    expect((await flagged()).map((d) => d.device.id)).not.toContain(agent.deviceId);
    expect(await timelineFlag(agent.deviceId)).toEqual({
      flagged: false,
      recoveriesInWindow: 1,
      windowDays: 30,
    });

    r.clock.advance(31 * DAY);
    const next = await agent.escrowNewKey();
    await disclose(r, next.id);
    expect((await flagged()).map((d) => d.device.id)).not.toContain(agent.deviceId);

    r.clock.advance(10 * DAY);
    await disclose(r, next.id);
    const found = (await flagged()).find((d) => d.device.id === agent.deviceId);
    expect(found?.recoveriesInWindow).toBe(2);
    expect(await timelineFlag(agent.deviceId)).toMatchObject({ flagged: true, recoveriesInWindow: 2 });

    // The flag follows the window: 30 days after the first of the two, it is gone.
    r.clock.advance(21 * DAY);
    expect((await flagged()).map((d) => d.device.id)).not.toContain(agent.deviceId);
  });
});
