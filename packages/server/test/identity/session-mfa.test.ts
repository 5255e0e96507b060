// Session lifetimes around the MFA step: pending expiry, idle timeout after the step, absolute timeout from sign-in.
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers.js';
import {
  createIdentityVault,
  sessionFrom,
  type IdentityVault,
  type Session,
} from './support/identity-vault.js';

const MINUTE = 60_000;

describe('sessions with an MFA step', () => {
  let t: IdentityVault;
  beforeAll(async () => {
    t = await createIdentityVault({ sessionTtlMinutes: 60, sessionIdleMinutes: 15 });
  });
  afterAll(async () => t?.close());

  const code = (secret: string) =>
    new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: 30 }).generate({
      timestamp: t.clock.now().getTime(),
    });

  /** A user with TOTP enrolled; returns a function that signs in and completes the step. */
  async function totpUser(username: string, roles: string[] = []) {
    const { password } = await t.createUser(username, roles);
    const first = await t.signIn(username, password);
    const enroll = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/totp/enroll',
      headers: first.headers,
    });
    const { secret } = enroll.json() as { secret: string };
    const confirm = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/totp/confirm',
      headers: first.headers,
      payload: { code: code(secret) },
    });
    expect(confirm.statusCode).toBe(200);
    // Each code works once: later steps must come from a later 30-second window.
    t.clock.advance(MINUTE);
    return { password, secret };
  }

  const verify = (s: Session, secret: string) =>
    t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/verify',
      headers: s.headers,
      payload: { code: code(secret) },
    });
  const me = (cookie: string) => t.app.inject({ url: '/api/auth/me', headers: { cookie } });

  it('lets a session owing MFA lapse after its short pending lifetime', async () => {
    const { password, secret } = await totpUser('slow-typist');
    const pending = await t.signIn('slow-typist', password);
    expect(pending.body.state).toBe('mfa-pending');
    t.clock.advance(11 * MINUTE);
    const late = await verify(pending, secret);
    expect(late.statusCode).toBe(401);
    expect(late.json().error.code).toBe('UNAUTHENTICATED');
  });

  it('counts the idle timeout from the MFA step, and the absolute one from sign-in', async () => {
    const { password, secret } = await totpUser('two-step');
    const signedInAt = t.clock.now().getTime();
    const pending = await t.signIn('two-step', password);
    // Nine minutes to find the phone: still within the pending lifetime.
    t.clock.advance(9 * MINUTE);
    const verified = await verify(pending, secret);
    expect(verified.statusCode, verified.body).toBe(200);
    const active = sessionFrom(verified);
    expect(Date.parse(verified.json().expiresAt)).toBe(signedInAt + 60 * MINUTE);

    // Idle: 14 minutes after the step is fine (23 after sign-in), and it counts from the last use.
    t.clock.advance(14 * MINUTE);
    expect((await me(active.cookie)).statusCode).toBe(200);
    t.clock.advance(14 * MINUTE);
    expect((await me(active.cookie)).statusCode).toBe(200);
    t.clock.advance(14 * MINUTE);
    expect((await me(active.cookie)).statusCode).toBe(200);
    // 51 minutes after sign-in; used every 14 minutes, only the absolute limit (60) can end it.
    t.clock.advance(9 * MINUTE + 1000);
    expect((await me(active.cookie)).statusCode).toBe(401);

    // And a session left alone after its step ends after the idle limit.
    const again = await t.signIn('two-step', password);
    const idle = sessionFrom(await verify(again, secret));
    t.clock.advance(16 * MINUTE);
    expect((await me(idle.cookie)).statusCode).toBe(401);
  });

  it('under the MFA policy, a key discloser without MFA can only enroll, then use the account', async () => {
    const policy = await t.app.inject({
      method: 'PUT',
      url: '/api/auth/mfa-policy',
      headers: bearer(t.adminToken),
      payload: { requireMfaForDisclosure: true },
    });
    expect(policy.statusCode).toBe(200);
    const { password } = await t.createUser('helper', ['helpdesk']);
    const s = await t.signIn('helper', password);
    expect(s.body.state).toBe('mfa-enrollment-required');
    for (const url of ['/api/auth/me', '/api/devices?name=PC', '/api/recovery-keys']) {
      expect((await t.app.inject({ url, headers: s.headers })).statusCode, url).toBe(401);
    }
    // It cannot pass itself off as a pending sign-in either.
    const skip = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/verify',
      headers: s.headers,
      payload: { code: '123456' },
    });
    expect(skip.statusCode).toBe(401);
    expect((await t.app.inject({ url: '/api/auth/mfa', headers: s.headers })).statusCode).toBe(200);
    const enroll = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/totp/enroll',
      headers: s.headers,
    });
    const { secret } = enroll.json() as { secret: string };
    const confirmed = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/totp/confirm',
      headers: s.headers,
      payload: { code: code(secret) },
    });
    expect(confirmed.json().state).toBe('active');
    expect((await me(sessionFrom(confirmed).cookie)).statusCode).toBe(200);
    // The enrollment-only token died with the step.
    expect((await t.app.inject({ url: '/api/auth/mfa', headers: s.headers })).statusCode).toBe(401);
  });

  it('holds the policy on every request: a session from before the policy or a disclosing role owes enrolment', async () => {
    const setPolicy = (requireMfaForDisclosure: boolean) =>
      t.app.inject({
        method: 'PUT',
        url: '/api/auth/mfa-policy',
        headers: bearer(t.adminToken),
        payload: { requireMfaForDisclosure },
      });
    const session = (s: Session) => t.app.inject({ url: '/api/auth/session', headers: s.headers });
    expect((await setPolicy(false)).statusCode).toBe(200);

    // Signed in while the policy was off; the policy turns on during the session.
    const early = await t.createUser('early-helper', ['helpdesk']);
    const before = await t.signIn('early-helper', early.password);
    expect(before.body.state).toBe('active');
    expect((await me(before.cookie)).statusCode).toBe(200);
    // A user who already has a second factor is not affected.
    const { password: totpPassword, secret } = await totpUser('totp-helper', ['helpdesk']);
    const withTotp = await t.signIn('totp-helper', totpPassword);
    const verified = await verify(withTotp, secret);
    expect(verified.json().state).toBe('active');
    const totpCookie = sessionFrom(verified).cookie;
    // Nor is one who cannot disclose keys, until they are given a role that can.
    const reader = await t.createUser('late-reader', ['report-reader']);
    const readerSession = await t.signIn('late-reader', reader.password);

    expect((await setPolicy(true)).statusCode).toBe(200);
    expect((await me(before.cookie)).statusCode).toBe(401);
    expect((await session(before)).json().state).toBe('mfa-enrollment-required');
    expect((await me(totpCookie)).statusCode).toBe(200);
    expect((await me(readerSession.cookie)).statusCode).toBe(200);
    const audited = await t.vault.db
      .selectFrom('audit_log')
      .select(['action', 'target_id'])
      .where('action', '=', 'session.mfa-enrollment-required')
      .execute();
    expect(audited).toEqual([{ action: 'session.mfa-enrollment-required', target_id: expect.any(String) }]);

    // The demoted session can enroll, and is then a full session again.
    const enroll = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/totp/enroll',
      headers: before.headers,
    });
    const confirmed = await t.app.inject({
      method: 'POST',
      url: '/api/auth/mfa/totp/confirm',
      headers: before.headers,
      payload: { code: code((enroll.json() as { secret: string }).secret) },
    });
    expect(confirmed.json().state).toBe('active');
    expect((await me(sessionFrom(confirmed).cookie)).statusCode).toBe(200);

    // A role that can disclose, granted mid-session, brings the policy to the next request.
    await t.vault.services.access.createAssignment(
      t.organizationId,
      { roleId: 'helpdesk', userId: reader.userId },
      { type: 'cli', id: null },
    );
    expect((await me(readerSession.cookie)).statusCode).toBe(401);
    expect((await session(readerSession)).json().state).toBe('mfa-enrollment-required');
    expect((await setPolicy(false)).statusCode).toBe(200);
  });

  it('holds the policy for personal tokens too, and gives a demoted session only a pending lifetime', async () => {
    const setPolicy = (requireMfaForDisclosure: boolean) =>
      t.app.inject({
        method: 'PUT',
        url: '/api/auth/mfa-policy',
        headers: bearer(t.adminToken),
        payload: { requireMfaForDisclosure },
      });
    expect((await setPolicy(false)).statusCode).toBe(200);
    const { userId, password } = await t.createUser('token-helper', ['device-administrator']);
    const s = await t.signIn('token-helper', password);
    // A personal token, as an administrator would let the helper make one (the role cannot).
    const { token } = await t.vault.services.apiTokens.createApiToken({
      organizationId: t.organizationId,
      name: 'my script',
      kind: 'personal',
      permissions: ['keys:read-metadata', 'keys:lookup-by-id', 'keys:disclose'],
      creatorPermissions: undefined,
      actor: { type: 'user', id: userId },
      createdByUserId: userId,
    });
    const asToken = () =>
      t.app.inject({
        url: '/api/recovery-keys?keyId=4290B6C0-B17A-497A-8552-272CC30E80D4',
        headers: bearer(token),
      });
    expect((await asToken()).statusCode).toBe(200);

    expect((await setPolicy(true)).statusCode).toBe(200);
    expect((await asToken()).statusCode).toBe(401);
    // The session is demoted on its next request, with a pending session's short life left.
    expect((await me(s.cookie)).statusCode).toBe(401);
    const row = await t.vault.db
      .selectFrom('sessions')
      .select(['state', 'expires_at'])
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    expect(row.state).toBe('mfa-enrollment-required');
    expect(Date.parse(row.expires_at) - t.clock.now().getTime()).toBeLessThanOrEqual(10 * MINUTE);
    expect((await setPolicy(false)).statusCode).toBe(200);
    expect((await asToken()).statusCode).toBe(200);
  });
});
