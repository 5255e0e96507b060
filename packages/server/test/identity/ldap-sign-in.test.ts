// LDAP sign-in through the HTTP route against a real Samba AD DC: directory config, group → role, lockout.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers.js';
import { generateAdPassword, startSambaAd, type SambaAd } from '../support/samba-ad.js';
import { sambaAvailability } from '../support/samba-install.js';
import { createIdentityVault, sessionFrom, type IdentityVault } from './support/identity-vault.js';

const availability = await sambaAvailability();
if (!availability.ok) console.warn(availability.reason);

const SLUG = 'corp-ad';

describe.skipIf(!availability.ok)('LDAP sign-in route against Samba AD', () => {
  let dc: SambaAd;
  let t: IdentityVault;
  const passwords: Record<string, string> = {};

  beforeAll(async () => {
    [dc, t] = await Promise.all([startSambaAd(), createIdentityVault({ lockoutThreshold: 3 })]);
    const service = generateAdPassword();
    passwords.service = service;
    const svc = await dc.createUser('svc-vault', service, []);
    for (const [name, groups] of [
      ['dana', ['Vault Device Admins']],
      ['erin', ['Domain Staff']],
      ['frank', ['Vault Device Admins']],
      ['gina', ['Domain Staff']],
    ] as const) {
      passwords[name] = generateAdPassword();
      await dc.createUser(name, passwords[name], groups);
    }
    const saved = await t.app.inject({
      method: 'PUT',
      url: `/api/identity-providers/ldap/${SLUG}`,
      headers: bearer(t.adminToken),
      payload: {
        displayName: 'Corporate AD',
        url: dc.url,
        caCertificate: dc.caCertPem,
        baseDn: dc.baseDn,
        bindDn: svc.dn,
        bindPassword: service,
      },
    });
    expect(saved.statusCode, saved.body).toBe(200);
    expect(saved.json()).toMatchObject({ hasBindPassword: true, hasCaCertificate: true });
    expect(saved.body).not.toContain(service);
    const assignment = await t.app.inject({
      method: 'POST',
      url: '/api/role-assignments',
      headers: bearer(t.adminToken),
      payload: { roleId: 'security-reader', externalGroup: 'vault device admins' },
    });
    expect(assignment.statusCode, assignment.body).toBe(201);
  }, 180_000);

  afterAll(async () => {
    await t?.close();
    await dc?.stop();
  });

  const signIn = (username: string, password: string, address = '127.0.0.1') =>
    t.app.inject({
      method: 'POST',
      url: `/api/auth/ldap/${SLUG}/sign-in`,
      payload: { username, password },
      remoteAddress: address,
    });

  it('signs in with the directory password; the AD group grants its role', async () => {
    const response = await signIn('dana', passwords.dana!);
    expect(response.statusCode, response.body).toBe(200);
    const s = sessionFrom(response);
    expect(s.body).toMatchObject({ state: 'active', username: `dana@${dc.realm.toLowerCase()}` });
    expect(JSON.stringify(response.headers['set-cookie'])).toMatch(
      /HttpOnly.*SameSite=Strict|SameSite=Strict.*HttpOnly/i,
    );
    const me = await t.app.inject({ url: '/api/auth/me', headers: { cookie: s.cookie } });
    expect(me.statusCode).toBe(200);
    expect(me.json().permissions).toContain('devices:read');
    expect(
      (await t.app.inject({ url: '/api/devices?name=PC&match=prefix', headers: { cookie: s.cookie } }))
        .statusCode,
    ).toBe(200);
    const user = await t.vault.db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', s.body.userId as string)
      .executeTakeFirstOrThrow();
    expect(user.auth_source).toBe('ldap');
    // The provider's organization manages the account it provisioned.
    expect(user.home_organization_id).toBe(t.organizationId);
    const session = await t.vault.db
      .selectFrom('sessions')
      .select('auth_method')
      .where('user_id', '=', user.id)
      .executeTakeFirstOrThrow();
    expect(session.auth_method).toBe('ldap');

    // A second sign-in finds the same account.
    const again = await signIn('DANA', passwords.dana!);
    expect(again.statusCode).toBe(200);
    expect(again.json().userId).toBe(user.id);
  });

  it('gives a user outside the mapped group a session without the role', async () => {
    const response = await signIn('erin', passwords.erin!);
    expect(response.statusCode, response.body).toBe(200);
    const s = sessionFrom(response);
    expect(
      (await t.app.inject({ url: '/api/devices?name=PC&match=prefix', headers: { cookie: s.cookie } }))
        .statusCode,
    ).toBe(403);
  });

  it('refuses a wrong password with a stable 401 and counts it toward the lockout', async () => {
    const address = '127.0.0.23';
    for (let i = 0; i < 3; i++) {
      const wrong = await signIn('frank', generateAdPassword(), address);
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().error.code).toBe('INVALID_CREDENTIALS');
      expect(sessionFrom(wrong).cookie).toBe('');
    }
    const attempts = await t.vault.db.selectFrom('sign_in_attempts').selectAll().execute();
    expect(attempts.some((a) => a.key.includes('frank') && Number(a.failures) === 3)).toBe(true);
    // Locked now: even the right password waits (and is not checked against the directory).
    const locked = await signIn('frank', passwords.frank!, address);
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('SIGN_IN_LOCKED');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    t.clock.advance(10 * 60_000);
    const later = await signIn('frank', passwords.frank!, address);
    expect(later.statusCode, later.body).toBe(200);
  });

  it('counts every spelling of one account (name, DOMAIN\\name, UPN) toward one lockout', async () => {
    const address = '127.0.0.24';
    for (const username of ['gina', `${dc.domain}\\gina`, `gina@${dc.realm.toLowerCase()}`]) {
      const wrong = await signIn(username, generateAdPassword(), address);
      expect(wrong.statusCode, username).toBe(401);
    }
    const locked = await signIn(`${dc.domain.toLowerCase()}\\GINA`, passwords.gina!, address);
    expect(locked.statusCode).toBe(429);
    expect(locked.json().error.code).toBe('SIGN_IN_LOCKED');
  });

  it('answers 404 for an unknown directory', async () => {
    const response = await t.app.inject({
      method: 'POST',
      url: '/api/auth/ldap/nowhere/sign-in',
      payload: { username: 'dana', password: 'x' },
    });
    expect(response.statusCode).toBe(404);
  });
});
