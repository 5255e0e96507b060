// Notifications end to end: disclosure mails (owner + security), signed webhooks, retries with backoff, alerts, test sends.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, type TestVault } from '../helpers.js';
import { deviceWithKey, createPerson } from '../access/support.js';
import { verifyWebhookSignature } from '../../src/modules/notifications/webhook-signature.js';
import {
  controlledClock,
  createClockedVault,
  recomputeSignature,
  startSmtpSink,
  startWebhookReceiver,
  waitFor,
  type ControlledClock,
} from './support.js';

const PASSWORD_PATTERN = /\d{6}(-\d{6}){7}/;

let t: TestVault;
let clock: ControlledClock;
let smtp: Awaited<ReturnType<typeof startSmtpSink>>;
let hooks: Awaited<ReturnType<typeof startWebhookReceiver>>;
const disclosed: string[] = [];

async function api(
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
  url: string,
  payload?: Record<string, unknown>,
) {
  return t.app.inject({
    method,
    url,
    headers: bearer(t.adminToken),
    ...(payload === undefined ? {} : { payload }),
  });
}

async function disclose(keyRecordId: string) {
  const res = await api('POST', `/api/recovery-keys/${keyRecordId}/disclose`, {
    reason: 'user locked out (BIOS changed)',
  });
  expect(res.statusCode, res.body).toBe(200);
  disclosed.push(res.json().recoveryPassword as string);
  // The sink queues after commit and sends in the background; wait for that run to end.
  await t.vault.deps.notifications.idle();
  return res.json() as { id: string; recoveryKeyId: string; auditEntryId: string };
}

async function deliveries(query = '') {
  const res = await api('GET', `/api/notifications/deliveries${query}`);
  expect(res.statusCode, res.body).toBe(200);
  return res.json().deliveries as {
    id: string;
    channel: string;
    recipient: string;
    eventType: string;
    status: string;
    attempts: number;
    nextAttemptAt: string | null;
    lastStatus: string | null;
    lastError: string | null;
    deliveredAt: string | null;
  }[];
}

beforeAll(async () => {
  clock = controlledClock('2026-01-10T10:00:00.000Z');
  t = await createClockedVault(clock);
  smtp = await startSmtpSink();
  hooks = await startWebhookReceiver(() => Math.floor(clock.now().getTime() / 1000));
}, 60_000);

afterAll(async () => {
  await t?.close();
  await smtp?.close();
  await hooks?.close();
});

describe('notification settings', () => {
  it('refuses a test mail before SMTP is configured, with a clear status', async () => {
    const res = await api('POST', '/api/notifications/settings/test-mail', { to: ['ops@example.test'] });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ delivered: false, status: 'MAIL_NOT_CONFIGURED' });
  });

  it('stores SMTP settings with a sealed password that is never returned', async () => {
    const res = await api('PUT', '/api/notifications/settings', {
      smtp: {
        host: '127.0.0.1',
        port: smtp.port,
        tls: 'none',
        username: 'vault-mailer',
        password: 'smtp-pass-Secret-42',
        from: 'vault@example.test',
      },
      securityAddresses: ['security@example.test', 'soc@example.test'],
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.body).not.toContain('smtp-pass-Secret-42');
    expect(res.json().smtp).toMatchObject({ host: '127.0.0.1', passwordSet: true, username: 'vault-mailer' });
    const row = await t.vault.db.selectFrom('notification_settings').selectAll().executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain('smtp-pass-Secret-42');
    expect(row.smtp_password_kek_id).not.toBeNull();

    // Saving again without a password keeps the stored one.
    const again = await api('PUT', '/api/notifications/settings', {
      smtp: {
        host: '127.0.0.1',
        port: smtp.port,
        tls: 'none',
        username: 'vault-mailer',
        from: 'vault@example.test',
      },
      securityAddresses: ['security@example.test', 'soc@example.test'],
    });
    expect(again.json().smtp.passwordSet).toBe(true);
    const get = await api('GET', '/api/notifications/settings');
    expect(get.json().securityAddresses).toEqual(['security@example.test', 'soc@example.test']);
    expect(get.body).not.toContain('smtp-pass-Secret-42');
  });

  it('rejects bad input: unknown fields, a bad address, a webhook URL with credentials', async () => {
    expect(
      (await api('PUT', '/api/notifications/settings', { smtp: null, securityAddresses: ['nope'] }))
        .statusCode,
    ).toBe(400);
    expect(
      (await api('PUT', '/api/notifications/settings', { smtp: null, securityAddresses: [], extra: 1 }))
        .statusCode,
    ).toBe(400);
    const hook = await api('POST', '/api/notifications/webhooks', {
      name: 'x',
      url: 'https://user:pw@example.test/hook',
      eventTypes: ['*'],
    });
    expect(hook.statusCode).toBe(400);
    expect(
      (
        await api('POST', '/api/notifications/webhooks', {
          name: 'x',
          url: 'ftp://example.test',
          eventTypes: ['*'],
        })
      ).statusCode,
    ).toBe(400);
  });

  it('sends a test mail through the real SMTP server, logging in with the sealed password', async () => {
    const before = smtp.mails.length;
    const res = await api('POST', '/api/notifications/settings/test-mail', {});
    expect(res.json()).toEqual({ delivered: true, status: 'sent', error: null });
    await waitFor(() => smtp.mails.length > before, 'test mail');
    const mail = smtp.mails.at(-1)!;
    expect(mail.to.sort()).toEqual(['security@example.test', 'soc@example.test']);
    expect(mail.subject).toBe('[bdevault] Test message');
    expect(smtp.logins.at(-1)).toEqual({ username: 'vault-mailer', password: 'smtp-pass-Secret-42' });
  });
});

describe('webhooks', () => {
  let secret = '';
  let webhookId = '';

  it('creates a webhook and answers its secret once', async () => {
    const res = await api('POST', '/api/notifications/webhooks', {
      name: 'SIEM',
      url: hooks.url('/siem'),
      eventTypes: ['recovery-key.disclosed', 'alert.*'],
    });
    expect(res.statusCode, res.body).toBe(201);
    secret = res.json().secret;
    webhookId = res.json().id;
    expect(secret).toMatch(/^whsec_/);
    hooks.route('/siem', secret);
    const list = await api('GET', '/api/notifications/webhooks');
    expect(list.body).not.toContain(secret);
    expect(list.json().webhooks).toEqual([
      expect.objectContaining({
        id: webhookId,
        enabled: true,
        eventTypes: ['recovery-key.disclosed', 'alert.*'],
      }),
    ]);
  });

  it('test-sends a signed event and reports the receiver answer', async () => {
    const res = await api('POST', `/api/notifications/webhooks/${webhookId}/test`);
    expect(res.json()).toEqual({ delivered: true, status: '200', error: null });
    const hook = hooks.received.at(-1)!;
    expect(hook.signatureValid).toBe(true);
    expect(JSON.parse(hook.body)).toMatchObject({ type: 'notification.test', data: { webhookId } });

    hooks.route('/down', 'whatever', [503]);
    const down = await api('POST', '/api/notifications/webhooks', {
      name: 'down',
      url: hooks.url('/down'),
      eventTypes: ['*'],
      enabled: false,
    });
    const failed = await api('POST', `/api/notifications/webhooks/${down.json().id}/test`);
    expect(failed.json()).toEqual({ delivered: false, status: '503', error: 'HTTP 503' });
    expect(hooks.received.at(-1)!.signatureValid).toBe(false);
    expect((await api('DELETE', `/api/notifications/webhooks/${down.json().id}`)).statusCode).toBe(204);
    expect((await api('POST', `/api/notifications/webhooks/${down.json().id}/test`)).statusCode).toBe(404);
  });

  it('a signature made with another secret, another body or an old timestamp does not verify', () => {
    const body = '{"a":1}';
    const now = 1_800_000_000;
    const header = `t=${now},v1=` + 'a'.repeat(64);
    expect(verifyWebhookSignature(secret, body, header, now)).toBe(false);
    const good = hooks.received.find((h) => h.signatureValid)!;
    const sig = good.headers['x-bdevault-signature'] as string;
    const t0 = Number(/t=(\d+)/.exec(sig)![1]);
    expect(verifyWebhookSignature(secret, good.body, sig, t0)).toBe(true);
    expect(verifyWebhookSignature(`${secret}x`, good.body, sig, t0)).toBe(false);
    expect(verifyWebhookSignature(secret, `${good.body} `, sig, t0)).toBe(false);
    expect(verifyWebhookSignature(secret, good.body, sig, t0 + 301)).toBe(false);
  });

  it('signs HMAC-SHA256 over the timestamp, a dot and the raw body, as documented (recomputed with node:crypto)', () => {
    const good = hooks.received.find((h) => h.path === '/siem' && h.signatureValid)!;
    const header = good.headers['x-bdevault-signature'] as string;
    const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
    expect(match, header).not.toBeNull();
    const [, t, v1] = match!;
    // Sent at the vault's (controlled) time, in whole seconds.
    expect(Number(t)).toBe(Math.floor(clock.now().getTime() / 1000));
    expect(v1).toBe(createHmac('sha256', secret).update(`${t}.${good.body}`, 'utf8').digest('hex'));
    expect(good.signatureRecomputed).toBe(true);

    // And the product's verifier accepts a signature made without the product's code.
    const body = JSON.stringify({ id: 'nd_1', type: 'x.y', data: { deviceName: 'PC-Zoë' } });
    const at = 1_800_000_000;
    const ours = createHmac('sha256', secret).update(`${at}.${body}`, 'utf8').digest('hex');
    expect(verifyWebhookSignature(secret, body, `t=${at},v1=${ours}`, at)).toBe(true);
    expect(recomputeSignature(secret, body, `t=${at},v1=${ours}`, at)).toBe(true);
  });

  it('refuses the same signature with a changed timestamp or a changed body', () => {
    const good = hooks.received.find((h) => h.path === '/siem' && h.signatureValid)!;
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(good.headers['x-bdevault-signature'] as string)!;
    const t0 = Number(t);
    expect(verifyWebhookSignature(secret, good.body, `t=${t},v1=${v1}`, t0)).toBe(true);
    // Another second, checked at that second: only the signed content makes it fail, not the clock.
    for (const other of [t0 + 1, t0 - 1, t0 + 60]) {
      expect(verifyWebhookSignature(secret, good.body, `t=${other},v1=${v1}`, other), `t=${other}`).toBe(
        false,
      );
      expect(recomputeSignature(secret, good.body, `t=${other},v1=${v1}`, other)).toBe(false);
    }
    // The same second written another way is another signed text.
    for (const text of [`0${t}`, `+${t}`, `${t}.0`, `${t}.`, `${t}e0`]) {
      expect(verifyWebhookSignature(secret, good.body, `t=${text},v1=${v1}`, t0), `t=${text}`).toBe(false);
    }
    const bodies = [
      good.body.replace('"notification.test"', '"notification.tesT"'),
      `${good.body} `,
      ` ${good.body}`,
      // The same JSON value, other bytes: the MAC is over the raw body, not its meaning.
      JSON.stringify(JSON.parse(good.body), null, 1),
      '',
    ];
    for (const body of bodies) {
      expect(body).not.toBe(good.body);
      expect(verifyWebhookSignature(secret, body, `t=${t},v1=${v1}`, t0), body).toBe(false);
      expect(recomputeSignature(secret, body, `t=${t},v1=${v1}`, t0)).toBe(false);
    }
  });
});

describe('disclosure notifications', () => {
  let owner = '';
  let device: Awaited<ReturnType<typeof deviceWithKey>>;
  let flakyId = '';

  beforeAll(async () => {
    owner = await createPerson(t, t.organizationId, 'owner-ann');
    await t.vault.db
      .updateTable('users')
      .set({ email: 'ann@example.test' })
      .where('id', '=', owner)
      .execute();
    device = await deviceWithKey(t, t.adminToken);
    const set = await api('PUT', `/api/devices/${device.deviceId}/owner`, { ownerUserId: owner });
    expect(set.statusCode, set.body).toBe(204);
  });

  it('mails the owner and the security addresses and posts a signed webhook, with no password anywhere', async () => {
    const mailsBefore = smtp.mails.length;
    const hooksBefore = hooks.received.length;
    const result = await disclose(device.keyRecordId);
    await waitFor(() => smtp.mails.length >= mailsBefore + 3, 'three disclosure mails');
    const mails = smtp.mails.slice(mailsBefore);
    expect(mails.map((m) => m.to[0]).sort()).toEqual([
      'ann@example.test',
      'security@example.test',
      'soc@example.test',
    ]);
    for (const mail of mails) {
      expect(mail.subject).toBe(`[bdevault] Recovery key disclosed for ${device.name}`);
      expect(mail.text).toContain(result.recoveryKeyId);
      expect(mail.text).toContain(device.deviceId);
      expect(mail.text).toContain(result.auditEntryId);
      expect(mail.text).toContain('test admin');
      // Decoded and raw: quoted-printable may fold a long line in the raw message.
      for (const part of [mail.subject, mail.text, mail.raw]) {
        expect(part).not.toMatch(PASSWORD_PATTERN);
        for (const p of disclosed) expect(part).not.toContain(p);
      }
    }

    const hook = hooks.received.slice(hooksBefore).find((h) => h.path === '/siem')!;
    expect(hook.signatureValid).toBe(true);
    expect(hook.signatureRecomputed).toBe(true);
    expect(hook.headers['x-bdevault-event']).toBe('recovery-key.disclosed');
    const body = JSON.parse(hook.body);
    expect(body).toMatchObject({
      type: 'recovery-key.disclosed',
      organizationId: t.organizationId,
      data: {
        keyId: result.recoveryKeyId,
        recoveryKeyRecordId: result.id,
        deviceId: device.deviceId,
        deviceName: device.name,
        channel: 'api',
        auditEntryId: result.auditEntryId,
        actor: { type: 'api-token', name: 'test admin' },
      },
    });
    expect(hook.body).not.toMatch(PASSWORD_PATTERN);
    for (const p of disclosed) expect(hook.body).not.toContain(p);

    const log = await deliveries('?eventType=recovery-key.disclosed');
    expect(log).toHaveLength(4);
    expect(log.every((d) => d.status === 'delivered' && d.attempts === 1 && d.deliveredAt !== null)).toBe(
      true,
    );
  });

  it('retries a failing webhook with backoff on the controlled clock, and the log shows the attempts', async () => {
    const created = await api('POST', '/api/notifications/webhooks', {
      name: 'flaky',
      url: hooks.url('/flaky'),
      eventTypes: ['recovery-key.*'],
    });
    flakyId = created.json().id;
    hooks.route('/flaky', created.json().secret, [500, 502, 200]);
    const second = await deviceWithKey(t, t.adminToken);
    await disclose(second.keyRecordId);
    const flaky = () =>
      deliveries('?channel=webhook').then((l) => l.find((d) => d.recipient === created.json().id)!);

    let row = await flaky();
    expect(row).toMatchObject({ status: 'pending', attempts: 1, lastStatus: '500', lastError: 'HTTP 500' });
    expect(row.nextAttemptAt).toBe(new Date(clock.now().getTime() + 30_000).toISOString());

    // Not yet due: nothing is sent.
    clock.advance(29_000);
    expect(await t.vault.deps.notifications.runDue()).toBe(0);
    clock.advance(1_000);
    expect(await t.vault.deps.notifications.runDue()).toBe(1);
    row = await flaky();
    expect(row).toMatchObject({ status: 'pending', attempts: 2, lastStatus: '502' });
    // The wait doubles.
    expect(row.nextAttemptAt).toBe(new Date(clock.now().getTime() + 60_000).toISOString());
    clock.advance(60_000);
    expect(await t.vault.deps.notifications.runDue()).toBe(1);
    row = await flaky();
    expect(row).toMatchObject({
      status: 'delivered',
      attempts: 3,
      lastStatus: '200',
      lastError: null,
      nextAttemptAt: null,
    });
    const calls = hooks.received.filter((h) => h.path === '/flaky');
    expect(calls.map((c) => c.status)).toEqual([500, 502, 200]);
    expect(calls.every((c) => c.signatureValid && c.signatureRecomputed)).toBe(true);
    // Every retry carries the same delivery id, so the receiver can drop duplicates.
    expect(new Set(calls.map((c) => c.headers['x-bdevault-delivery'])).size).toBe(1);
  });

  it('a row leased by another instance is not sent twice; an expired lease is taken over', async () => {
    const third = await deviceWithKey(t, t.adminToken);
    // A rotated secret signs from now on (the receiver learns the new one).
    const rotated = await api('PATCH', `/api/notifications/webhooks/${flakyId}`, { rotateSecret: true });
    expect(rotated.statusCode, rotated.body).toBe(200);
    hooks.route('/flaky', rotated.json().secret, [500, 200]);
    await disclose(third.keyRecordId);
    const pending = (await deliveries('?status=pending'))[0]!;
    expect(pending).toBeDefined();
    // Another instance holds the lease for two minutes.
    clock.advance(30_000);
    const leaseUntil = new Date(clock.now().getTime() + 120_000).toISOString();
    await t.vault.db
      .updateTable('notification_deliveries')
      .set({ lease_holder: 'notify_other', lease_expires_at: leaseUntil })
      .where('id', '=', pending.id)
      .execute();
    expect(await t.vault.deps.notifications.runDue()).toBe(0);
    clock.advance(120_000);
    expect(await t.vault.deps.notifications.runDue()).toBe(1);
    expect((await deliveries()).find((d) => d.id === pending.id)).toMatchObject({
      status: 'delivered',
      attempts: 2,
    });
  });

  it('an alert (disclosure threshold) is mailed to the security addresses and posted', async () => {
    const patched = await api('PATCH', '/api/organization/settings', {
      disclosureAlertThreshold: 1,
      disclosureAlertWindowMinutes: 10_080,
    });
    expect(patched.statusCode, patched.body).toBe(200);
    const mailsBefore = smtp.mails.length;
    const hooksBefore = hooks.received.length;
    // A fresh account: the alert fires once, on the disclosure that goes one past the threshold.
    const token = await api('POST', '/api/api-tokens', {
      name: 'bulk script',
      permissions: ['keys:disclose', 'devices:read'],
    });
    expect(token.statusCode, token.body).toBe(201);
    for (let i = 0; i < 2; i++) {
      const target = await deviceWithKey(t, t.adminToken);
      const res = await t.app.inject({
        method: 'POST',
        url: `/api/recovery-keys/${target.keyRecordId}/disclose`,
        headers: bearer(token.json().token),
        payload: { reason: 'bulk' },
      });
      expect(res.statusCode, res.body).toBe(200);
    }
    await t.vault.deps.notifications.idle();
    await waitFor(
      () => smtp.mails.slice(mailsBefore).some((m) => m.subject.includes('Security alert')),
      'alert mail',
    );
    const alerts = smtp.mails.slice(mailsBefore).filter((m) => m.subject.includes('Security alert'));
    expect(alerts.map((m) => m.to[0]).sort()).toEqual(['security@example.test', 'soc@example.test']);
    expect(alerts).toHaveLength(2);
    expect(alerts[0]!.text).toContain('threshold: 1');
    expect(alerts[0]!.text).toContain('name: bulk script');
    const hook = hooks.received
      .slice(hooksBefore)
      .find((h) => h.headers['x-bdevault-event'] === 'alert.disclosure_threshold');
    expect(hook?.signatureValid).toBe(true);
  });

  it('an event type the sink does not know is delivered generically to subscribed webhooks, secrets dropped', async () => {
    const created = await api('POST', '/api/notifications/webhooks', {
      name: 'all',
      url: hooks.url('/all'),
      eventTypes: ['*'],
    });
    hooks.route('/all', created.json().secret);
    const future = {
      type: 'case.closed',
      organizationId: t.organizationId,
      caseId: 'rc_123',
      deviceId: device.deviceId,
      oneTimeCode: '123456',
      smtpPassword: 'nope',
      note: `read back ${disclosed[0]}`,
      auditEntryId: 'aud_future',
      occurredAt: clock.now().toISOString(),
    };
    await t.vault.deps.events.emit(future as never);
    await t.vault.deps.notifications.idle();
    const hook = hooks.received.filter((h) => h.path === '/all').at(-1)!;
    const body = JSON.parse(hook.body);
    expect(body).toMatchObject({ type: 'case.closed', data: { caseId: 'rc_123', deviceName: device.name } });
    expect(body.data.oneTimeCode).toBeUndefined();
    expect(body.data.smtpPassword).toBeUndefined();
    expect(body.data.note).toBe('read back [redacted]');
    expect(hook.signatureValid).toBe(true);
  });

  it('the delivery log and settings are for administrators only', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/notifications/deliveries' });
    expect(res.statusCode).toBe(401);
  });

  it("the receiver's own check and the product's verifier agreed on every request received", () => {
    const routed = hooks.received.filter((h) => h.path !== '/down');
    expect(routed.length).toBeGreaterThan(5);
    expect(routed.filter((h) => !h.signatureRecomputed).map((h) => h.path)).toEqual([]);
    expect(hooks.received.every((h) => h.signatureValid === h.signatureRecomputed)).toBe(true);
  });
});
