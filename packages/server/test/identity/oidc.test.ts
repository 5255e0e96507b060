// OpenID Connect sign-in end to end against oidc-provider on loopback: PKCE, state, JIT users, group → role.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer } from '../helpers.js';
import { browse, CookieJar, formOf, startOidcIdp, type OidcIdp } from './support/oidc-idp.js';
import { createIdentityVault, type IdentityVault } from './support/identity-vault.js';

const SLUG = 'test-idp';

describe('OIDC sign-in against oidc-provider', () => {
  let t: IdentityVault;
  let idp: OidcIdp;

  beforeAll(async () => {
    t = await createIdentityVault();
    idp = await startOidcIdp({
      redirectUri: `${t.config.identity.publicUrl}/api/auth/oidc/${SLUG}/callback`,
      users: [
        {
          login: 'alice',
          preferredUsername: 'alice@idp.example.test',
          name: 'Alice Example',
          groups: ['Vault Readers', 'Everyone'],
        },
        {
          login: 'bob',
          preferredUsername: 'bob@idp.example.test',
          name: 'Bob Example',
          groups: ['Everyone'],
        },
      ],
    });
  }, 60_000);
  afterAll(async () => {
    await idp?.close();
    await t?.close();
  });

  async function configureProvider(allowInsecureIssuer: boolean) {
    return t.app.inject({
      method: 'PUT',
      url: `/api/identity-providers/oidc/${SLUG}`,
      headers: bearer(t.adminToken),
      payload: {
        displayName: 'Test IdP',
        issuer: idp.issuer,
        clientId: idp.clientId,
        clientSecret: idp.clientSecret,
        scopes: ['openid', 'profile', 'groups'],
        allowInsecureIssuer,
      },
    });
  }

  /** start → authorization endpoint → login form → consent → the redirect back to our callback. */
  async function throughIdp(login: string) {
    const start = await t.app.inject({ url: `/api/auth/oidc/${SLUG}/start` });
    expect(start.statusCode, start.body).toBe(302);
    const binding = ([] as string[])
      .concat(start.headers['set-cookie'] ?? [])
      .find((c) => c.startsWith('bdv_oidc='));
    expect(binding).toMatch(/HttpOnly/i);
    expect(binding).toMatch(/SameSite=Lax/i);
    const authorization = new URL(start.headers.location!);
    const jar = new CookieJar();
    let step = await browse(jar, authorization);
    const pages: string[] = [];
    for (let hops = 0; hops < 12 && step.location?.origin === idp.issuer; hops++) {
      step = await browse(jar, step.location);
      if (step.status === 200) {
        const form = formOf(step.body, new URL(idp.issuer));
        pages.push(form.fields.prompt ?? '?');
        step = await browse(jar, form.action, {
          method: 'POST',
          form: {
            ...form.fields,
            ...(form.fields.prompt === 'login' ? { login, password: 'any password' } : {}),
          },
        });
      }
    }
    expect(pages).toEqual(['login', 'consent']);
    const callback = step.location!;
    expect(callback.href.startsWith(`${t.config.identity.publicUrl}/api/auth/oidc/${SLUG}/callback?`)).toBe(
      true,
    );
    return { authorization, callback, bindingCookie: binding!.split(';')[0]! };
  }

  const callBack = (callback: URL, bindingCookie: string) =>
    t.app.inject({ url: `${callback.pathname}${callback.search}`, headers: { cookie: bindingCookie } });

  const sessionCookieOf = (response: { headers: Record<string, unknown> }) =>
    ([] as string[])
      .concat((response.headers['set-cookie'] as string[] | string | undefined) ?? [])
      .find((c) => c.startsWith('bdv_session='));

  it('refuses an http issuer unless the provider is configured to allow it', async () => {
    expect((await configureProvider(false)).statusCode).toBe(200);
    const start = await t.app.inject({ url: `/api/auth/oidc/${SLUG}/start` });
    expect(start.statusCode).toBe(503);
    const saved = await configureProvider(true);
    expect(saved.statusCode).toBe(200);
    expect(saved.json()).toMatchObject({
      allowInsecureIssuer: true,
      hasClientSecret: true,
      redirectUri: `${t.config.identity.publicUrl}/api/auth/oidc/${SLUG}/callback`,
    });
    expect(saved.body).not.toContain(idp.clientSecret);
  });

  it('signs in with PKCE, provisions the user just in time and maps a group claim to a role', async () => {
    const assignment = await t.app.inject({
      method: 'POST',
      url: '/api/role-assignments',
      headers: bearer(t.adminToken),
      payload: { roleId: 'security-reader', externalGroup: 'Vault Readers' },
    });
    expect(assignment.statusCode, assignment.body).toBe(201);

    const { authorization, callback, bindingCookie } = await throughIdp('alice');
    // PKCE: the challenge went out with the authorization request, and the provider received it.
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorization.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(authorization.searchParams.get('nonce')).toBeTruthy();
    expect(idp.authorizationRequests.at(-1)?.searchParams.get('code_challenge')).toBe(
      authorization.searchParams.get('code_challenge'),
    );
    expect(callback.searchParams.get('code')).toBeTruthy();

    const done = await callBack(callback, bindingCookie);
    // A same-site page that refreshes to the portal, so the SameSite=Strict cookie goes along.
    expect(done.statusCode, done.body).toBe(200);
    expect(done.headers['content-type']).toMatch(/^text\/html/);
    expect(done.body).toMatch(/<meta http-equiv="refresh" content="0;url=\/">/);
    expect(done.body).toContain('<a href="/">');
    expect(done.body).not.toMatch(/<script/i);
    expect(String(done.headers['content-security-policy'])).toContain("script-src 'self'");
    expect(done.headers['cache-control']).toBe('no-store');
    const sessionCookie = sessionCookieOf(done);
    expect(sessionCookie).toMatch(/HttpOnly/i);
    expect(sessionCookie).toMatch(/SameSite=Strict/i);
    const cookie = sessionCookie!.split(';')[0]!;

    const me = await t.app.inject({ url: '/api/auth/me', headers: { cookie } });
    expect(me.statusCode, me.body).toBe(200);
    expect(me.json()).toMatchObject({ username: 'alice@idp.example.test', displayName: 'Alice Example' });
    expect(me.json().permissions).toContain('devices:read');
    const user = await t.vault.db
      .selectFrom('users')
      .selectAll()
      .where('username', '=', 'alice@idp.example.test')
      .executeTakeFirstOrThrow();
    expect(user.auth_source).toBe('oidc');
    // The provider's organization manages the account it provisioned.
    expect(user.home_organization_id).toBe(t.organizationId);
    const session = await t.vault.db
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', user.id)
      .executeTakeFirstOrThrow();
    expect(session).toMatchObject({ state: 'active', auth_method: 'oidc' });
    // The role from the group works: security readers list devices, and cannot change org settings.
    expect(
      (await t.app.inject({ url: '/api/devices?name=DESKTOP&match=prefix', headers: { cookie } })).statusCode,
    ).toBe(200);
    expect((await t.app.inject({ url: '/api/identity-providers', headers: { cookie } })).statusCode).toBe(
      403,
    );

    // The same callback again: its state was used up, so it is refused even with the binding cookie.
    const replay = await callBack(callback, bindingCookie);
    expect(replay.statusCode).toBe(401);
    expect(replay.json().error.code).toBe('INVALID_CREDENTIALS');
    expect(sessionCookieOf(replay)).toBeUndefined();
  });

  it('signs a second sign-in into the same account; a user without the group gets no role', async () => {
    const again = await throughIdp('alice');
    const done = await callBack(again.callback, again.bindingCookie);
    expect(sessionCookieOf(done)).toBeDefined();
    expect(
      await t.vault.db
        .selectFrom('users')
        .select('id')
        .where('username', '=', 'alice@idp.example.test')
        .execute(),
    ).toHaveLength(1);

    const bob = await throughIdp('bob');
    const bobDone = await callBack(bob.callback, bob.bindingCookie);
    const cookie = sessionCookieOf(bobDone)!.split(';')[0]!;
    expect((await t.app.inject({ url: '/api/auth/me', headers: { cookie } })).statusCode).toBe(200);
    expect(
      (await t.app.inject({ url: '/api/devices?name=DESKTOP&match=prefix', headers: { cookie } })).statusCode,
    ).toBe(403);
  });

  it('refuses a tampered state, a missing browser binding and a provider error', async () => {
    const flow = await throughIdp('alice');
    const tampered = new URL(flow.callback);
    const state = tampered.searchParams.get('state')!;
    tampered.searchParams.set('state', `${state.slice(0, -2)}${state.endsWith('AA') ? 'BB' : 'AA'}`);
    const refused = await callBack(tampered, flow.bindingCookie);
    expect(refused.statusCode).toBe(401);
    expect(refused.json().error.code).toBe('INVALID_CREDENTIALS');
    expect(sessionCookieOf(refused)).toBeUndefined();

    // Login CSRF: a callback arriving in a browser that did not start the sign-in.
    const unbound = await callBack(flow.callback, 'bdv_oidc=someone-elses');
    expect(unbound.statusCode).toBe(401);
    expect(sessionCookieOf(unbound)).toBeUndefined();
    // Neither refusal used up the state: the browser that started the sign-in still finishes it.
    const genuine = await callBack(flow.callback, flow.bindingCookie);
    expect(sessionCookieOf(genuine)).toBeDefined();

    const denied = await t.app.inject({
      url: `/api/auth/oidc/${SLUG}/callback?error=access_denied&state=${state}`,
      headers: { cookie: flow.bindingCookie },
    });
    expect(denied.statusCode).toBe(401);

    // A code issued for one sign-in (its PKCE challenge) does not finish another one.
    const other = await throughIdp('alice');
    const fresh = await throughIdp('alice');
    const mixed = new URL(fresh.callback);
    mixed.searchParams.set('code', other.callback.searchParams.get('code')!);
    const mixedResult = await callBack(mixed, fresh.bindingCookie);
    expect(mixedResult.statusCode).toBe(401);
  });

  it('lists the enabled sign-in choices publicly, names and kinds only', async () => {
    const listed = await t.app.inject({ url: '/api/auth/providers' });
    expect(listed.statusCode).toBe(200);
    expect(listed.json()).toEqual({ providers: [{ kind: 'oidc', slug: SLUG, displayName: 'Test IdP' }] });
    expect(listed.body).not.toContain(idp.issuer);
    expect(listed.body).not.toContain(idp.clientId);
  });

  it('answers 404 for an unknown provider', async () => {
    expect((await t.app.inject({ url: '/api/auth/oidc/nobody-here/start' })).statusCode).toBe(404);
  });
});
