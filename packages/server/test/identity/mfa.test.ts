// TOTP enrollment, verification and replay refusal, recovery codes, and MFA required by organization policy.
import { TOTP, Secret } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers.js';
import {
  createIdentityVault,
  sessionFrom,
  type IdentityVault,
  type Session,
} from './support/identity-vault.js';

describe('MFA', () => {
  let t: IdentityVault;
  beforeAll(async () => {
    t = await createIdentityVault();
  });
  afterAll(async () => t?.close());

  const codeAt = (secret: string, at: Date) =>
    new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30 }).generate({
      timestamp: at.getTime(),
    });

  async function enrollTotp(s: Session) {
    const enroll = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/totp/enroll',
      headers: s.headers,
    });
    expect(enroll.statusCode).toBe(200);
    const { secret, otpauthUri } = enroll.json();
    expect(otpauthUri).toMatch(/^otpauth:\/\/totp\//);
    const stored = await t.vault.db.selectFrom('totp_credentials').selectAll().executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain(secret);
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/totp/confirm',
      headers: s.headers,
      payload: { code: '000000' },
    });
    expect(wrong.json().error.code).toBe('MFA_INVALID');
    const confirm = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/totp/confirm',
      headers: s.headers,
      payload: { code: codeAt(secret, t.clock.now()) },
    });
    expect(confirm.statusCode).toBe(200);
    return {
      secret,
      confirm: confirm.json() as { recoveryCodes: string[]; state: string; csrfToken: string },
    };
  }

  it('makes sign-in two-step once TOTP is enrolled, and refuses a replayed code', async () => {
    const { password } = await t.createUser('totp-user');
    const first = await t.signIn('totp-user', password);
    const { secret, confirm } = await enrollTotp(first);
    expect(confirm.recoveryCodes).toHaveLength(10);

    t.clock.advance(60_000);
    const pending = await t.signIn('totp-user', password);
    expect(pending.body).toMatchObject({ state: 'mfa-pending', mfaMethods: ['totp', 'recovery-code'] });
    // A pending session is nobody anywhere else.
    expect(
      (await t.app.inject({ url: '/api/auth/me', headers: { cookie: pending.cookie } })).statusCode,
    ).toBe(401);
    const code = codeAt(secret, t.clock.now());
    const noCsrf = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/verify',
      headers: { cookie: pending.cookie },
      payload: { code },
    });
    expect(noCsrf.json().error.code).toBe('CSRF_TOKEN_INVALID');
    const verified = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/verify',
      headers: pending.headers,
      payload: { code },
    });
    expect(verified.statusCode).toBe(200);
    const active = sessionFrom(verified);
    expect(verified.json().state).toBe('active');
    expect((await t.app.inject({ url: '/api/auth/me', headers: { cookie: active.cookie } })).statusCode).toBe(
      200,
    );
    // The pre-MFA token died with the step.
    expect(
      (await t.app.inject({ url: '/api/auth/session', headers: { cookie: pending.cookie } })).statusCode,
    ).toBe(401);

    // The same code again, within its window, on a new sign-in: a replay.
    const again = await t.signIn('totp-user', password);
    const replay = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/verify',
      headers: again.headers,
      payload: { code },
    });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe('MFA_INVALID');
    // A recovery code works once.
    const recoveryCode = confirm.recoveryCodes[0]!;
    const recovered = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/verify',
      headers: again.headers,
      payload: { recoveryCode },
    });
    expect(recovered.statusCode).toBe(200);
    const third = await t.signIn('totp-user', password);
    const reused = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/verify',
      headers: third.headers,
      payload: { recoveryCode },
    });
    expect(reused.json().error.code).toBe('MFA_INVALID');
    const codes = await t.vault.db.selectFrom('mfa_recovery_codes').select('code_hash').execute();
    expect(JSON.stringify(codes)).not.toContain(recoveryCode.replace(/-/g, ''));
  });

  it('removes the authenticator app, and its recovery codes with it when no factor is left', async () => {
    const { password } = await t.createUser('app-remover');
    const s = await t.signIn('app-remover', password);
    const { confirm } = await enrollTotp(s);
    const active = { headers: { cookie: s.cookie, 'x-csrf-token': s.csrf } };
    expect(confirm.state).toBe('active');
    const removed = await t.app.inject({
      method: 'DELETE',
      url: '/api/auth/mfa/totp',
      headers: active.headers,
    });
    expect(removed.statusCode).toBe(204);
    const status = (await t.app.inject({ url: '/api/auth/mfa', headers: active.headers })).json();
    expect(status).toMatchObject({ totp: false, recoveryCodesLeft: 0 });
    const again = await t.app.inject({
      method: 'DELETE',
      url: '/api/auth/mfa/totp',
      headers: active.headers,
    });
    expect(again.statusCode).toBe(404);
    expect((await t.signIn('app-remover', password)).body.state).toBe('active');
  });

  it('removes a factor only from a recent sign-in: an old session is told to sign in again', async () => {
    const { password } = await t.createUser('old-session');
    const s = await t.signIn('old-session', password);
    const { secret } = await enrollTotp(s);
    const headers = { cookie: s.cookie, 'x-csrf-token': s.csrf };
    // The session stays in use (so it does not idle out), but its sign-in is now 16 minutes old.
    for (let minute = 0; minute < 16; minute += 4) {
      t.clock.advance(4 * 60_000);
      expect((await t.app.inject({ url: '/api/auth/mfa', headers })).statusCode).toBe(200);
    }
    const refused = await t.app.inject({ method: 'DELETE', url: '/api/auth/mfa/totp', headers });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('REAUTHENTICATION_REQUIRED');
    expect((await t.app.inject({ url: '/api/auth/mfa', headers })).json()).toMatchObject({ totp: true });

    // A fresh sign-in (password, then the code) may remove it.
    const pending = await t.signIn('old-session', password);
    expect(pending.body.state).toBe('mfa-pending');
    const verified = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/verify',
      headers: pending.headers,
      payload: { code: codeAt(secret, t.clock.now()) },
    });
    expect(verified.statusCode, verified.body).toBe(200);
    const fresh = sessionFrom(verified);
    const removed = await t.app.inject({
      method: 'DELETE',
      url: '/api/auth/mfa/totp',
      headers: { cookie: fresh.cookie, 'x-csrf-token': verified.json().csrfToken },
    });
    expect(removed.statusCode, removed.body).toBe(204);
  });

  it('when the organization requires MFA, a key discloser without MFA may only enroll', async () => {
    const policy = await t.app.inject({
      method: 'PUT',
      url: '/api/auth/mfa-policy',
      headers: bearer(t.adminToken),
      payload: { requireMfaForDisclosure: true },
    });
    expect(policy.json()).toEqual({ requireMfaForDisclosure: true });
    const discloser = await t.createUser('discloser', ['device-administrator']);
    const reader = await t.createUser('reader', ['report-reader']);

    // A role that cannot disclose keys is not affected.
    expect((await t.signIn('reader', reader.password)).body.state).toBe('active');

    const s = await t.signIn('discloser', discloser.password);
    expect(s.body.state).toBe('mfa-enrollment-required');
    expect((await t.app.inject({ url: '/api/devices', headers: { cookie: s.cookie } })).statusCode).toBe(401);
    expect(
      (await t.app.inject({ url: '/api/auth/session', headers: { cookie: s.cookie } })).json().state,
    ).toBe('mfa-enrollment-required');
    const { confirm } = await enrollTotp(s);
    expect(confirm.state).toBe('active');
  });
});
