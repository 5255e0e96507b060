// The administrator's import page (CSV dry run, then import) and the Active Directory sync settings, in Chromium.
import { randomUUID } from 'node:crypto';
import { generateRecoveryPassword } from '@bdevault/bde';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiClient,
  chromiumMissing,
  openPage,
  shot,
  signIn,
  startHarness,
  type Harness,
  type Watched,
} from './support.js';

const ADMIN_PASSWORD = 'correct horse battery staple 42';

describe.skipIf(chromiumMissing)('import and directory sync pages in Chromium', () => {
  let h: Harness;
  let view: Watched;
  let admin: ApiClient;

  beforeAll(async () => {
    h = await startHarness();
    view = await openPage(h);
    await signIn(view.page, 'admin', h.adminPassword, ADMIN_PASSWORD);
    admin = new ApiClient(h.url);
    await admin.signIn('admin', ADMIN_PASSWORD);
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  const devicesNamed = async (prefix: string) =>
    (await admin.call<{ devices: { name: string }[] }>('GET', `/api/devices?name=${prefix}&match=prefix`))
      .devices;

  it('checks a CSV file with a dry run, then imports the rows that passed', async () => {
    const { page } = view;
    const keyA = randomUUID().toUpperCase();
    const keyB = randomUUID().toUpperCase();
    const csv = [
      'DeviceName,KeyId,RecoveryPassword,Notes',
      `PC-IMPORT-01,${keyA},${generateRecoveryPassword()},first`,
      `PC-IMPORT-02,{${keyB}},${generateRecoveryPassword()},second`,
      `PC-IMPORT-03,${randomUUID()},111111-222222-333333,broken`,
    ].join('\n');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Import' }).click();
    await page.getByRole('heading', { name: 'Import recovery keys' }).waitFor();
    await page
      .getByLabel('CSV file', { exact: true })
      .setInputFiles({ name: 'keys.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) });
    await page.getByRole('button', { name: 'Check file' }).click();
    const result = page.getByTestId('import-result');
    await result.getByRole('heading', { name: 'Check of keys.csv: nothing was stored' }).waitFor();
    expect(await result.locator('tr[data-outcome="created"]').count()).toBe(2);
    expect(await result.locator('tr[data-outcome="invalid"]').count()).toBe(1);
    await result.getByText('Ignored columns: Notes').waitFor();
    // The password's digits never come back, only where it is wrong.
    expect(await result.textContent()).not.toContain('111111');
    expect(await devicesNamed('PC-IMPORT')).toEqual([]);
    await shot(page, '16-admin-import-check');

    await result.getByRole('button', { name: 'Import 2 keys' }).click();
    await result.getByRole('heading', { name: 'Imported keys.csv' }).waitFor();
    expect((await devicesNamed('PC-IMPORT')).map((d) => d.name).sort()).toEqual([
      'PC-IMPORT-01',
      'PC-IMPORT-02',
    ]);
    // No second import button once the rows are stored.
    expect(await result.getByRole('button', { name: /^Import/ }).count()).toBe(0);
    expect(view.problems).toEqual([]);
  });

  it('configures the directory sync; the bind password is never shown back', async () => {
    const { page } = view;
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Directory sync' })
      .click();
    await page.getByRole('heading', { name: 'Connect a directory' }).waitFor();
    await page.getByLabel(/Directory URL/).fill('ldaps://dc1.example.test');
    await page.getByLabel('Base DN').fill('OU=Workstations,DC=example,DC=test');
    await page.getByLabel(/Service account/).fill('EXAMPLE\\svc-bdevault');
    await page.getByLabel(/^Password/).fill('service account secret 1');
    await page.getByLabel(/Every/).fill('60');
    await page.getByRole('button', { name: 'Save directory sync' }).click();
    await page.getByText(/^Saved\. The bind password is stored encrypted/).waitFor();
    await page.getByTestId('sync-status').getByText('every 60 minutes').waitFor();
    await page.getByText('stored; leave empty to keep it').waitFor();
    expect(await page.getByLabel(/^Password/).inputValue()).toBe('');
    const stored = await admin.call<Record<string, unknown>>('GET', '/api/directory-sync');
    expect(stored).toMatchObject({
      bindDn: 'EXAMPLE\\svc-bdevault',
      bindPasswordSet: true,
      intervalMinutes: 60,
    });
    expect(JSON.stringify(stored)).not.toContain('service account secret');
    await shot(page, '17-admin-directory-sync');

    // A change without a password keeps the stored one.
    await page.getByLabel(/Every/).fill('120');
    await page.getByRole('button', { name: 'Save directory sync' }).click();
    await page.getByTestId('sync-status').getByText('every 120 minutes').waitFor();
    expect(
      (await admin.call<{ bindPasswordSet: boolean }>('GET', '/api/directory-sync')).bindPasswordSet,
    ).toBe(true);

    await page.getByRole('button', { name: 'Remove sync' }).click();
    await page.getByRole('heading', { name: 'Connect a directory' }).waitFor();
    expect(view.problems).toEqual([]);
  });

  it('adds, edits and removes sign-in providers; secrets stay write-only', async () => {
    const { page } = view;
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Sign-in providers' })
      .click();
    await page.getByRole('heading', { name: 'Sign-in providers' }).waitFor();
    await page.getByRole('button', { name: 'Add SSO provider' }).click();
    const oidc = page.getByRole('form', { name: 'Add an SSO provider' });
    await oidc.getByLabel(/Short name/).fill('Not A Slug');
    await oidc.getByLabel('Button label').fill('Example SSO');
    await oidc.getByLabel('Issuer URL').fill('https://idp.example.test');
    await oidc.getByLabel('Client ID').fill('bdevault-portal');
    await oidc.getByLabel(/Client secret/).fill('client secret value 1');
    await oidc.getByRole('button', { name: 'Save SSO provider' }).click();
    expect(
      await oidc.getByLabel(/Short name/).evaluate((el) => (el as HTMLInputElement).validity.valid),
    ).toBe(false);
    await oidc.getByLabel(/Short name/).fill('example-sso');
    await oidc.getByRole('button', { name: 'Save SSO provider' }).click();
    await page.getByText('Saved example-sso.').waitFor();
    await page.getByRole('cell', { name: /https:\/\/idp\.example\.test/ }).waitFor();

    await page.getByRole('button', { name: 'Add directory' }).click();
    const ldap = page.getByRole('form', { name: 'Add a directory' });
    await ldap.getByLabel(/Short name/).fill('corp-ad');
    await ldap.getByLabel('Name shown at sign-in').fill('Corporate AD');
    await ldap.getByLabel(/Directory URL/).fill('ldaps://dc1.example.test');
    await ldap.getByLabel('Base DN').fill('DC=example,DC=test');
    await ldap.getByLabel(/Service account password/).fill('directory secret 2');
    await ldap.getByRole('button', { name: 'Save directory' }).click();
    await page.getByText('Saved corp-ad.').waitFor();
    await shot(page, '18-admin-sign-in-providers');

    // Editing without a secret keeps the stored one.
    await page.getByRole('button', { name: 'Edit Example SSO' }).click();
    const edit = page.getByRole('form', { name: 'Edit Example SSO' });
    await edit.getByText('stored; leave empty to keep it').waitFor();
    await edit.getByLabel('Button label').fill('Example sign-in');
    await edit.getByRole('button', { name: 'Save SSO provider' }).click();
    await page.getByText('Saved example-sso.').waitFor();
    const listed = await admin.call<{
      oidc: { displayName: string; hasClientSecret: boolean }[];
      ldap: { hasBindPassword: boolean }[];
    }>('GET', '/api/identity-providers');
    expect(listed.oidc).toEqual([
      expect.objectContaining({ displayName: 'Example sign-in', hasClientSecret: true }),
    ]);
    expect(listed.ldap).toEqual([expect.objectContaining({ hasBindPassword: true })]);
    expect(JSON.stringify(listed)).not.toMatch(/client secret value|directory secret/);

    await page.getByRole('button', { name: 'Remove Corporate AD' }).click();
    await page.getByText('Removed corp-ad.').waitFor();
    await page.getByText('No directory.').waitFor();
    expect(view.problems).toEqual([]);
  });
});
