// Sign-in in Chromium beyond the password: an authenticator app set up on My account (codes computed
// with otpauth, as a phone would), then a sign-in with password and code; and the SSO button of an
// OpenID Connect provider (oidc-provider on loopback), followed through the provider and back.
import { Secret, TOTP } from 'otpauth';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startOidcIdp, type OidcIdp } from '../../server/test/identity/support/oidc-idp.js';
import {
  ApiClient,
  chromiumMissing,
  describePage,
  openPage,
  shot,
  signIn,
  startHarness,
  type Harness,
  type Watched,
} from './support.js';

const ADMIN_PASSWORD = 'correct horse battery staple 42';
const TINA_PASSWORD = 'two steps are better than one';
const SLUG = 'corp-sso';

describe.skipIf(chromiumMissing)('sign-in with an authenticator app and with SSO in Chromium', () => {
  let h: Harness;
  let idp: OidcIdp;
  let admin: ApiClient;
  let view: Watched | undefined;

  beforeAll(async () => {
    // SSO needs the server's public URL for its redirect URI: the harness serves http://localhost:PORT.
    h = await startHarness({ passkeys: true });
    idp = await startOidcIdp({
      redirectUri: `${h.url}/api/auth/oidc/${SLUG}/callback`,
      users: [
        {
          login: 'carol',
          preferredUsername: 'carol@idp.example.test',
          name: 'Carol Example',
          groups: ['Everyone'],
        },
      ],
    });
    const first = await openPage(h);
    await signIn(first.page, 'admin', h.adminPassword, ADMIN_PASSWORD);
    await first.context.close();
    // Node's fetch goes to the loopback address the server listens on (localhost may be ::1 first).
    admin = new ApiClient(h.server.url);
    await admin.signIn('admin', ADMIN_PASSWORD);
  }, 180_000);

  afterAll(async () => {
    await h?.close();
    await idp?.close();
  });

  beforeEach(({ task, onTestFailed }) => {
    onTestFailed(async () => {
      if (!view) return;
      await shot(view.page, `failed-sign-in-${task.name.slice(0, 40).replace(/\W+/g, '-')}`);
      console.error(`[web tests] ${task.name} failed ${await describePage(view.page)}`);
    });
  });

  it('sets up an authenticator app on My account, then signs in with password and code', async () => {
    const tina = await admin.call<{ oneTimePassword: string }>('POST', '/api/users', {
      username: 'tina',
      displayName: 'Tina Two-Step',
    });
    view = await openPage(h);
    const { page } = view;
    await signIn(page, 'tina', tina.oneTimePassword, TINA_PASSWORD);
    await page.getByRole('link', { name: 'Tina Two-Step' }).click();
    await page.getByRole('heading', { name: 'My account' }).waitFor();
    await page.getByText('Authenticator app: off').waitFor();
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();

    // The secret, as text and as an otpauth link for a phone.
    const shownSecret = page.getByTestId('totp-secret');
    await shownSecret.waitFor();
    const secret = (await shownSecret.textContent())!.replace(/\s/g, '');
    expect(secret).toMatch(/^[A-Z2-7]{16,}$/);
    const link = new URL((await page.getByRole('link', { name: 'otpauth link' }).getAttribute('href'))!);
    expect(link.protocol).toBe('otpauth:');
    expect(link.searchParams.get('secret')).toBe(secret);
    const totp = new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
    // Codes a step apart, so the sign-in below never replays the one used here.
    const code = (offsetSteps = 0) => totp.generate({ timestamp: Date.now() + offsetSteps * 30_000 });

    // A wrong code first: said in words, nothing enrolled.
    const wrong = code() === '000000' ? '111111' : '000000';
    await page.getByLabel('Code from the app').fill(wrong);
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/That code did not work/);
    await page.getByLabel('Code from the app').fill(code());
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('heading', { name: 'Keep your recovery codes' }).waitFor();
    expect(await page.getByTestId('recovery-codes').locator('li').count()).toBe(10);
    await page.getByRole('button', { name: 'I have saved them' }).click();
    await page.getByText('Authenticator app: on').waitFor();
    expect(await page.getByTestId('recovery-codes-left').textContent()).toBe('Recovery codes left: 10');
    await shot(page, '31-account-totp');

    // Sign out, then in again: the password alone is not enough.
    await page.getByRole('button', { name: 'Sign out', exact: true }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('User name').fill('tina');
    await page.getByLabel('Password', { exact: true }).fill(TINA_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Second step' }).waitFor();
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0);
    // Nothing but the second step opens while it is owed.
    expect((await page.request.get('/api/auth/me')).status()).toBe(401);
    await page.getByLabel('Code from your authenticator app').fill(code(1));
    await shot(page, '32-sign-in-totp');
    await page.getByRole('button', { name: 'Verify' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    await page.getByRole('link', { name: 'Tina Two-Step' }).waitFor();
    const me = (await (await page.request.get('/api/auth/me')).json()) as { username: string };
    expect(me.username).toBe('tina');
    expect(view.problems).toEqual([]);
    await view.context.close();
    view = undefined;
  });

  it('shows the SSO button of a configured provider, which goes to the provider and back signed in', async () => {
    await admin.call('PUT', `/api/identity-providers/oidc/${SLUG}`, {
      displayName: 'Corp SSO',
      issuer: idp.issuer,
      clientId: idp.clientId,
      clientSecret: idp.clientSecret,
      scopes: ['openid', 'profile', 'groups'],
      // The test provider runs on plain http on loopback.
      allowInsecureIssuer: true,
    });
    view = await openPage(h);
    const { page } = view;
    // The provider's development pages import a web font; the test machine stays offline.
    await view.context.route('https://fonts.googleapis.com/**', (route) =>
      route.fulfill({ status: 200, contentType: 'text/css', body: '' }),
    );
    await page.goto('/sign-in');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const button = page.getByRole('link', { name: 'Sign in with Corp SSO' });
    await button.waitFor();
    expect(await button.getAttribute('href')).toBe(`/api/auth/oidc/${SLUG}/start`);
    await shot(page, '33-sign-in-sso-button');

    // It starts the authorization-code flow with PKCE at the provider.
    await button.click();
    await page.waitForURL((url) => url.origin === idp.issuer);
    const authorization = idp.authorizationRequests.at(-1)!;
    expect(authorization.searchParams.get('client_id')).toBe(idp.clientId);
    expect(authorization.searchParams.get('redirect_uri')).toBe(`${h.url}/api/auth/oidc/${SLUG}/callback`);
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');

    // The provider's own pages: log in, consent; then back to the portal, signed in.
    await page.locator('input[name=login]').fill('carol');
    await page.locator('input[name=password]').fill('any password');
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL((url) => url.origin === h.url);
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    await page.getByRole('link', { name: 'Carol Example' }).waitFor();
    await page.getByRole('heading', { name: 'My devices' }).waitFor();
    const { users } = await admin.call<{ users: { username: string; authSource: string }[] }>(
      'GET',
      '/api/users',
    );
    expect(users).toContainEqual(
      expect.objectContaining({ username: 'carol@idp.example.test', authSource: 'oidc' }),
    );
    expect(view.problems).toEqual([]);
    await view.context.close();
    view = undefined;
  });
});
