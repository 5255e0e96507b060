// Passkeys in Chromium with a virtual authenticator (CDP WebAuthn): add one on My account, keep the
// recovery codes it comes with, then sign in with it as the second step.
import type { CDPSession } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chromiumMissing,
  openPage,
  shot,
  signIn,
  startHarness,
  type Harness,
  type Watched,
} from './support.js';

const ADMIN_PASSWORD = 'correct horse battery staple 42';

describe.skipIf(chromiumMissing)('passkeys in Chromium', () => {
  let h: Harness;
  let view: Watched;
  let cdp: CDPSession;

  beforeAll(async () => {
    h = await startHarness({ passkeys: true });
    view = await openPage(h);
    cdp = await view.context.newCDPSession(view.page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  it('adds a passkey on My account and shows the recovery codes it comes with, once', async () => {
    const { page } = view;
    await signIn(page, 'admin', h.adminPassword, ADMIN_PASSWORD);
    await page.goto('/account');
    await page.getByRole('heading', { name: 'My account' }).waitFor();
    await page.getByLabel('Passkey name').fill('virtual key');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await page.getByRole('heading', { name: 'Keep your recovery codes' }).waitFor();
    const codes = await page.getByTestId('recovery-codes').locator('li').allTextContents();
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    await shot(page, '15-account-passkey-recovery-codes');
    await page.getByRole('button', { name: 'I have saved them' }).click();
    await page.getByText('virtual key').waitFor();
    expect(await page.getByTestId('recovery-codes-left').textContent()).toBe('Recovery codes left: 10');
  });

  it('signs in with the passkey as the second step', async () => {
    const { page } = view;
    await page.context().clearCookies();
    await page.goto('/sign-in');
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password', { exact: true }).fill(ADMIN_PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Second step' }).waitFor();
    await page.getByRole('button', { name: 'Use a passkey' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    expect(await page.evaluate('window.__csp || []')).toEqual([]);
    expect(view.problems).toEqual([]);
  });
});
