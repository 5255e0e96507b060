// An overdue rotation on a controlled clock: the sweep's rotation.overdue reaches the device owner and the security addresses by real SMTP, and a signed webhook, once.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRotationSweep } from '../../src/modules/rotation/rotation-sweep.scheduler.js';
import { bearer, type TestVault } from '../helpers.js';
import { createPerson, deviceWithKey } from '../access/support.js';
import {
  controlledClock,
  createClockedVault,
  startSmtpSink,
  startWebhookReceiver,
  waitFor,
  type ControlledClock,
} from './support.js';

const DAY = 86_400_000;
const PASSWORD_PATTERN = /\d{6}(-?\d{6}){7}/;

let t: TestVault;
let clock: ControlledClock;
let smtp: Awaited<ReturnType<typeof startSmtpSink>>;
let hooks: Awaited<ReturnType<typeof startWebhookReceiver>>;
let secret = '';
let device: Awaited<ReturnType<typeof deviceWithKey>>;
let disclosedPassword = '';

async function api(method: 'GET' | 'POST' | 'PUT', url: string, payload?: Record<string, unknown>) {
  return t.app.inject({
    method,
    url,
    headers: bearer(t.adminToken),
    ...(payload === undefined ? {} : { payload }),
  });
}

beforeAll(async () => {
  clock = controlledClock('2026-02-02T09:00:00.000Z');
  t = await createClockedVault(clock);
  smtp = await startSmtpSink();
  hooks = await startWebhookReceiver(() => Math.floor(clock.now().getTime() / 1000));
  const settings = await api('PUT', '/api/notifications/settings', {
    smtp: { host: '127.0.0.1', port: smtp.port, tls: 'none', from: 'vault@example.test' },
    securityAddresses: ['security@example.test', 'soc@example.test'],
  });
  expect(settings.statusCode, settings.body).toBe(200);
  const hook = await api('POST', '/api/notifications/webhooks', {
    name: 'rotation watch',
    url: hooks.url('/rotations'),
    eventTypes: ['rotation.overdue'],
  });
  expect(hook.statusCode, hook.body).toBe(201);
  secret = hook.json().secret;
  hooks.route('/rotations', secret);

  const owner = await createPerson(t, t.organizationId, 'owner-olga');
  await t.vault.db.updateTable('users').set({ email: 'olga@example.test' }).where('id', '=', owner).execute();
  device = await deviceWithKey(t, t.adminToken);
  const set = await api('PUT', `/api/devices/${device.deviceId}/owner`, { ownerUserId: owner });
  expect(set.statusCode, set.body).toBe(204);
}, 60_000);

afterAll(async () => {
  await t?.close();
  await smtp?.close();
  await hooks?.close();
});

describe('overdue rotation notifications', () => {
  it('mails the owner and the security addresses and posts a signed webhook when the sweep finds a rotation late, once', async () => {
    const disclosed = await api('POST', `/api/recovery-keys/${device.keyRecordId}/disclose`, {
      reason: 'locked out at preboot',
    });
    expect(disclosed.statusCode, disclosed.body).toBe(200);
    disclosedPassword = disclosed.json().recoveryPassword;
    await t.vault.deps.notifications.idle();
    const rotations = await api('GET', `/api/rotations?deviceId=${device.deviceId}`);
    const [rotation] = rotations.json().rotations as { id: string; dueAt: string; status: string }[];
    expect(rotation).toMatchObject({ status: 'requested', dueAt: '2026-02-09T09:00:00.000Z' });

    // The server's sweep, on an injected timer: the test decides when it ticks.
    let tick: (() => Promise<void>) | undefined;
    const sweep = startRotationSweep(t.vault.services.rotation.rotations, {
      timer: {
        every: (_ms, fn) => {
          tick = fn;
          return { cancel: () => undefined };
        },
      },
    });
    try {
      const mailsBefore = smtp.mails.length;
      const hooksBefore = hooks.received.length;
      const overdueMails = () => smtp.mails.slice(mailsBefore).filter((m) => m.subject.includes('overdue'));

      // One second before the deadline: nothing is late, nothing is sent.
      clock.set('2026-02-09T08:59:59.000Z');
      await tick!();
      await t.vault.deps.notifications.idle();
      expect(overdueMails()).toEqual([]);
      expect(hooks.received.length).toBe(hooksBefore);

      clock.set('2026-02-09T09:00:01.000Z');
      await tick!();
      await t.vault.deps.notifications.idle();
      await waitFor(() => overdueMails().length >= 3, 'three overdue mails');
      const mails = overdueMails();
      expect(mails.map((m) => m.to).sort()).toEqual([
        ['olga@example.test'],
        ['security@example.test'],
        ['soc@example.test'],
      ]);
      const [audit] = await t.vault.db
        .selectFrom('audit_log')
        .select('id')
        .where('action', '=', 'rotation.overdue')
        .where('target_id', '=', rotation!.id)
        .execute();
      for (const mail of mails) {
        expect(mail.subject).toBe(`[bdevault] Rotation overdue for ${device.name}`);
        expect(mail.text).toMatch(/rotation is overdue: the disclosed password is still valid/);
        expect(mail.text).toContain('event: rotation.overdue');
        expect(mail.text).toContain(`rotationId: ${rotation!.id}`);
        expect(mail.text).toContain(`keyId: ${device.keyId}`);
        expect(mail.text).toContain(`deviceId: ${device.deviceId}`);
        expect(mail.text).toContain(`dueAt: ${rotation!.dueAt}`);
        expect(mail.text).toContain(`auditEntryId: ${audit!.id}`);
        // Decoded and raw: quoted-printable may fold a long line in the raw message.
        for (const part of [mail.subject, mail.text, mail.raw]) {
          expect(part).not.toContain(disclosedPassword);
          expect(part).not.toMatch(PASSWORD_PATTERN);
        }
      }

      const posted = hooks.received.slice(hooksBefore);
      expect(posted.map((h) => [h.path, h.headers['x-bdevault-event']])).toEqual([
        ['/rotations', 'rotation.overdue'],
      ]);
      const [hook] = posted;
      expect(hook!.signatureValid).toBe(true);
      expect(hook!.signatureRecomputed).toBe(true);
      // Signed at the controlled clock's second, over "t.body", as the docs say.
      const sent = Math.floor(clock.now().getTime() / 1000);
      expect(hook!.headers['x-bdevault-signature']).toBe(
        `t=${sent},v1=${createHmac('sha256', secret).update(`${sent}.${hook!.body}`).digest('hex')}`,
      );
      expect(JSON.parse(hook!.body)).toEqual({
        id: hook!.headers['x-bdevault-delivery'],
        type: 'rotation.overdue',
        organizationId: t.organizationId,
        occurredAt: '2026-02-09T09:00:01.000Z',
        data: {
          rotationId: rotation!.id,
          recoveryKeyRecordId: device.keyRecordId,
          keyId: device.keyId,
          deviceId: device.deviceId,
          deviceName: device.name,
          auditEntryId: audit!.id,
          dueAt: rotation!.dueAt,
        },
      });
      expect(hook!.body).not.toContain(disclosedPassword);

      const log = await api('GET', '/api/notifications/deliveries?eventType=rotation.overdue');
      expect(
        (log.json().deliveries as { channel: string; recipient: string; status: string }[])
          .map((d) => [d.channel, d.channel === 'email' ? d.recipient : 'webhook', d.status])
          .sort(),
      ).toEqual([
        ['email', 'olga@example.test', 'delivered'],
        ['email', 'security@example.test', 'delivered'],
        ['email', 'soc@example.test', 'delivered'],
        ['webhook', 'webhook', 'delivered'],
      ]);

      // A day later the rotation is still late, but it was announced already.
      clock.advance(DAY);
      await tick!();
      await t.vault.deps.notifications.idle();
      await t.vault.deps.notifications.runDue();
      expect(overdueMails()).toHaveLength(3);
      expect(hooks.received.length).toBe(hooksBefore + 1);
    } finally {
      await sweep.stop();
    }
  });
});
