// A recovery case shows its device's BitLocker events (reported by the agent) and the root cause they suggest.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestVault, type TestVault } from '../helpers.js';
import { setOwner } from '../access/people.js';
import { assignRole, createPerson, deviceWithKey, personalToken } from '../access/support.js';
import { caseApi, locatedCase } from './support.js';

const MINUTE = 60_000;
const DAY = 86_400_000;

let t: TestVault;
let operatorToken: string;
let requester: string;
let device: Awaited<ReturnType<typeof deviceWithKey>>;
let otherDevice: Awaited<ReturnType<typeof deviceWithKey>>;

const event = (recordId: number, eventId: number, agoMs: number, message?: string) => ({
  recordId,
  eventId,
  occurredAt: new Date(Date.now() - agoMs).toISOString(),
  level: 'Error',
  ...(message === undefined ? {} : { message }),
});

/** Posts a batch as the device's agent does: its own credential on the escrow API. */
async function report(credential: string, events: unknown[]) {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/escrow/events',
    headers: bearer(credential),
    payload: { events },
  });
  expect(res.statusCode, res.body).toBe(200);
}

beforeAll(async () => {
  t = await createTestVault();
  const operator = await createPerson(t, t.organizationId);
  await assignRole(t, t.organizationId, operator, 'helpdesk');
  operatorToken = (await personalToken(t, t.organizationId, operator)).token;
  requester = await createPerson(t, t.organizationId);
  device = await deviceWithKey(t, t.adminToken);
  otherDevice = await deviceWithKey(t, t.adminToken);
  await setOwner(t, t.adminToken, device.deviceId, requester);

  await report(device.credential, [
    // Outside the window (a week before the case): not attached.
    event(1, 524, 8 * DAY, 'The boot configuration (BCD) changed.'),
    event(2, 527, 30 * MINUTE, 'A wrong PIN was entered.'),
    event(3, 528, 20 * MINUTE),
    event(4, 782, 5 * MINUTE),
  ]);
  // Another device's event names a different cause; it must not leak into this case.
  await report(otherDevice.credential, [event(9, 529, 10 * MINUTE, 'The startup key was not found.')]);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

describe('device events on a recovery case', () => {
  it('shows none before a device is recorded', async () => {
    const created = await caseApi(t.app, operatorToken).create(requester);
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json().deviceEvents).toBeNull();
  });

  it("attaches the device's events in the window, newest first, with the suggested root cause", async () => {
    const api = caseApi(t.app, operatorToken);
    const caseId = await locatedCase(api, requester, device, { rootCause: false });
    const res = await api.get(caseId);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.nextStep).toBe('root-cause');
    const shown = body.deviceEvents as {
      since: string;
      events: Record<string, unknown>[];
      suggestedRootCause: unknown;
    };
    expect(Date.parse(body.createdAt) - Date.parse(shown.since)).toBe(7 * DAY);
    expect(shown.events.map((e) => e.eventId)).toEqual([782, 528, 527]);
    expect(shown.events[0]).toMatchObject({ role: 'unlock', level: 'Error' });
    expect(shown.events[2]).toMatchObject({ role: 'cause', summary: 'A wrong PIN was entered' });
    // Whitelisted fields only: the event text and record numbers stay on the device timeline.
    expect(Object.keys(shown.events[0]!).sort()).toEqual(
      ['eventId', 'id', 'level', 'occurredAt', 'protectorId', 'role', 'summary'].sort(),
    );
    expect(shown.suggestedRootCause).toEqual({
      cause: 'unknown-pin',
      title: 'Forgotten PIN',
      confidence: 'high',
      evidence: [527, 528],
    });
    // Neither the other device's event (529) nor the one from before the window (524) is attached.
    expect(shown.events.some((e) => e.eventId === 529 || e.eventId === 524)).toBe(false);

    // The suggestion does not answer for the helpdesk: the root-cause step is still owed.
    const after = await api.post(caseId, 'root-cause', {
      answers: {
        protectionMode: 'tpm-pin',
        bootFileChange: 'no',
        pcrProfile: 'default',
        forgottenPinOrLostKey: 'forgot-pin',
        changeCause: 'none',
        lastSuccessfulStart: { at: '2026-01-05T08:00:00.000Z', whatHappenedSince: 'Nothing' },
        unattendedOrExposed: 'no',
      },
    });
    expect(after.statusCode, after.body).toBe(200);
    expect(after.json().case.deviceEvents.suggestedRootCause.cause).toBe('unknown-pin');
  });

  it("shows only the other device's events on its own case", async () => {
    await setOwner(t, t.adminToken, otherDevice.deviceId, requester);
    const api = caseApi(t.app, operatorToken);
    const caseId = await locatedCase(api, requester, otherDevice, { rootCause: false });
    const shown = (await api.get(caseId)).json().deviceEvents;
    expect(shown.events.map((e: { eventId: number }) => e.eventId)).toEqual([529]);
    expect(shown.suggestedRootCause).toMatchObject({ cause: 'lost-startup-key', confidence: 'high' });
  });
});
