// Deny by default: the route walk, the permission function, sessions, the first admin, other organizations.
import { describe, expect, it, afterAll, beforeAll } from 'vitest';
import Fastify from 'fastify';
import { routeTableOf } from '../src/app.js';
import type { App } from '../src/app-types.js';
import { registerAccessControl, type RouteAccess } from '../src/modules/access/access.hooks.js';
import { hasPermission, isPermission, isPermissionGrant } from '../src/modules/access/permissions.js';
import {
  bearer,
  createTestVault,
  enrollDevice,
  escrowPayload,
  newKey,
  randomKeyId,
  type TestVault,
} from './helpers.js';

let t: TestVault;
beforeAll(async () => {
  t = await createTestVault();
});
afterAll(async () => {
  await t.close();
});

describe('route table', () => {
  it('every route declares a valid permission', () => {
    const table = routeTableOf(t.app);
    expect(table.length).toBeGreaterThan(15);
    const missing = table.filter((r) => r.permission === undefined);
    expect(missing).toEqual([]);
    for (const r of table) {
      expect(
        r.permission === 'public' || r.permission === 'authenticated' || isPermission(r.permission!),
        `${r.method} ${r.url}`,
      ).toBe(true);
    }
  });

  it('only the expected routes are public', () => {
    const publicRoutes = routeTableOf(t.app)
      .filter((r) => r.permission === 'public' && r.method !== 'HEAD')
      .map((r) => `${r.method} ${r.url}`)
      .filter((r) => !r.includes('/api/docs'));
    expect(publicRoutes.sort()).toEqual(
      [
        'GET /api/openapi.json',
        'GET /healthz',
        'GET /readyz',
        'POST /api/auth/sign-in',
        'POST /api/escrow/enroll',
        'POST /oauth2/v2.0/token',
        'POST /:tenant/oauth2/v2.0/token',
        // Sign-in steps that read the session cookie themselves (a pending-MFA session is no principal).
        'GET /api/auth/session',
        'POST /api/auth/sign-out',
        'GET /api/auth/mfa',
        'POST /api/auth/mfa/totp/enroll',
        'POST /api/auth/mfa/totp/confirm',
        'POST /api/auth/mfa/verify',
        'POST /api/auth/mfa/webauthn/registration/options',
        'POST /api/auth/mfa/webauthn/registration/verify',
        'POST /api/auth/mfa/webauthn/authentication/options',
        'POST /api/auth/mfa/webauthn/authentication/verify',
        'DELETE /api/auth/mfa/totp',
        'DELETE /api/auth/mfa/webauthn/credentials/:credentialId',
        // SSO and directory sign-in, and the sign-in page's list of them (names and kinds only).
        'GET /api/auth/providers',
        'GET /api/auth/oidc/:provider/start',
        'GET /api/auth/oidc/:provider/callback',
        'POST /api/auth/ldap/:provider/sign-in',
        // The portal's static files and its client-side pages (data comes from the API above).
        'GET /*',
      ].sort(),
    );
  });

  it('a route without a permission stops the app from starting', async () => {
    const app = Fastify() as unknown as App;
    const table: RouteAccess[] = [];
    registerAccessControl(app, {
      routeTable: table,
      authenticator: { fromBearerToken: async () => undefined, fromSessionToken: async () => undefined },
    });
    expect(() => app.get('/oops', async () => 'open')).toThrow(/declares no valid permission/);
    expect(() =>
      app.route({
        method: 'GET',
        url: '/typo',
        config: { permission: 'keys:everything' as never },
        handler: async () => '',
      }),
    ).toThrow();
    await app.close();
  });

  it('every non-public route refuses an anonymous caller and a wrong token with 401', async () => {
    for (const r of routeTableOf(t.app)) {
      if (r.permission === 'public' || r.method === 'HEAD') continue;
      const url = r.url
        .replace(':deviceId', 'dev_00000000000000000000000000')
        .replace(':recoveryKeyId', 'rk_00000000000000000000000000')
        .replace(':apiTokenId', 'tok_00000000000000000000000000');
      for (const headers of [{}, bearer('bdv_at_' + '0'.repeat(52)), bearer('nonsense')]) {
        const res = await t.app.inject({
          method: r.method as 'GET',
          url,
          headers,
          payload: r.method === 'GET' || r.method === 'DELETE' ? undefined : {},
        });
        expect(res.statusCode, `${r.method} ${url}`).toBe(401);
        // The Graph-compatible routes answer the same refusal in OData's shape, with Graph's code.
        expect(res.json().error.code).toBe(
          /^\/(v1\.0|beta)\//.test(url) ? 'InvalidAuthenticationToken' : 'UNAUTHENTICATED',
        );
      }
    }
  });
});

describe('hasPermission', () => {
  it.each([
    [['*'], 'keys:disclose', true],
    [['keys:*'], 'keys:disclose', true],
    [['keys:read-metadata'], 'keys:disclose', false],
    [['devices:*'], 'keys:disclose', false],
    [[], 'audit:read', false],
    [['audit:read'], 'audit:read', true],
  ] as const)('%j covers %s: %s', (grants, required, expected) => {
    expect(hasPermission(grants, required)).toBe(expected);
  });
  it('validates grants', () => {
    expect(isPermissionGrant('keys:*')).toBe(true);
    expect(isPermissionGrant('nothing:*')).toBe(false);
    expect(isPermissionGrant('keys:steal')).toBe(false);
  });
});

describe('permissions and organizations', () => {
  it('a token without keys:disclose can read metadata but not disclose', async () => {
    const device = await enrollDevice(t);
    const esc = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [newKey()]),
    });
    const id = esc.json().volumes[0].recoveryKeys[0].id;
    const reader = await t.vault.services.apiTokens.createApiToken({
      organizationId: t.organizationId,
      name: 'reader',
      permissions: ['keys:read-metadata'],
      creatorPermissions: undefined,
      actor: { type: 'cli', id: null },
    });
    expect(
      (await t.app.inject({ url: `/api/recovery-keys/${id}`, headers: bearer(reader.token) })).statusCode,
    ).toBe(200);
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${id}/disclose`,
      headers: bearer(reader.token),
      payload: { reason: 'curious' },
    });
    expect(res.statusCode).toBe(403);
    expect(res.json().error.code).toBe('FORBIDDEN');
    // It cannot mint itself a stronger token either.
    const mint = await t.app.inject({
      method: 'POST',
      url: '/api/api-tokens',
      headers: bearer(reader.token),
      payload: { name: 'x', permissions: ['*'] },
    });
    expect(mint.statusCode).toBe(403);
  });

  it("another organization's key answers 404, not 403", async () => {
    const device = await enrollDevice(t);
    const esc = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [newKey()]),
    });
    const id = esc.json().volumes[0].recoveryKeys[0].id;
    const otherOrg = 'org_' + 'z'.repeat(26);
    await t.vault.services.organizations.insert({
      id: otherOrg,
      name: 'Other',
      created_at: new Date().toISOString(),
    });
    const other = await t.vault.services.apiTokens.createApiToken({
      organizationId: otherOrg,
      name: 'other admin',
      permissions: ['*'],
      creatorPermissions: undefined,
      actor: { type: 'cli', id: null },
    });
    for (const req of [
      { url: `/api/recovery-keys/${id}` },
      { url: `/api/devices/${device.deviceId}` },
      {
        method: 'POST' as const,
        url: `/api/recovery-keys/${id}/disclose`,
        payload: { reason: 'cross-tenant' },
      },
    ]) {
      const res = await t.app.inject({ ...req, headers: bearer(other.token) });
      expect(res.statusCode, req.url).toBe(404);
    }
    const list = await t.app.inject({
      url: `/api/recovery-keys?keyIdPrefix=${esc.json().volumes[0].recoveryKeys[0].recoveryKeyId.slice(0, 8)}`,
      headers: bearer(other.token),
    });
    expect(list.json().recoveryKeys).toEqual([]);
  });

  it('a revoked or expired API token is refused', async () => {
    const token = await t.vault.services.apiTokens.createApiToken({
      organizationId: t.organizationId,
      name: 'short',
      permissions: ['devices:read'],
      expiresInDays: 1,
      creatorPermissions: undefined,
      actor: { type: 'cli', id: null },
    });
    expect(
      (await t.app.inject({ url: '/api/devices?name=x', headers: bearer(token.token) })).statusCode,
    ).toBe(200);
    await t.vault.db
      .updateTable('api_tokens')
      .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
      .where('id', '=', token.id)
      .execute();
    expect(
      (await t.app.inject({ url: '/api/devices?name=x', headers: bearer(token.token) })).statusCode,
    ).toBe(401);
    const revoke = await t.app.inject({
      method: 'DELETE',
      url: `/api/api-tokens/${token.id}`,
      headers: bearer(t.adminToken),
    });
    expect(revoke.statusCode).toBe(204);
    const stored = await t.vault.db
      .selectFrom('api_tokens')
      .selectAll()
      .where('id', '=', token.id)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain(token.token);
  });
});

describe('first administrator and sessions', () => {
  it('signs in with the one-time password, may only change it, then works with a cookie', async () => {
    const v = await createTestVault();
    try {
      // A fresh database: the helper already bootstrapped, so look at what was created.
      const again = await v.vault.services.identity.bootstrapFirstOrganization({ organizationName: 'x' });
      expect(again).toBeUndefined();
      const user = await v.vault.db.selectFrom('users').selectAll().executeTakeFirstOrThrow();
      expect(user).toMatchObject({ username: 'admin', must_change_password: 1 });
      expect(user.password_hash).toMatch(/^\$argon2id\$/);

      // Known one-time password: create a second pending user through the service.
      const oneTime = 'one-time-' + randomKeyId();
      await v.vault.services.identity.createUser({
        organizationId: v.organizationId,
        username: 'helpdesk',
        password: oneTime,
        permissions: ['*'],
        mustChangePassword: true,
      });
      const wrong = await v.app.inject({
        method: 'POST',
        url: '/api/auth/sign-in',
        payload: { username: 'helpdesk', password: 'wrong-password-123' },
      });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().error.code).toBe('INVALID_CREDENTIALS');
      const unknown = await v.app.inject({
        method: 'POST',
        url: '/api/auth/sign-in',
        payload: { username: 'nobody', password: 'wrong-password-123' },
      });
      expect(unknown.json().error.code).toBe('INVALID_CREDENTIALS');

      const signIn = await v.app.inject({
        method: 'POST',
        url: '/api/auth/sign-in',
        payload: { username: 'helpdesk', password: oneTime },
      });
      expect(signIn.statusCode).toBe(200);
      expect(signIn.json().mustChangePassword).toBe(true);
      const setCookie = String(signIn.headers['set-cookie']);
      expect(setCookie).toMatch(/HttpOnly/);
      expect(setCookie).toMatch(/SameSite=Strict/);
      const cookie = setCookie.split(';')[0]!;
      const csrf = { 'x-csrf-token': signIn.json().csrfToken as string };

      const blocked = await v.app.inject({ url: '/api/devices?name=x', headers: { cookie } });
      expect(blocked.statusCode).toBe(403);
      expect(blocked.json().error.code).toBe('PASSWORD_CHANGE_REQUIRED');
      expect(
        (await v.app.inject({ url: '/api/auth/me', headers: { cookie } })).json().mustChangePassword,
      ).toBe(true);

      const tooShort = await v.app.inject({
        method: 'POST',
        url: '/api/auth/change-password',
        headers: { cookie, ...csrf },
        payload: { currentPassword: oneTime, newPassword: 'short' },
      });
      expect(tooShort.statusCode).toBe(400);
      const changed = await v.app.inject({
        method: 'POST',
        url: '/api/auth/change-password',
        headers: { cookie, ...csrf },
        payload: { currentPassword: oneTime, newPassword: 'a much longer passphrase ' + randomKeyId() },
      });
      expect(changed.statusCode).toBe(204);
      expect((await v.app.inject({ url: '/api/devices?name=x', headers: { cookie } })).statusCode).toBe(200);

      expect(
        (await v.app.inject({ method: 'POST', url: '/api/auth/sign-out', headers: { cookie, ...csrf } }))
          .statusCode,
      ).toBe(204);
      expect((await v.app.inject({ url: '/api/devices?name=x', headers: { cookie } })).statusCode).toBe(401);
    } finally {
      await v.close();
    }
  });
});

describe('service endpoints', () => {
  it('health, readiness, OpenAPI and docs answer', async () => {
    expect((await t.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await t.app.inject({ url: '/readyz' })).json()).toEqual({ status: 'ready' });
    const spec = await t.app.inject({ url: '/api/openapi.json' });
    expect(spec.statusCode).toBe(200);
    expect(Object.keys(spec.json().paths)).toContain('/api/recovery-keys/{recoveryKeyId}/disclose');
    const docs = await t.app.inject({ url: '/api/docs' });
    expect(docs.statusCode).toBeLessThan(400);
    expect((await t.app.inject({ url: '/healthz' })).headers['x-request-id']).toMatch(/^req_/);
  });
});
