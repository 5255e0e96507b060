// Disclosure limits over HTTP with an injected clock: per account, per address, the threshold alert and suspension.
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app-types.js';
import { DEFAULT_DISCLOSURE_LIMITS } from '../../src/modules/access/disclosure-guard.js';
import { bearer, createTestVault, type TestVault } from '../helpers.js';
import { auditRows, movableClock, patchSettings, recordingAlerts, type MovableClock } from './people.js';
import {
  adminTokenFor,
  assignRole,
  createOrganization,
  createPerson,
  deviceWithKey,
  groupId,
  nextAddress,
  personalToken,
} from './support.js';

let t: TestVault;
let app: App;
let clock: MovableClock;
const sink = recordingAlerts();

beforeAll(async () => {
  t = await createTestVault();
  // 10 seconds into a minute, so the per-minute windows have 50 seconds left.
  clock = movableClock('2032-05-04T10:00:10.000Z');
  app = await t.appWith({ clock, alerts: sink });
}, 120_000);

afterAll(async () => {
  await t?.close();
});

/** A fresh organization (its own settings), an admin token for it, and a device with a key. */
async function organization(settings: Record<string, unknown>) {
  const organizationId = await createOrganization(t, `Org ${nextAddress()}`);
  const admin = await adminTokenFor(t, organizationId);
  await patchSettings({ ...t, app }, admin, settings);
  const device = await deviceWithKey(t, admin);
  return { organizationId, admin, device };
}

async function discloser(organizationId: string) {
  const userId = await createPerson(t, organizationId);
  await assignRole(t, organizationId, userId, 'device-administrator');
  return { userId, token: (await personalToken(t, organizationId, userId)).token };
}

const disclose = (token: string, keyRecordId: string, address: string) =>
  app.inject({
    method: 'POST',
    url: `/api/recovery-keys/${keyRecordId}/disclose`,
    remoteAddress: address,
    headers: bearer(token),
    payload: { reason: 'limits test' },
  });

async function discloseTimes(n: number, token: string, keyRecordId: string, address: string) {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await disclose(token, keyRecordId, address)).statusCode);
  return statuses;
}

describe('rate limits', () => {
  it('per account: past the limit 429 RATE_LIMITED with Retry-After, nothing disclosed; the next window opens again', async () => {
    const { organizationId, device } = await organization({ disclosureAlertThreshold: 10_000 });
    const { token } = await discloser(organizationId);
    const max = DEFAULT_DISCLOSURE_LIMITS.perAccount.max;
    // Each from its own address, so only the account limit can trip.
    const statuses: number[] = [];
    for (let i = 0; i < max; i++)
      statuses.push((await disclose(token, device.keyRecordId, nextAddress())).statusCode);
    expect(statuses).toEqual(Array(max).fill(200));

    const refused = await disclose(token, device.keyRecordId, nextAddress());
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe('RATE_LIMITED');
    expect(refused.headers['retry-after']).toBe('50');
    expect(refused.body).not.toContain(device.password);
    const rows = await auditRows(t, 'recovery-key.disclosed', device.keyRecordId);
    expect(rows).toHaveLength(max);
    expect(rows.every((r) => r.actor_id !== null)).toBe(true);

    // Another account of the same organization is not affected.
    const other = await discloser(organizationId);
    expect((await disclose(other.token, device.keyRecordId, nextAddress())).statusCode).toBe(200);

    clock.advance(50_000);
    const next = await disclose(token, device.keyRecordId, nextAddress());
    expect(next.statusCode, next.body).toBe(200);
    expect(next.json().recoveryPassword).toBe(device.password);
  });

  it('per address: several accounts from one address are limited together', async () => {
    const { organizationId, device } = await organization({ disclosureAlertThreshold: 10_000 });
    const max = DEFAULT_DISCLOSURE_LIMITS.perAddress.max;
    const perAccount = DEFAULT_DISCLOSURE_LIMITS.perAccount.max;
    const accounts = [];
    for (let i = 0; i < Math.ceil(max / perAccount) + 1; i++) accounts.push(await discloser(organizationId));
    const address = nextAddress();
    const statuses: number[] = [];
    for (let i = 0; i < max; i++) {
      const who = accounts[i % accounts.length]!;
      statuses.push((await disclose(who.token, device.keyRecordId, address)).statusCode);
    }
    expect(statuses).toEqual(Array(max).fill(200));
    // The next account has used fewer than its own limit, yet the address is spent.
    const fresh = accounts.at(-1)!;
    const refused = await disclose(fresh.token, device.keyRecordId, address);
    expect(refused.statusCode).toBe(429);
    expect(refused.json().error.code).toBe('RATE_LIMITED');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(60);
    // The same account from another address is fine.
    expect((await disclose(fresh.token, device.keyRecordId, nextAddress())).statusCode).toBe(200);
  });
});

describe('threshold alert', () => {
  it('the disclosure past the threshold is audited as alert.disclosure_threshold and handed to the alerts sink, once per window', async () => {
    const { organizationId, device } = await organization({
      disclosureAlertThreshold: 3,
      disclosureAlertWindowMinutes: 10,
      suspendOnDisclosureAlert: false,
    });
    const { userId, token } = await discloser(organizationId);
    const before = sink.alerts.length;
    expect(await discloseTimes(3, token, device.keyRecordId, nextAddress())).toEqual([200, 200, 200]);
    expect(await auditRows(t, 'alert.disclosure_threshold', userId)).toEqual([]);
    expect(sink.alerts.length).toBe(before);

    // The fourth is still served (no suspension policy) but raises the alert.
    expect((await disclose(token, device.keyRecordId, nextAddress())).statusCode).toBe(200);
    const alerts = await auditRows(t, 'alert.disclosure_threshold', userId);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      organization_id: organizationId,
      actor_type: 'system',
      target_type: 'user',
      target_id: userId,
      details: { count: 4, threshold: 3, windowMinutes: 10, suspended: false },
    });
    expect(sink.alerts.slice(before)).toEqual([
      {
        type: 'disclosure_threshold',
        organizationId,
        account: { type: 'user', id: userId },
        count: 4,
        threshold: 3,
        windowMinutes: 10,
        suspended: false,
        occurredAt: clock.now().toISOString(),
        auditEntryId: alerts[0]!.id,
      },
    ]);

    // Further disclosures in the same window raise nothing more.
    expect(await discloseTimes(2, token, device.keyRecordId, nextAddress())).toEqual([200, 200]);
    expect(await auditRows(t, 'alert.disclosure_threshold', userId)).toHaveLength(1);
    expect(sink.alerts.length).toBe(before + 1);

    // A new window starts counting again.
    clock.advance(10 * 60_000);
    expect(await discloseTimes(4, token, device.keyRecordId, nextAddress())).toEqual([200, 200, 200, 200]);
    expect(await auditRows(t, 'alert.disclosure_threshold', userId)).toHaveLength(2);
    expect(sink.alerts.length).toBe(before + 2);
  });

  it('attempts the rate limit refuses are not disclosures: they do not count toward the threshold', async () => {
    const max = DEFAULT_DISCLOSURE_LIMITS.perAccount.max;
    const { organizationId, device } = await organization({
      disclosureAlertThreshold: max + 1,
      disclosureAlertWindowMinutes: 10,
      suspendOnDisclosureAlert: false,
    });
    const { userId, token } = await discloser(organizationId);
    // Start on a fresh 10-minute window (also a fresh minute): the burst shares one rate-limit
    // window and everything below one threshold window.
    clock.advance(600_000 - (clock.now().getTime() % 600_000));
    const served: number[] = [];
    for (let i = 0; i < max; i++)
      served.push((await disclose(token, device.keyRecordId, nextAddress())).statusCode);
    expect(served).toEqual(Array(max).fill(200));
    const refused: number[] = [];
    for (let i = 0; i < 5; i++)
      refused.push((await disclose(token, device.keyRecordId, nextAddress())).statusCode);
    expect(refused).toEqual(Array(5).fill(429));

    // The next rate window: disclosure max + 1 is the threshold itself, max + 2 crosses it.
    clock.advance(60_000);
    expect((await disclose(token, device.keyRecordId, nextAddress())).statusCode).toBe(200);
    expect(await auditRows(t, 'alert.disclosure_threshold', userId)).toEqual([]);
    expect((await disclose(token, device.keyRecordId, nextAddress())).statusCode).toBe(200);
    const alerts = await auditRows(t, 'alert.disclosure_threshold', userId);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.details).toMatchObject({ count: max + 2, threshold: max + 1 });
  });

  it('keys the caller may not disclose (outside its device groups, or missing) answer 404 and do not count toward the threshold', async () => {
    const { organizationId, admin } = await organization({
      disclosureAlertThreshold: 2,
      disclosureAlertWindowMinutes: 10,
      suspendOnDisclosureAlert: false,
    });
    const inScope = await deviceWithKey(t, admin, 'Limits in scope');
    const outOfScope = await deviceWithKey(t, admin, 'Limits out of scope');
    const userId = await createPerson(t, organizationId);
    await assignRole(t, organizationId, userId, 'device-administrator', [
      await groupId(t, admin, 'Limits in scope'),
    ]);
    const { token } = await personalToken(t, organizationId, userId);
    clock.advance(600_000 - (clock.now().getTime() % 600_000));

    const refused = [
      await disclose(token, outOfScope.keyRecordId, nextAddress()),
      await disclose(token, outOfScope.keyRecordId, nextAddress()),
      await disclose(token, 'rk_0000000000000000000000000a', nextAddress()),
    ];
    for (const r of refused) {
      expect(r.statusCode, r.body).toBe(404);
      expect(r.json().error.code).toBe('KEY_NOT_FOUND');
    }
    const out = await t.vault.db
      .selectFrom('recovery_keys')
      .select('last_disclosed_at')
      .where('id', '=', outOfScope.keyRecordId)
      .executeTakeFirstOrThrow();
    expect(out.last_disclosed_at).toBeNull();

    // Threshold 2: had the refused attempts counted, the first real disclosure would raise it.
    expect(await discloseTimes(2, token, inScope.keyRecordId, nextAddress())).toEqual([200, 200]);
    expect(await auditRows(t, 'alert.disclosure_threshold', userId)).toEqual([]);
    expect((await disclose(token, inScope.keyRecordId, nextAddress())).statusCode).toBe(200);
    expect(await auditRows(t, 'alert.disclosure_threshold', userId)).toHaveLength(1);
  });

  it('a failing alerts sink does not fail the request nor lose the audited alert', async () => {
    const failing = await t.appWith({
      clock,
      alerts: {
        emit: async () => {
          throw new Error('mail server down');
        },
      },
    });
    const { organizationId, device } = await organization({ disclosureAlertThreshold: 1 });
    const { userId, token } = await discloser(organizationId);
    const send = (): InjectOptions => ({
      method: 'POST',
      url: `/api/recovery-keys/${device.keyRecordId}/disclose`,
      remoteAddress: nextAddress(),
      headers: bearer(token),
      payload: { reason: 'sink test' },
    });
    expect((await failing.inject(send())).statusCode).toBe(200);
    const second = await failing.inject(send());
    expect(second.statusCode, second.body).toBe(200);
    expect(await auditRows(t, 'alert.disclosure_threshold', userId)).toHaveLength(1);
  });
});

describe('automatic suspension', () => {
  it('suspends when the policy says so: the crossing request and every later one get 403 ACCOUNT_SUSPENDED, audited; lifting restores access', async () => {
    const { organizationId, admin, device } = await organization({
      disclosureAlertThreshold: 2,
      disclosureAlertWindowMinutes: 60,
      suspendOnDisclosureAlert: true,
    });
    const { userId, token } = await discloser(organizationId);
    // A second personal token of the same person: a suspension is of the person, not of one token.
    const secondToken = (await personalToken(t, organizationId, userId)).token;
    const bystander = await discloser(organizationId);
    const before = sink.alerts.length;

    expect(await discloseTimes(2, token, device.keyRecordId, nextAddress())).toEqual([200, 200]);
    const crossing = await disclose(token, device.keyRecordId, nextAddress());
    expect(crossing.statusCode).toBe(403);
    expect(crossing.json().error.code).toBe('ACCOUNT_SUSPENDED');
    expect(crossing.body).not.toContain(device.password);
    expect(await auditRows(t, 'recovery-key.disclosed', device.keyRecordId)).toHaveLength(2);

    const suspended = await auditRows(t, 'account.suspended', userId);
    expect(suspended).toHaveLength(1);
    expect(suspended[0]).toMatchObject({ organization_id: organizationId, actor_type: 'system' });
    const suspensionId = suspended[0]!.details.suspensionId as string;
    expect(sink.alerts.slice(before).map((a) => [a.account.id, a.suspended])).toEqual([[userId, true]]);

    for (const [who, request] of [
      [token, { url: `/api/devices/${device.deviceId}` }],
      [secondToken, { url: `/api/devices/${device.deviceId}` }],
      [
        secondToken,
        {
          method: 'POST',
          url: `/api/recovery-keys/${device.keyRecordId}/disclose`,
          payload: { reason: 'again' },
        },
      ],
    ] as [string, InjectOptions][]) {
      const res = await app.inject({
        ...request,
        remoteAddress: nextAddress(),
        headers: bearer(who),
      } as InjectOptions);
      expect(res.statusCode, String(request.url)).toBe(403);
      expect(res.json().error.code).toBe('ACCOUNT_SUSPENDED');
    }
    const refusals = await auditRows(t, 'access.refused-suspended', suspensionId);
    expect(refusals).toHaveLength(3);
    expect(
      refusals.every((r) => r.actor_type === 'user' && r.actor_id === userId && r.outcome === 'failure'),
    ).toBe(true);
    expect(await auditRows(t, 'recovery-key.disclosed', device.keyRecordId)).toHaveLength(2);

    // Somebody else in the organization is not suspended.
    expect((await disclose(bystander.token, device.keyRecordId, nextAddress())).statusCode).toBe(200);

    const listed = await app.inject({ url: '/api/account-suspensions', headers: bearer(admin) });
    expect(listed.json().suspensions).toEqual([
      expect.objectContaining({
        id: suspensionId,
        subjectType: 'user',
        subjectId: userId,
        reason: 'disclosure_threshold',
        liftedAt: null,
      }),
    ]);

    const lifted = await app.inject({
      method: 'DELETE',
      url: `/api/account-suspensions/${suspensionId}`,
      headers: bearer(admin),
    });
    expect(lifted.statusCode, lifted.body).toBe(204);
    expect(await auditRows(t, 'account.suspension-lifted', suspensionId)).toHaveLength(1);
    expect(
      (await app.inject({ url: `/api/devices/${device.deviceId}`, headers: bearer(token) })).statusCode,
    ).toBe(200);
    const again = await app.inject({
      method: 'DELETE',
      url: `/api/account-suspensions/${suspensionId}`,
      headers: bearer(admin),
    });
    expect(again.statusCode).toBe(404);
  });

  it('a service token is suspended on its own account', async () => {
    const { admin, device } = await organization({
      disclosureAlertThreshold: 1,
      suspendOnDisclosureAlert: true,
    });
    const created = await app.inject({
      method: 'POST',
      url: '/api/api-tokens',
      headers: bearer(admin),
      payload: { name: 'script', permissions: ['keys:disclose'], kind: 'service' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const service = created.json().token as string;
    expect(await discloseTimes(2, service, device.keyRecordId, nextAddress())).toEqual([200, 403]);
    const rows = await auditRows(t, 'account.suspended', created.json().id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.target_type).toBe('api-token');
    // The admin token of the same organization is unaffected.
    expect((await disclose(admin, device.keyRecordId, nextAddress())).statusCode).toBe(200);
  });
});
