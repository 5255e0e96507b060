// Helpdesk recovery cases over HTTP: the full checklist with an e-mailed code from a real SMTP sink, and the refusals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app-types.js';
import { bearer, createTestVault, escrowPayload, newKey, type TestVault } from '../helpers.js';
import {
  startSmtpSink as startNotificationSink,
  startWebhookReceiver,
  waitFor,
} from '../notifications/support.js';
import { auditRows, movableClock, personWithPassword, setOwner, signIn } from '../access/people.js';
import {
  assignRole,
  createPerson,
  deviceWithKey,
  groupId,
  nextAddress,
  personalToken,
  type RoleKey,
} from '../access/support.js';
import {
  caseApi,
  codeIn,
  FORGOT_PIN,
  locatedCase,
  nodemailerSender,
  setEmail,
  startSmtpSink,
  type SmtpSink,
} from './support.js';

let t: TestVault;
let sink: SmtpSink;
/** Where the vault's notification outbox mails (disclosures): apart from the one-time codes. */
let notified: Awaited<ReturnType<typeof startNotificationSink>>;
let hooks: Awaited<ReturnType<typeof startWebhookReceiver>>;
let app: App;
let operator: { userId: string; token: string };
let colleague: { userId: string; token: string };
let supervisor: { userId: string; token: string };
let reader: { userId: string; token: string };
let groupHelpdesk: { userId: string; token: string };
let requester: string;
let requesterEmail: string;
let device: Awaited<ReturnType<typeof deviceWithKey>>;
let otherDevice: Awaited<ReturnType<typeof deviceWithKey>>;
let outDevice: Awaited<ReturnType<typeof deviceWithKey>>;

async function person(role: RoleKey, deviceGroupIds?: string[]) {
  const userId = await createPerson(t, t.organizationId);
  await assignRole(t, t.organizationId, userId, role, deviceGroupIds);
  return { userId, token: (await personalToken(t, t.organizationId, userId)).token };
}

beforeAll(async () => {
  t = await createTestVault();
  sink = await startSmtpSink();
  // Only the one-time-code mail is replaced: domain events still reach the vault's notification outbox.
  app = await t.appWith({ mail: nodemailerSender(sink.port) });
  hooks = await startWebhookReceiver(() => Math.floor(Date.now() / 1000));
  const hook = await app.inject({
    method: 'POST',
    url: '/api/notifications/webhooks',
    headers: bearer(t.adminToken),
    payload: { name: 'SIEM', url: hooks.url('/siem'), eventTypes: ['recovery-key.disclosed'] },
  });
  if (hook.statusCode !== 201) throw new Error(`webhook not created: ${hook.body}`);
  hooks.route('/siem', hook.json().secret as string);
  notified = await startNotificationSink();
  const inGroup = await groupId(t, t.adminToken, 'Helpdesk In');
  await groupId(t, t.adminToken, 'Helpdesk Out');
  operator = await person('helpdesk');
  colleague = await person('helpdesk');
  supervisor = await person('organization-administrator');
  reader = await person('security-reader');
  groupHelpdesk = await person('helpdesk', [inGroup]);
  requester = await createPerson(t, t.organizationId);
  requesterEmail = `${requester}@example.test`;
  await setEmail(t, requester, requesterEmail);
  device = await deviceWithKey(t, t.adminToken, 'Helpdesk In');
  otherDevice = await deviceWithKey(t, t.adminToken, 'Helpdesk In');
  outDevice = await deviceWithKey(t, t.adminToken, 'Helpdesk Out');
  for (const d of [device, otherDevice, outDevice]) await setOwner(t, t.adminToken, d.deviceId, requester);
}, 120_000);

afterAll(async () => {
  await t?.vault.deps.notifications.idle();
  await t?.close();
  await sink?.close();
  await notified?.close();
  await hooks?.close();
});

describe('a full helpdesk case', () => {
  const api = () => caseApi(app, operator.token);
  let caseId: string;
  let disclosedPassword: string;
  let disclosureAuditId: string;

  // The organization's notification mail goes to its own sink while this case runs; later tests
  // need an organization without a mail server.
  const notificationSettings = (smtp: object | null, securityAddresses: string[]) =>
    app.inject({
      method: 'PUT',
      url: '/api/notifications/settings',
      headers: bearer(t.adminToken),
      payload: { smtp, securityAddresses },
    });
  beforeAll(async () => {
    const res = await notificationSettings(
      { host: '127.0.0.1', port: notified.port, tls: 'none', from: 'vault@example.test' },
      ['security@example.test'],
    );
    expect(res.statusCode, res.body).toBe(200);
  });
  afterAll(async () => {
    await t.vault.deps.notifications.idle();
    expect((await notificationSettings(null, [])).statusCode).toBe(200);
  });

  it('opens a case for the locked-out user', async () => {
    const res = await api().create(requester);
    expect(res.statusCode, res.body).toBe(201);
    caseId = res.json().id;
    expect(res.json()).toMatchObject({
      status: 'open',
      nextStep: 'identity',
      requester: { id: requester },
      operator: { type: 'user', id: operator.userId },
    });
  });

  it('verifies identity with a code e-mailed to the user and read back; a wrong code is refused first', async () => {
    const sent = await api().post(caseId, 'identity', { method: 'email-code' });
    expect(sent.statusCode, sent.body).toBe(200);
    expect(sent.json().sentTo).toBe(`${requesterEmail[0]}***@example.test`);
    const mail = await sink.next(requesterEmail);
    const code = codeIn(mail);
    expect(mail.text).toContain(caseId);
    // The code never comes back through the API, and is stored only hashed.
    expect(sent.body).not.toContain(code);
    const stored = await t.vault.db
      .selectFrom('recovery_case_codes')
      .selectAll()
      .where('case_id', '=', caseId)
      .execute();
    expect(stored).toHaveLength(1);
    expect(stored[0]!.code_hash).not.toContain(code);

    const wrong = await api().post(caseId, 'identity/code', {
      code: code === '000000' ? '111111' : '000000',
    });
    expect(wrong.statusCode, wrong.body).toBe(422);
    expect(wrong.json().error).toMatchObject({
      code: 'VERIFICATION_CODE_INVALID',
      details: { reason: 'wrong', attemptsLeft: 4 },
    });
    const refused = await auditRows(t, 'case.identity-code-refused', caseId);
    expect(refused.map((r) => [r.outcome, r.details.reason])).toEqual([['success', 'wrong']]);

    const ok = await api().post(caseId, 'identity/code', { code: `${code.slice(0, 3)} ${code.slice(3)}` });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().identity).toMatchObject({ method: 'email-code', verified: true });
    expect(ok.json().nextStep).toBe('device');

    // Replaying the same code is refused: the identity step is done and the code used.
    const replay = await api().post(caseId, 'identity/code', { code });
    expect(replay.statusCode).toBe(409);
    expect(replay.json().error.code).toBe('CASE_STATE_CONFLICT');
  });

  it('records the device, and says whether it belongs to the verified user', async () => {
    const res = await api().post(caseId, 'device', { deviceName: device.name.toLowerCase() });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().device).toEqual({ id: device.deviceId, name: device.name });
    expect(res.json().identity.ownerMatch).toBe('match');
    expect(res.json().nextStep).toBe('key-id');
  });

  it("reports a key id that belongs to another device (the drive may have moved), then matches this device's key", async () => {
    const moved = await api().post(caseId, 'key-id', { keyId: otherDevice.keyId });
    expect(moved.statusCode, moved.body).toBe(200);
    expect(moved.json()).toMatchObject({
      match: 'other-device',
      otherDevice: { id: otherDevice.deviceId, name: otherDevice.name },
    });
    expect(moved.json().message).toMatch(/may have moved/);
    expect(moved.json().case.nextStep).toBe('key-id');

    const res = await api().post(caseId, 'key-id', { keyId: device.keyId.slice(0, 8).toLowerCase() });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().match).toBe('this-device');
    expect(res.json().otherDevice).toBeNull();
    expect(res.json().case.key).toMatchObject({
      match: 'this-device',
      recoveryKeyRecordId: device.keyRecordId,
    });
  });

  it('locates the key (metadata only) and will not disclose before the root-cause questions', async () => {
    const res = await api().post(caseId, 'locate');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().recoveryKey).toMatchObject({ id: device.keyRecordId, recoveryKeyId: device.keyId });
    expect(res.body).not.toContain(device.password);
    const early = await api().post(caseId, 'disclose', { reasonCode: 'lost-pin' });
    expect(early.statusCode).toBe(409);
    expect(early.json().error.code).toBe('CASE_STATE_CONFLICT');
    expect(early.json().case).toBeUndefined();
  });

  it('records the seven root-cause answers and returns the resolution steps of their class', async () => {
    const res = await api().post(caseId, 'root-cause', { answers: FORGOT_PIN });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().resolution.class).toBe('unknown-pin');
    expect(res.json().resolution.steps[0]).toMatch(/Unlock/);
    expect(res.json().resolution.steps[1]).toMatch(/reset the PIN/);
    expect(res.json().case.nextStep).toBe('disclose');
  });

  it('provides the password through the disclosure service: 8 groups, read aloud, audited, rotation requested', async () => {
    const res = await api().post(caseId, 'disclose', {
      reasonCode: 'lost-pin',
      reason: 'forgot the PIN after holiday',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json();
    disclosedPassword = body.recoveryPassword;
    disclosureAuditId = body.auditEntryId;
    expect(disclosedPassword).toBe(device.password);
    expect(body.groups).toEqual(device.password.split('-'));
    expect(body.readAloud).toHaveLength(8);
    const digits = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
    expect(body.readAloud[0]).toBe([...body.groups[0]].map((d: string) => digits[Number(d)]).join(' '));

    const [audit] = await auditRows(t, 'recovery-key.disclosed', device.keyRecordId);
    expect(audit).toMatchObject({
      id: body.auditEntryId,
      actor_type: 'api-token',
      outcome: 'success',
      reason: 'Lost PIN: forgot the PIN after holiday',
    });
    expect(audit!.details).toMatchObject({ channel: 'helpdesk', caseId, reasonCode: 'lost-pin' });
    const caseAudit = await auditRows(t, 'case.disclosed', caseId);
    expect(caseAudit).toHaveLength(1);
    expect(JSON.stringify(caseAudit)).not.toContain(device.password);

    expect(body.case.status).toBe('awaiting-rotation');
    expect(body.case.rotation).toMatchObject({ state: 'pending' });
    expect(body.case.rotation.requestId).toMatch(/^\w+_/);
    expect(body.case.disclosure).toMatchObject({ reasonCode: 'lost-pin', auditEntryId: body.auditEntryId });
    // The rotation request is the one the disclosure opened for this key.
    expect(audit!.details.rotationRequestId).toBe(body.case.rotation.requestId);
  });

  it('checks a read-back group by group without revealing the right digits', async () => {
    const groups = disclosedPassword.split('-');
    const typed = [...groups];
    // Group 2: a typo the checksum catches. Group 5: a valid group, but not this password's.
    typed[1] = String((Number(groups[1]) + 1) % 1_000_000).padStart(6, '0');
    typed[4] = String((Number(groups[4]) + 11) % 720_896).padStart(6, '0');
    const res = await api().post(caseId, 'read-back', { typed: typed.join(' ') });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().ok).toBe(false);
    expect(res.json().groups.map((g: { verdict: string }) => g.verdict)).toEqual([
      'ok',
      'checksum',
      'ok',
      'ok',
      'mismatch',
      'ok',
      'ok',
      'ok',
    ]);
    expect(res.body).not.toContain(groups[1]);
    expect(res.body).not.toContain(groups[4]);

    const short = await api().post(caseId, 'read-back', { typed: groups.slice(0, 6).join('-') });
    expect(
      short
        .json()
        .groups.slice(6)
        .map((g: { verdict: string }) => g.verdict),
    ).toEqual(['missing', 'missing']);

    const right = await api().post(caseId, 'read-back', { typed: groups.join('') });
    expect(right.json()).toMatchObject({ ok: true, extraGroups: false });
    const audits = await auditRows(t, 'case.read-back-checked', caseId);
    expect(audits.map((a) => a.details.wrongGroups)).toEqual(['2,5', '7,8', '']);
  });

  it('shows every step with who and when, in order', async () => {
    const res = await api().get(caseId);
    expect(res.statusCode, res.body).toBe(200);
    const steps = res.json().steps as {
      step: string;
      action: string;
      actor: { id: string };
      occurredAt: string;
    }[];
    expect(steps.map((s) => s.action)).toEqual([
      'created',
      'identity-code-sent',
      'identity-code-refused',
      'identity-code-verified',
      'device-recorded',
      'key-id-recorded',
      'key-id-recorded',
      'key-located',
      'root-cause-recorded',
      'disclosed',
      'rotation-requested',
      'read-back-checked',
      'read-back-checked',
      'read-back-checked',
    ]);
    expect(new Set(steps.map((s) => s.actor.id)).size).toBe(1);
    expect(steps.every((s) => s.occurredAt.length > 0)).toBe(true);
    expect(res.body).not.toContain(disclosedPassword);
    const list = await api().send({ url: `/api/recovery-cases?deviceId=${device.deviceId}` });
    expect(list.json().recoveryCases.map((c: { id: string; status: string }) => [c.id, c.status])).toEqual([
      [caseId, 'awaiting-rotation'],
    ]);
  });

  it('closes once the device has rotated the disclosed password through the escrow API', async () => {
    const checkIn = await app.inject({
      method: 'POST',
      url: '/api/escrow/check-in',
      headers: bearer(device.credential),
      payload: { agentVersion: '1.0.0' },
    });
    expect(checkIn.statusCode, checkIn.body).toBe(200);
    const action = (checkIn.json().actions as { rotationId: string; volumeGuid: string }[])[0]!;
    const caseView = (await api().get(caseId)).json();
    expect(action.rotationId).toBe(caseView.rotation.requestId);
    const replacement = newKey();
    const escrow = await app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(action.volumeGuid, [replacement]),
    });
    expect(escrow.statusCode, escrow.body).toBe(200);
    const done = await app.inject({
      method: 'POST',
      url: `/api/escrow/rotations/${action.rotationId}/result`,
      headers: bearer(device.credential),
      payload: { outcome: 'completed', newRecoveryKeyId: replacement.keyId, oldProtectorRemoved: true },
    });
    expect(done.statusCode, done.body).toBe(200);

    const res = await api().get(caseId);
    expect(res.json()).toMatchObject({ status: 'closed', nextStep: null, rotation: { state: 'completed' } });
    expect(res.json().steps.at(-1)).toMatchObject({
      step: 'rotate',
      action: 'closed',
      actor: { type: 'system' },
    });
    const key = await t.vault.db
      .selectFrom('recovery_keys')
      .select('status')
      .where('id', '=', device.keyRecordId)
      .executeTakeFirst();
    expect(key?.status).toBe('superseded');
    expect(await auditRows(t, 'case.closed', caseId)).toHaveLength(1);
  });
  it('delivered a signed recovery-key.disclosed webhook that carries identifiers, never the password', async () => {
    // The outbox sends after commit in the background; wait for that run (and any retry due).
    await t.vault.deps.notifications.idle();
    await t.vault.deps.notifications.runDue();
    const delivered = hooks.received.filter((h) => h.path === '/siem');
    expect(delivered).toHaveLength(1);
    const [hook] = delivered;
    expect(hook!.signatureValid).toBe(true);
    expect(hook!.signatureRecomputed).toBe(true);
    expect(hook!.headers['x-bdevault-event']).toBe('recovery-key.disclosed');
    expect(JSON.parse(hook!.body)).toMatchObject({
      type: 'recovery-key.disclosed',
      organizationId: t.organizationId,
      data: {
        keyId: device.keyId,
        recoveryKeyRecordId: device.keyRecordId,
        deviceId: device.deviceId,
        channel: 'helpdesk',
      },
    });
    expect(hook!.body).not.toContain(disclosedPassword);
    expect(hook!.body).not.toMatch(/\d{6}(-\d{6}){7}/);
  });

  it('mailed the disclosure to the device owner and the security address: identifiers, never the password', async () => {
    await t.vault.deps.notifications.idle();
    await waitFor(() => notified.mails.length >= 2, 'two disclosure mails');
    // The case disclosed once: one mail each, nothing else (rotation events are for webhooks).
    expect(notified.mails.map((m) => m.to.join(' ')).sort()).toEqual(
      [requesterEmail, 'security@example.test'].sort(),
    );
    for (const mail of notified.mails) {
      expect(mail.subject).toBe(`[bdevault] Recovery key disclosed for ${device.name}`);
      expect(mail.text).toContain('event: recovery-key.disclosed');
      expect(mail.text).toContain(`keyId: ${device.keyId}`);
      expect(mail.text).toContain(`recoveryKeyRecordId: ${device.keyRecordId}`);
      expect(mail.text).toContain(`deviceId: ${device.deviceId}`);
      expect(mail.text).toContain('channel: helpdesk');
      expect(mail.text).toContain(`auditEntryId: ${disclosureAuditId}`);
      expect(mail.text).toContain(`organizationId: ${t.organizationId}`);
      // Not in the decoded subject and text, nor the raw message (headers, MIME parts); with or
      // without its dashes.
      for (const part of [mail.subject, mail.text, mail.raw]) {
        expect(part).not.toContain(disclosedPassword);
        expect(part).not.toContain(disclosedPassword.replaceAll('-', ''));
        expect(part).not.toMatch(/\d{6}([-\s]?\d{6}){7}/);
      }
    }
  });
});

describe('refusals', () => {
  it('refuses disclosure without a verified identity', async () => {
    const api = caseApi(app, operator.token);
    const created = await api.create(requester);
    const res = await api.post(created.json().id, 'disclose', { reasonCode: 'lost-pin' });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('IDENTITY_NOT_VERIFIED');
    // And the steps after identity wait for it.
    const early = await api.post(created.json().id, 'device', { deviceName: device.name });
    expect(early.statusCode).toBe(409);
  });

  it('answers 404 outside the helpdesk scope: devices, cases and their disclosure', async () => {
    const scoped = caseApi(app, groupHelpdesk.token);
    const created = await scoped.create(requester);
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json().id;
    await scoped.post(id, 'identity', {
      method: 'attested',
      attestation: 'in-person',
      note: 'Badge checked at the desk',
    });
    const out = await scoped.post(id, 'device', { deviceName: outDevice.name });
    expect(out.statusCode).toBe(404);
    expect(out.json().error.code).toBe('DEVICE_NOT_FOUND');

    // A case on a device outside the scope (worked by an organization-wide helpdesk) is invisible.
    const wide = caseApi(app, operator.token);
    const outCase = await locatedCase(wide, requester, outDevice);
    for (const res of [
      await scoped.get(outCase),
      await scoped.post(outCase, 'disclose', { reasonCode: 'lost-pin' }),
      await scoped.post(outCase, 'read-back', { typed: '000000' }),
    ]) {
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('CASE_NOT_FOUND');
    }
    const listed = await scoped.send({ url: '/api/recovery-cases?status=all' });
    expect(listed.json().recoveryCases.map((c: { id: string }) => c.id)).not.toContain(outCase);
    expect(listed.json().recoveryCases.map((c: { id: string }) => c.id)).toContain(id);
    // The in-scope device of the same helpdesk works, and a key id of an out-of-scope device is not named.
    expect((await scoped.post(id, 'device', { deviceName: device.name })).statusCode).toBe(200);
    const moved = await scoped.post(id, 'key-id', { keyId: outDevice.keyId });
    expect(moved.json()).toMatchObject({ match: 'other-device', otherDevice: null });
    expect(moved.body).not.toContain(outDevice.deviceId);
    expect(moved.body).not.toContain(outDevice.name);
  });

  it('refuses a Security Reader, and a helpdesk on the direct disclosure route', async () => {
    const api = caseApi(app, reader.token);
    expect((await api.create(requester)).statusCode).toBe(403);
    const wide = caseApi(app, operator.token);
    const id = await locatedCase(wide, requester, device);
    const res = await api.post(id, 'disclose', { reasonCode: 'lost-pin' });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('FORBIDDEN');
    // Helpdesk has no keys:disclose: the case is its only way to a password.
    const direct = await app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${device.keyRecordId}/disclose`,
      headers: bearer(operator.token),
      payload: { reason: 'skip the case' },
    });
    expect(direct.statusCode).toBe(403);
  });

  it('needs a second person to approve when the policy says so; the operator cannot approve their own case', async () => {
    const admin = caseApi(app, t.adminToken);
    const policy = await admin.send({
      method: 'PUT',
      url: '/api/recovery-cases/policy',
      payload: { requireDisclosureApproval: true },
    });
    expect(policy.statusCode, policy.body).toBe(200);
    expect(policy.json().requireDisclosureApproval).toBe(true);
    try {
      const api = caseApi(app, operator.token);
      const id = await locatedCase(api, requester, device);
      expect((await api.get(id)).json()).toMatchObject({ status: 'awaiting-approval', nextStep: 'approval' });
      const unapproved = await api.post(id, 'disclose', { reasonCode: 'bios-changed' });
      expect(unapproved.statusCode).toBe(409);
      expect(unapproved.json().error.code).toBe('APPROVAL_REQUIRED');

      const own = await caseApi(app, operator.token).post(id, 'approve', { subject: 'disclosure' });
      // Helpdesk has no cases:approve at all; an administrator who worked the case may not approve it either.
      expect(own.statusCode).toBe(403);
      const selfApproving = caseApi(app, supervisor.token);
      const theirs = await locatedCase(selfApproving, requester, device);
      const refused = await selfApproving.post(theirs, 'approve', { subject: 'disclosure' });
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error.message).toMatch(/operator/);

      const approved = await caseApi(app, supervisor.token).post(id, 'approve', {
        subject: 'disclosure',
        note: 'ok',
      });
      expect(approved.statusCode, approved.body).toBe(200);
      expect(approved.json().approval).toMatchObject({ required: true, approved: true });
      const disclosed = await api.post(id, 'disclose', { reasonCode: 'bios-changed' });
      expect(disclosed.statusCode, disclosed.body).toBe(200);
      expect(disclosed.json().recoveryPassword).toBe(device.password);
    } finally {
      await admin.send({
        method: 'PUT',
        url: '/api/recovery-cases/policy',
        payload: { requireDisclosureApproval: false },
      });
    }
  });

  it('verifies identity by a second person, never the operator', async () => {
    const api = caseApi(app, operator.token);
    const id = (await api.create(requester)).json().id;
    const asked = await api.post(id, 'identity', { method: 'second-person', note: 'no e-mail access' });
    expect(asked.json()).toMatchObject({ status: 'awaiting-approval', nextStep: 'approval' });
    // The supervisor opened and worked nothing here; a colleague lacks cases:approve.
    expect(
      (await caseApi(app, colleague.token).post(id, 'approve', { subject: 'identity' })).statusCode,
    ).toBe(403);
    const ok = await caseApi(app, supervisor.token).post(id, 'approve', { subject: 'identity' });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().identity).toMatchObject({ method: 'second-person', verified: true });
    expect(ok.json().status).toBe('open');
  });

  it('warns on a device the verified user does not own and needs cases:override-owner to go on', async () => {
    const stranger = await createPerson(t, t.organizationId);
    const api = caseApi(app, operator.token);
    const id = await locatedCase(api, stranger, device);
    const view = (await api.get(id)).json();
    expect(view.identity.ownerMatch).toBe('mismatch');
    expect(view.warnings.join(' ')).toMatch(/does not belong/);
    const refused = await api.post(id, 'disclose', { reasonCode: 'other', reason: 'shared laptop' });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('OWNER_MISMATCH');
    expect((await api.post(id, 'owner-override', { note: 'shared laptop' })).statusCode).toBe(403);
    const overridden = await caseApi(app, supervisor.token).post(id, 'owner-override', {
      note: 'Team laptop, confirmed by manager',
    });
    expect(overridden.statusCode, overridden.body).toBe(200);
    expect(
      (await api.post(id, 'disclose', { reasonCode: 'other', reason: 'shared laptop' })).statusCode,
    ).toBe(200);
  });

  it('refuses expired codes, codes after too many attempts, and an earlier code once a new one was sent', async () => {
    const clock = movableClock('2030-01-01T09:00:00.000Z');
    const timed = await t.appWith({ mail: nodemailerSender(sink.port), clock });
    const api = caseApi(timed, operator.token);
    const expiring = (await api.create(requester)).json().id;
    await api.post(expiring, 'identity', { method: 'email-code' });
    const code = codeIn(await sink.next(requesterEmail));
    clock.advance(10 * 60 * 1000 + 1);
    const expired = await api.post(expiring, 'identity/code', { code });
    expect(expired.statusCode).toBe(422);
    expect(expired.json().error.details.reason).toBe('expired');

    const guessed = (await api.create(requester)).json().id;
    await api.post(guessed, 'identity', { method: 'email-code' });
    const right = codeIn(await sink.next(requesterEmail));
    const wrong = right === '123456' ? '654321' : '123456';
    const left: number[] = [];
    for (let i = 0; i < 5; i++)
      left.push(
        (await api.post(guessed, 'identity/code', { code: wrong })).json().error.details.attemptsLeft,
      );
    expect(left).toEqual([4, 3, 2, 1, 0]);
    const locked = await api.post(guessed, 'identity/code', { code: right });
    expect(locked.statusCode).toBe(422);
    expect(locked.json().error.details.reason).toBe('too-many-attempts');

    const resent = (await api.create(requester)).json().id;
    await api.post(resent, 'identity', { method: 'email-code' });
    const first = codeIn(await sink.next(requesterEmail));
    await api.post(resent, 'identity', { method: 'email-code' });
    const second = codeIn(await sink.next(requesterEmail));
    if (first !== second) {
      const old = await api.post(resent, 'identity/code', { code: first });
      expect(old.statusCode).toBe(422);
    }
    expect((await api.post(resent, 'identity/code', { code: second })).statusCode).toBe(200);
  });

  it('says so when no mail server is configured, and when the user has no e-mail address', async () => {
    const api = caseApi(t.app, operator.token);
    const id = (await api.create(requester)).json().id;
    const res = await api.post(id, 'identity', { method: 'email-code' });
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('MAIL_NOT_CONFIGURED');
    const codes = await t.vault.db
      .selectFrom('recovery_case_codes')
      .selectAll()
      .where('case_id', '=', id)
      .execute();
    expect(codes.every((c) => c.voided_at !== null)).toBe(true);

    const noMail = await createPerson(t, t.organizationId);
    const other = (await caseApi(app, operator.token).create(noMail)).json().id;
    const refused = await caseApi(app, operator.token).post(other, 'identity', { method: 'email-code' });
    expect(refused.statusCode).toBe(409);
    expect(refused.json().error.code).toBe('EMAIL_NOT_REGISTERED');
  });

  it('refuses identity methods the policy does not allow, and bad input', async () => {
    const admin = caseApi(app, t.adminToken);
    await admin.send({
      method: 'PUT',
      url: '/api/recovery-cases/policy',
      payload: { identityMethods: ['email-code'] },
    });
    try {
      const api = caseApi(app, operator.token);
      const id = (await api.create(requester)).json().id;
      const attested = await api.post(id, 'identity', {
        method: 'attested',
        attestation: 'in-person',
        note: 'Looked at the badge',
      });
      expect(attested.statusCode).toBe(403);
      const shortNote = await api.post(id, 'identity', {
        method: 'attested',
        attestation: 'in-person',
        note: 'ok',
      });
      expect(shortNote.statusCode).toBe(400);
      expect((await api.post(id, 'key-id', { keyId: '12345' })).statusCode).toBe(400);
      expect((await api.post(id, 'disclose', { reasonCode: 'other' })).statusCode).toBe(400);
    } finally {
      await admin.send({
        method: 'PUT',
        url: '/api/recovery-cases/policy',
        payload: { identityMethods: ['email-code', 'second-person', 'attested'] },
      });
    }
  });

  it('cancels before disclosure only', async () => {
    const api = caseApi(app, operator.token);
    const id = (await api.create(requester)).json().id;
    const res = await api.post(id, 'cancel', { note: 'user found the key' });
    expect(res.json()).toMatchObject({ status: 'cancelled', nextStep: null });
    expect((await api.post(id, 'identity', { method: 'second-person' })).statusCode).toBe(409);
  });

  it('lets root-cause questions wait until after disclosure when the policy allows it', async () => {
    const admin = caseApi(app, t.adminToken);
    await admin.send({
      method: 'PUT',
      url: '/api/recovery-cases/policy',
      payload: { allowRootCauseAfterDisclosure: true },
    });
    try {
      const api = caseApi(app, operator.token, nextAddress());
      const id = await locatedCase(api, requester, otherDevice, { rootCause: false });
      const disclosed = await api.post(id, 'disclose', { reasonCode: 'tpm-reset' });
      expect(disclosed.statusCode, disclosed.body).toBe(200);
      expect(disclosed.json().case).toMatchObject({ status: 'disclosed', nextStep: 'root-cause' });
      const answered = await api.post(id, 'root-cause', {
        answers: { ...FORGOT_PIN, forgottenPinOrLostKey: 'no', changeCause: 'tpm-cleared-or-replaced' },
      });
      expect(answered.json().resolution.class).toBe('tpm-change');
      expect(answered.json().case.status).toBe('awaiting-rotation');
    } finally {
      await admin.send({
        method: 'PUT',
        url: '/api/recovery-cases/policy',
        payload: { allowRootCauseAfterDisclosure: false },
      });
    }
  });
});

describe('self-service reason codes', () => {
  it("records MBAM's reason code with a self-service disclosure, and refuses an unknown one", async () => {
    const owner = await personWithPassword(t, t.organizationId);
    const own = await deviceWithKey(t, t.adminToken);
    await setOwner(t, t.adminToken, own.deviceId, owner.userId);
    const session = await signIn(app, owner);
    const url = `/api/self-service/recovery-keys/${own.keyRecordId}/disclose`;
    const bad = await app.inject({
      method: 'POST',
      url,
      headers: session.write,
      remoteAddress: nextAddress(),
      payload: { reasonCode: 'forgot-everything', reason: 'locked out' },
    });
    expect(bad.statusCode).toBe(400);
    const res = await app.inject({
      method: 'POST',
      url,
      headers: session.write,
      remoteAddress: nextAddress(),
      payload: { reasonCode: 'lost-startup-key', reason: 'USB stick lost' },
    });
    expect(res.statusCode, res.body).toBe(200);
    const [audit] = await auditRows(t, 'recovery-key.disclosed', own.keyRecordId);
    expect(audit!.details).toMatchObject({ channel: 'self-service', reasonCode: 'lost-startup-key' });
  });
});
