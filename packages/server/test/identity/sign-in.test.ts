// Local sign-in: password policy, lockout with a growing delay, admin reset, session expiry and revocation, CSRF.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockoutDelaySeconds } from '../../src/modules/identity/sign-in-throttle.js';
import { passwordPolicyViolation } from '../../src/modules/identity/password-policy.js';
import { bearer } from '../helpers.js';
import { createIdentityVault, sessionFrom, type IdentityVault } from './support/identity-vault.js';

describe('password policy', () => {
  it.each([
    ['short', 'alice', /12 to 256/],
    ['x'.repeat(257), 'alice', /12 to 256/],
    ['alice-is-my-password', 'alice', /username/],
    ['Password1234', 'bob', /too common/],
    ['p@ssw0rd 1234', 'bob', /too common/],
    ['aaaaaaaaaaaaaaaa', 'bob', /too common/],
    ['jdoe.example-2030!', 'jdoe@example.com', /username/],
  ])('refuses %j for %s', (password, username, why) => {
    expect(passwordPolicyViolation(password, username)).toMatch(why);
  });

  it('accepts a long passphrase', () => {
    expect(passwordPolicyViolation('blue kettle windmill 42', 'alice')).toBeUndefined();
  });

  it('grows the delay from the threshold, doubling, capped', () => {
    const s = { lockoutBaseSeconds: 30, lockoutMaxSeconds: 600 };
    expect([4, 5, 6, 7, 8, 9, 20].map((n) => lockoutDelaySeconds(n, 5, s))).toEqual([
      0, 30, 60, 120, 240, 480, 600,
    ]);
  });
});

describe('local sign-in', () => {
  let t: IdentityVault;
  beforeAll(async () => {
    t = await createIdentityVault({
      lockoutThreshold: 3,
      lockoutBaseSeconds: 60,
      lockoutMaxSeconds: 3600,
      sessionIdleMinutes: 15,
      sessionTtlMinutes: 60,
    });
  });
  afterAll(async () => t?.close());

  it('locks the account after the threshold with a growing delay, counted in the database', async () => {
    const { password } = await t.createUser('locky');
    const identity = t.vault.services.identity;
    const wrong = () => identity.signIn('locky', 'not the password at all', { address: '192.0.2.10' });
    for (let i = 0; i < 2; i++) await expect(wrong()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' });
    await expect(wrong()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' }); // third: lock set (60 s)
    // Even the right password is refused while locked, and the spelling case does not matter.
    await expect(identity.signIn('LOCKY', password, { address: '192.0.2.11' })).rejects.toMatchObject({
      code: 'SIGN_IN_LOCKED',
      details: { retryAfterSeconds: 60 },
    });
    const row = await t.vault.db
      .selectFrom('sign_in_attempts')
      .selectAll()
      .where('key', '=', 'account:local:locky')
      .executeTakeFirstOrThrow();
    expect(row.failures).toBe(3);

    t.clock.advance(61_000);
    await expect(wrong()).rejects.toMatchObject({ code: 'INVALID_CREDENTIALS' }); // fourth: 120 s
    t.clock.advance(61_000);
    await expect(identity.signIn('locky', password)).rejects.toMatchObject({
      code: 'SIGN_IN_LOCKED',
      details: { retryAfterSeconds: 59 },
    });
    t.clock.advance(60_000);
    const ok = await identity.signIn('locky', password, { address: '192.0.2.12' });
    expect(ok.state).toBe('active');
    // Success clears the account's counter.
    expect(
      await t.vault.db
        .selectFrom('sign_in_attempts')
        .selectAll()
        .where('key', '=', 'account:local:locky')
        .execute(),
    ).toEqual([]);
  });

  it('locks an address that guesses many accounts, and answers 429 with Retry-After over HTTP', async () => {
    const identity = t.vault.services.identity;
    for (let i = 0; i < 20; i++) {
      await expect(
        identity.signIn(`nobody-${i}`, 'wrong wrong wrong', { address: '198.51.100.7' }),
      ).rejects.toMatchObject({
        code: 'INVALID_CREDENTIALS',
      });
    }
    await expect(
      identity.signIn('nobody-x', 'wrong wrong wrong', { address: '198.51.100.7' }),
    ).rejects.toMatchObject({
      code: 'SIGN_IN_LOCKED',
    });
    // Over HTTP, an unknown account locks exactly like a known one (no user enumeration).
    for (let i = 0; i < 3; i++) {
      await t.app.inject({
        method: 'POST',
        url: '/api/auth/sign-in',
        payload: { username: 'ghost', password: 'wrong wrong wrong' },
      });
    }
    const locked = await t.app.inject({
      method: 'POST',
      url: '/api/auth/sign-in',
      payload: { username: 'ghost', password: 'wrong wrong wrong' },
    });
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('SIGN_IN_LOCKED');
    expect(locked.headers['retry-after']).toBe('60');
    t.clock.advance(3_600_000);
  });

  it('lets an administrator reset a password to a one-time one that must be changed', async () => {
    const { userId, password } = await t.createUser('forgetful');
    const before = await t.signIn('forgetful', password);
    expect(before.status).toBe(200);
    const reset = await t.app.inject({
      method: 'POST',
      url: `/api/users/${userId}/reset-password`,
      headers: bearer(t.adminToken),
    });
    expect(reset.statusCode).toBe(200);
    const oneTime = reset.json().oneTimePassword as string;
    // The old session ended, the old password is gone.
    expect((await t.app.inject({ url: '/api/auth/me', headers: { cookie: before.cookie } })).statusCode).toBe(
      401,
    );
    expect((await t.signIn('forgetful', password)).status).toBe(401);
    const after = await t.signIn('forgetful', oneTime);
    expect(after.body.mustChangePassword).toBe(true);
    expect(
      (await t.app.inject({ url: '/api/users', headers: { cookie: after.cookie } })).json().error.code,
    ).toBe('PASSWORD_CHANGE_REQUIRED');
    const weak = await t.app.inject({
      method: 'POST',
      url: '/api/auth/change-password',
      headers: after.headers,
      payload: { currentPassword: oneTime, newPassword: 'forgetful-forever' },
    });
    expect(weak.json().error.code).toBe('VALIDATION_FAILED');
    const changed = await t.app.inject({
      method: 'POST',
      url: '/api/auth/change-password',
      headers: after.headers,
      payload: { currentPassword: oneTime, newPassword: 'a sturdier passphrase 2030' },
    });
    expect(changed.statusCode).toBe(204);
    // Not an administrator: reset is forbidden; another organization's user id is a 404.
    expect(
      (
        await t.app.inject({
          method: 'POST',
          url: `/api/users/${t.adminId}/reset-password`,
          headers: after.headers,
        })
      ).statusCode,
    ).toBe(403);
    const unknown = await t.app.inject({
      method: 'POST',
      url: `/api/users/usr_${'0'.repeat(26)}/reset-password`,
      headers: bearer(t.adminToken),
    });
    expect(unknown.statusCode).toBe(404);
  });

  it('creates, lists and disables users (disabling ends their sessions)', async () => {
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: bearer(t.adminToken),
      payload: { username: 'newcomer', displayName: 'New Comer' },
    });
    expect(created.statusCode).toBe(201);
    const { userId, oneTimePassword } = created.json();
    const session = await t.signIn('newcomer', oneTimePassword);
    expect(session.body.mustChangePassword).toBe(true);
    const list = await t.app.inject({ url: '/api/users', headers: bearer(t.adminToken) });
    expect(list.json().users.map((u: { username: string }) => u.username)).toContain('newcomer');
    expect(JSON.stringify(list.json())).not.toMatch(/argon2|password_hash/);
    const disabled = await t.app.inject({
      method: 'POST',
      url: `/api/users/${userId}/disable`,
      headers: bearer(t.adminToken),
    });
    expect(disabled.statusCode).toBe(204);
    expect(
      (await t.app.inject({ url: '/api/auth/me', headers: { cookie: session.cookie } })).statusCode,
    ).toBe(401);
    expect((await t.signIn('newcomer', oneTimePassword)).status).toBe(401);
  });

  it("records a user's e-mail address at creation and lets an administrator change it", async () => {
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/users',
      headers: bearer(t.adminToken),
      payload: { username: 'mailer', email: 'mailer@example.test' },
    });
    expect(created.statusCode, created.body).toBe(201);
    const { userId } = created.json();
    const emailOf = async () =>
      (await t.app.inject({ url: '/api/users', headers: bearer(t.adminToken) }))
        .json()
        .users.find((u: { userId: string }) => u.userId === userId).email;
    expect(await emailOf()).toBe('mailer@example.test');
    const patch = (payload: Record<string, unknown>) =>
      t.app.inject({ method: 'PATCH', url: `/api/users/${userId}`, headers: bearer(t.adminToken), payload });
    expect((await patch({ email: 'new@example.test', displayName: 'Mail Er' })).statusCode).toBe(204);
    expect(await emailOf()).toBe('new@example.test');
    expect((await patch({ email: null })).statusCode).toBe(204);
    expect(await emailOf()).toBeNull();
    const bad = await patch({ email: 'not an address' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('VALIDATION_FAILED');
    expect((await patch({})).statusCode).toBe(400);
    const other = await t.app.inject({
      method: 'PATCH',
      url: `/api/users/usr_${'0'.repeat(26)}`,
      headers: bearer(t.adminToken),
      payload: { email: 'x@example.test' },
    });
    expect(other.statusCode).toBe(404);
  });

  it('ends a session after the idle timeout and after the absolute timeout', async () => {
    const { password } = await t.createUser('sleepy');
    const s = await t.signIn('sleepy', password);
    const me = () => t.app.inject({ url: '/api/auth/me', headers: { cookie: s.cookie } });
    // Used every 10 minutes: the idle limit (15) never hits, the absolute one (60) does.
    for (let i = 0; i < 5; i++) {
      t.clock.advance(10 * 60_000);
      expect((await me()).statusCode).toBe(200);
    }
    t.clock.advance(11 * 60_000);
    expect((await me()).statusCode).toBe(401);

    const idle = await t.signIn('sleepy', password);
    t.clock.advance(14 * 60_000);
    expect((await t.app.inject({ url: '/api/auth/me', headers: { cookie: idle.cookie } })).statusCode).toBe(
      200,
    );
    t.clock.advance(16 * 60_000);
    expect((await t.app.inject({ url: '/api/auth/me', headers: { cookie: idle.cookie } })).statusCode).toBe(
      401,
    );
  });

  it('signs out here, everywhere, and lets an administrator revoke all of a user’s sessions', async () => {
    const { userId, password } = await t.createUser('roamer');
    const a = await t.signIn('roamer', password);
    const b = await t.signIn('roamer', password);
    const me = (cookie: string) => t.app.inject({ url: '/api/auth/me', headers: { cookie } });
    expect(
      (await t.app.inject({ method: 'POST', url: '/api/auth/sign-out', headers: a.headers })).statusCode,
    ).toBe(204);
    expect((await me(a.cookie)).statusCode).toBe(401);
    expect((await me(b.cookie)).statusCode).toBe(200);

    const c = await t.signIn('roamer', password);
    const everywhere = await t.app.inject({
      method: 'POST',
      url: '/api/auth/sign-out-everywhere',
      headers: c.headers,
    });
    expect(everywhere.json()).toEqual({ revoked: 2 });
    expect((await me(b.cookie)).statusCode).toBe(401);
    expect((await me(c.cookie)).statusCode).toBe(401);

    const d = await t.signIn('roamer', password);
    const revoked = await t.app.inject({
      method: 'POST',
      url: `/api/users/${userId}/revoke-sessions`,
      headers: bearer(t.adminToken),
    });
    expect(revoked.json()).toEqual({ revoked: 1 });
    expect((await me(d.cookie)).statusCode).toBe(401);
  });

  it('refuses a cookie-authenticated change without the CSRF token; Bearer requests are exempt', async () => {
    const { password } = await t.createUser('csrf-victim', ['organization-administrator']);
    const s = await t.signIn('csrf-victim', password);
    expect(s.cookie).toMatch(/^bdv_session=/);
    const overHttp = await t.app.inject({
      method: 'POST',
      url: '/api/auth/sign-in',
      payload: { username: 'csrf-victim', password },
    });
    const setCookie = String(overHttp.headers['set-cookie']);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Secure/); // the public URL is https

    const policy = (headers: Record<string, string>) =>
      t.app.inject({
        method: 'PUT',
        url: '/api/auth/mfa-policy',
        headers,
        payload: { requireMfaForDisclosure: false },
      });
    for (const headers of [
      { cookie: s.cookie } as Record<string, string>,
      { cookie: s.cookie, 'x-csrf-token': 'forged' },
      { cookie: s.cookie, 'x-csrf-token': sessionFrom(overHttp).csrf },
    ]) {
      const refused = await policy(headers);
      expect(refused.statusCode).toBe(403);
      expect(refused.json().error.code).toBe('CSRF_TOKEN_INVALID');
    }
    expect((await policy(s.headers)).statusCode).toBe(200);
    // Reads need no token; the session route hands the token back to a reloaded page.
    const state = await t.app.inject({ url: '/api/auth/session', headers: { cookie: s.cookie } });
    expect(state.json()).toMatchObject({ state: 'active', csrfToken: s.csrf });
    expect((await policy(bearer(t.adminToken))).statusCode).toBe(200);
  });
});
