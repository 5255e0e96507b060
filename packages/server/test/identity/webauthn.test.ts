// Passkeys end to end with a software authenticator: registration, the MFA step, origin and replay refusals.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMfaRepo } from '../../src/modules/identity/mfa.repo.js';
import { bearer } from '../helpers.js';
import {
  createIdentityVault,
  sessionFrom,
  type IdentityVault,
  type Session,
} from './support/identity-vault.js';
import { cborEncode, SoftAuthenticator } from './support/soft-authenticator.js';

describe('WebAuthn passkeys', () => {
  let t: IdentityVault;
  let origin: string;
  beforeAll(async () => {
    t = await createIdentityVault();
    origin = new URL(t.config.identity.publicUrl!).origin;
  });
  afterAll(async () => t?.close());

  it('encodes CBOR as RFC 8949 says (the authenticator below relies on it)', () => {
    expect(cborEncode(10).toString('hex')).toBe('0a');
    expect(cborEncode(500).toString('hex')).toBe('1901f4');
    expect(cborEncode(-7).toString('hex')).toBe('26');
    expect(cborEncode('none').toString('hex')).toBe('646e6f6e65');
    expect(cborEncode(Buffer.alloc(32)).subarray(0, 2).toString('hex')).toBe('5820');
    expect(cborEncode({ fmt: 'none', attStmt: {} }).toString('hex')).toBe(
      'a263666d74646e6f6e656761747453746d74a0',
    );
  });

  const post = (url: string, s: Pick<Session, 'headers'>, payload?: object) =>
    payload === undefined
      ? t.app.inject({ method: 'POST', url, headers: s.headers })
      : t.app.inject({ method: 'POST', url, headers: s.headers, payload });

  async function register(s: Session, authenticator: SoftAuthenticator, name = 'Laptop') {
    const options = await post('/api/auth/mfa/webauthn/registration/options', s);
    expect(options.statusCode, options.body).toBe(200);
    const body = options.json();
    expect(body.rp).toEqual({ id: 'vault.example.test', name: 'bdevault' });
    return post('/api/auth/mfa/webauthn/registration/verify', s, {
      name,
      credential: authenticator.register(body, origin),
    });
  }

  async function assertionOptions(s: Session) {
    const options = await post('/api/auth/mfa/webauthn/authentication/options', s);
    expect(options.statusCode, options.body).toBe(200);
    return options.json() as { challenge: string; rpId: string; allowCredentials: { id: string }[] };
  }

  it('registers a passkey, then completes sign-in with it as the second step', async () => {
    const { password } = await t.createUser('passkey-user', ['security-reader']);
    const authenticator = new SoftAuthenticator();
    const first = await t.signIn('passkey-user', password);
    expect(first.body.state).toBe('active');
    const registered = await register(first, authenticator);
    expect(registered.statusCode, registered.body).toBe(200);
    expect(registered.json().state).toBe('active');
    const status = await t.app.inject({ url: '/api/auth/mfa', headers: first.headers });
    expect(status.json().passkeys).toEqual([expect.objectContaining({ name: 'Laptop', lastUsedAt: null })]);

    const pending = await t.signIn('passkey-user', password);
    expect(pending.body).toMatchObject({ state: 'mfa-pending', mfaMethods: ['webauthn', 'recovery-code'] });
    expect((await t.app.inject({ url: '/api/auth/me', headers: pending.headers })).statusCode).toBe(401);
    const options = await assertionOptions(pending);
    expect(options.rpId).toBe('vault.example.test');
    expect(options.allowCredentials.map((c) => c.id)).toEqual([
      authenticator.credentialId.toString('base64url'),
    ]);
    const assertion = authenticator.authenticate(options, origin);
    const verified = await post('/api/auth/mfa/webauthn/authentication/verify', pending, {
      credential: assertion,
    });
    expect(verified.statusCode, verified.body).toBe(200);
    expect(verified.json().state).toBe('active');
    const active = sessionFrom(verified);
    expect(active.cookie).not.toBe(pending.cookie);
    expect((await t.app.inject({ url: '/api/auth/me', headers: { cookie: active.cookie } })).statusCode).toBe(
      200,
    );
    const stored = await t.vault.db.selectFrom('webauthn_credentials').selectAll().executeTakeFirstOrThrow();
    expect(Number(stored.counter)).toBe(authenticator.signCount);

    // The same assertion again on a new sign-in: its challenge is gone, and so is the counter step.
    const again = await t.signIn('passkey-user', password);
    await assertionOptions(again);
    const replay = await post('/api/auth/mfa/webauthn/authentication/verify', again, {
      credential: assertion,
    });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe('MFA_INVALID');
  });

  it('refuses an assertion from another origin, one that does not increase the counter, and an unknown key', async () => {
    const { password } = await t.createUser('careful-user');
    const authenticator = new SoftAuthenticator();
    const first = await t.signIn('careful-user', password);
    expect((await register(first, authenticator)).statusCode).toBe(200);

    const s = await t.signIn('careful-user', password);
    const phish = authenticator.authenticate(
      await assertionOptions(s),
      'https://vault.example.test.evil.example',
    );
    const refused = await post('/api/auth/mfa/webauthn/authentication/verify', s, { credential: phish });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.code).toBe('MFA_INVALID');

    // A good assertion moves the stored counter to 7; a clone that signs with 7 again is refused.
    const good = authenticator.authenticate(await assertionOptions(s), origin, 7);
    expect(
      (await post('/api/auth/mfa/webauthn/authentication/verify', s, { credential: good })).statusCode,
    ).toBe(200);
    const s2 = await t.signIn('careful-user', password);
    const stale = authenticator.authenticate(await assertionOptions(s2), origin, 7);
    const cloned = await post('/api/auth/mfa/webauthn/authentication/verify', s2, { credential: stale });
    expect(cloned.statusCode).toBe(401);

    const stranger = new SoftAuthenticator().authenticate(await assertionOptions(s2), origin);
    expect(
      (await post('/api/auth/mfa/webauthn/authentication/verify', s2, { credential: stranger })).statusCode,
    ).toBe(401);
    const fine = authenticator.authenticate(await assertionOptions(s2), origin);
    expect(
      (await post('/api/auth/mfa/webauthn/authentication/verify', s2, { credential: fine })).statusCode,
    ).toBe(200);
  });

  it('gives a passkey-only account recovery codes with its first passkey, and they sign in once', async () => {
    const { password } = await t.createUser('passkey-only');
    const first = await t.signIn('passkey-only', password);
    const registered = await register(first, new SoftAuthenticator(), 'Phone');
    expect(registered.statusCode, registered.body).toBe(200);
    const codes = registered.json().recoveryCodes as string[];
    expect(codes).toHaveLength(10);
    // A second passkey brings no new codes: the first ones still stand.
    const second = await register(first, new SoftAuthenticator(), 'Laptop');
    expect(second.statusCode, second.body).toBe(200);
    expect(second.json()).not.toHaveProperty('recoveryCodes');
    expect((await t.app.inject({ url: '/api/auth/mfa', headers: first.headers })).json()).toMatchObject({
      recoveryCodesLeft: 10,
    });

    // Both passkeys lost: a recovery code completes the sign-in, once.
    const pending = await t.signIn('passkey-only', password);
    expect(pending.body).toMatchObject({ state: 'mfa-pending' });
    const recovered = await post('/api/auth/mfa/verify', pending, { recoveryCode: codes[0] });
    expect(recovered.statusCode, recovered.body).toBe(200);
    const again = await t.signIn('passkey-only', password);
    const reused = await post('/api/auth/mfa/verify', again, { recoveryCode: codes[0] });
    expect(reused.statusCode).toBe(401);
  });

  it('moves the signature counter by compare-and-set: two sign-ins from one counter value, one wins', async () => {
    const { password } = await t.createUser('racing-user');
    const authenticator = new SoftAuthenticator();
    const first = await t.signIn('racing-user', password);
    expect((await register(first, authenticator)).statusCode).toBe(200);
    const stored = await t.vault.db
      .selectFrom('webauthn_credentials as c')
      .innerJoin('users as u', 'u.id', 'c.user_id')
      .select(['c.id', 'c.counter'])
      .where('u.username', '=', 'racing-user')
      .executeTakeFirstOrThrow();
    // Both verifications read the same stored counter before either writes: only the first write counts.
    const repo = createMfaRepo(t.vault.db);
    const at = new Date().toISOString();
    const previous = Number(stored.counter);
    expect(await repo.updateWebauthnCounter(stored.id, previous, previous + 5, at)).toBe(true);
    expect(await repo.updateWebauthnCounter(stored.id, previous, previous + 5, at)).toBe(false);
    const after = await t.vault.db
      .selectFrom('webauthn_credentials')
      .select('counter')
      .where('id', '=', stored.id)
      .executeTakeFirstOrThrow();
    expect(Number(after.counter)).toBe(previous + 5);
  });

  it('refuses a registration made for another origin or with a used-up challenge', async () => {
    const { password } = await t.createUser('registrar');
    const s = await t.signIn('registrar', password);
    const authenticator = new SoftAuthenticator();
    const options = (await post('/api/auth/mfa/webauthn/registration/options', s)).json();
    const foreign = await post('/api/auth/mfa/webauthn/registration/verify', s, {
      credential: authenticator.register(options, 'https://evil.example'),
    });
    expect(foreign.statusCode).toBe(401);
    const reused = await post('/api/auth/mfa/webauthn/registration/verify', s, {
      credential: authenticator.register(options, origin),
    });
    expect(reused.statusCode).toBe(401);
    const status = await t.app.inject({ url: '/api/auth/mfa', headers: s.headers });
    expect(status.json().passkeys).toEqual([]);
  });

  it('removes a passkey (CSRF, own ones only, never the last under the policy); with no factor, sign-in is one step', async () => {
    const { password } = await t.createUser('remover', ['device-administrator']);
    const first = await t.signIn('remover', password);
    const laptop = new SoftAuthenticator();
    const phone = new SoftAuthenticator();
    expect((await register(first, laptop, 'Laptop')).statusCode).toBe(200);
    expect((await register(first, phone, 'Phone')).statusCode).toBe(200);
    const listed = (await t.app.inject({ url: '/api/auth/mfa', headers: first.headers })).json();
    const [laptopId, phoneId] = (listed.passkeys as { id: string; name: string }[]).map((p) => p.id);

    const pending = await t.signIn('remover', password);
    expect(pending.body.state).toBe('mfa-pending');
    const byPending = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/mfa/webauthn/credentials/${laptopId}`,
      headers: pending.headers,
    });
    expect(byPending.statusCode).toBe(401);
    const noCsrf = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/mfa/webauthn/credentials/${laptopId}`,
      headers: { cookie: first.cookie },
    });
    expect(noCsrf.json().error.code).toBe('CSRF_TOKEN_INVALID');
    const other = await t.createUser('bystander');
    const otherSession = await t.signIn('bystander', other.password);
    const notYours = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/mfa/webauthn/credentials/${laptopId}`,
      headers: otherSession.headers,
    });
    expect(notYours.statusCode).toBe(404);

    const removed = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/mfa/webauthn/credentials/${laptopId}`,
      headers: first.headers,
    });
    expect(removed.statusCode).toBe(204);
    const after = (await t.app.inject({ url: '/api/auth/mfa', headers: first.headers })).json();
    expect(after.passkeys.map((p: { id: string }) => p.id)).toEqual([phoneId]);

    await t.app.inject({
      method: 'PUT',
      url: '/api/auth/mfa-policy',
      headers: bearer(t.adminToken),
      payload: { requireMfaForDisclosure: true },
    });
    try {
      const last = await t.app.inject({
        method: 'DELETE',
        url: `/api/auth/mfa/webauthn/credentials/${phoneId}`,
        headers: first.headers,
      });
      expect(last.statusCode).toBe(409);
    } finally {
      await t.app.inject({
        method: 'PUT',
        url: '/api/auth/mfa-policy',
        headers: bearer(t.adminToken),
        payload: { requireMfaForDisclosure: false },
      });
    }
    const lastAllowed = await t.app.inject({
      method: 'DELETE',
      url: `/api/auth/mfa/webauthn/credentials/${phoneId}`,
      headers: first.headers,
    });
    expect(lastAllowed.statusCode).toBe(204);
    expect((await t.signIn('remover', password)).body.state).toBe('active');
  });

  it('lets a key discloser who must enroll MFA do so with a passkey, and nothing else before', async () => {
    await t.app.inject({
      method: 'PUT',
      url: '/api/auth/mfa-policy',
      headers: bearer(t.adminToken),
      payload: { requireMfaForDisclosure: true },
    });
    try {
      const { password } = await t.createUser('new-admin', ['device-administrator']);
      const s = await t.signIn('new-admin', password);
      expect(s.body.state).toBe('mfa-enrollment-required');
      expect((await t.app.inject({ url: '/api/auth/me', headers: s.headers })).statusCode).toBe(401);
      expect((await t.app.inject({ url: '/api/devices?name=X', headers: s.headers })).statusCode).toBe(401);
      // Not a pending session either: the sign-in step routes refuse it.
      expect((await post('/api/auth/mfa/webauthn/authentication/options', s)).statusCode).toBe(401);
      const registered = await register(s, new SoftAuthenticator());
      expect(registered.statusCode, registered.body).toBe(200);
      expect(registered.json().state).toBe('active');
      const active = sessionFrom(registered);
      const me = await t.app.inject({ url: '/api/auth/me', headers: { cookie: active.cookie } });
      expect(me.statusCode).toBe(200);
      expect(me.json().permissions).toContain('keys:disclose');
    } finally {
      await t.app.inject({
        method: 'PUT',
        url: '/api/auth/mfa-policy',
        headers: bearer(t.adminToken),
        payload: { requireMfaForDisclosure: false },
      });
    }
  });
});
