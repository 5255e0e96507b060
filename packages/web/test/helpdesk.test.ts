// The complete helpdesk recovery in Chromium: identity by an e-mail code read from the SMTP sink,
// device, key id, locate, root cause, the password with the read-back checker, then the device side
// (through the escrow API) rotates and the wizard shows the rotation confirmed. Reports and
// notification settings pages too, with charts under the strict CSP.
import { randomUUID } from 'node:crypto';
import { generateRecoveryPassword } from '@bdevault/bde';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ApiClient,
  chromiumMissing,
  escrowKey,
  openPage,
  seedDevice,
  shot,
  signIn,
  startHarness,
  startSmtpSink,
  type Harness,
  type SeededDevice,
  type Watched,
  waitForHeading,
  describePage,
} from './support.js';

const ADMIN_PASSWORD = 'correct horse battery staple 42';
const BOB_EMAIL = 'bob@example.test';

describe.skipIf(chromiumMissing)('helpdesk recovery wizard in Chromium', () => {
  let h: Harness;
  let sink: Awaited<ReturnType<typeof startSmtpSink>>;
  let admin: ApiClient;
  let view: Watched;
  let device: SeededDevice;
  let bobId: string;

  beforeAll(async () => {
    sink = await startSmtpSink();
    h = await startHarness();
    view = await openPage(h);
  }, 180_000);

  afterAll(async () => {
    await h?.close();
    await sink?.close();
  });

  beforeEach(({ task, onTestFailed }) => {
    onTestFailed(async () => {
      if (!view) return;
      await shot(view.page, `failed-${task.name.slice(0, 40).replace(/\W+/g, '-')}`);
      // CI keeps the log, not the screenshot: say what the page showed.
      console.error(`[web tests] ${task.name} failed ${await describePage(view.page)}`);
    });
  });

  it('the administrator signs in and sets up e-mail on the Notifications page (test send arrives)', async () => {
    const { page } = view;
    await signIn(page, 'admin', h.adminPassword, ADMIN_PASSWORD);
    admin = new ApiClient(h.url);
    await admin.signIn('admin', ADMIN_PASSWORD);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Notifications' }).click();
    await page.getByLabel('SMTP server').fill('127.0.0.1');
    await page.getByLabel('Port', { exact: true }).fill(String(sink.port));
    await page.getByLabel('Encryption').selectOption('none');
    await page.getByLabel('From address').fill('vault@example.test');
    await page.getByLabel(/Security addresses/).fill('security@example.test');
    await page.getByRole('button', { name: 'Save mail settings' }).click();
    await page.getByText('Mail settings saved.').waitFor();
    await page.getByRole('button', { name: 'Send a test e-mail' }).click();
    await expect
      .poll(() => page.getByTestId('test-result').textContent())
      .toMatch(/^(Delivered|Not delivered)/);
    expect(await page.getByTestId('test-result').textContent()).toMatch(/^Delivered/);
    await sink.next('security@example.test', /./);
    await shot(page, '13-admin-notifications');
  });

  it('seeds bob, his device and its key through the API and the escrow API', async () => {
    const created = await admin.call<{ userId: string }>('POST', '/api/users', {
      username: 'bob',
      displayName: 'Bob Builder',
      email: BOB_EMAIL,
    });
    bobId = created.userId;
    device = await seedDevice(admin, 'PC-BOB-01', { group: 'Workshop' });
    await admin.call('PUT', `/api/devices/${device.deviceId}/owner`, { ownerUserId: bobId });
  });

  it('runs the seven steps: e-mail code, device, key id, locate, root cause, password with read-back', async () => {
    const { page } = view;
    await page
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'Recovery cases' })
      .click();
    // The type-ahead finds bob by his display name; the only match is chosen.
    await page.getByLabel('Locked-out user').fill('Bob B');
    const match = page.getByRole('radio', { name: /Bob Builder \(bob\)/ });
    await match.waitFor();
    expect(await match.isChecked()).toBe(true);
    await page.getByTestId('requester-results').getByText('e-mail on file').waitFor();
    await shot(page, '10a-case-requester');
    await page.getByLabel(/Ticket reference/).fill('INC-1042');
    await page.getByRole('button', { name: 'Start recovery case' }).click();

    // 1. identity by e-mail code
    await waitForHeading(page, /Step 1/);
    await page.getByRole('radio', { name: /code by e-mail/ }).check();
    await page.getByRole('button', { name: /Send a code/ }).click();
    // The code follows "helpdesk:"; the case id in the same mail may hold six digits in a row too.
    const mail = await sink.next(BOB_EMAIL, /helpdesk: \d{6}/);
    const code = /helpdesk: (\d{6})/.exec(mail.text)![1]!;
    await page.getByLabel('Code the user reads out').fill(code);
    await shot(page, '11a-wizard-identity');
    await page.getByRole('button', { name: 'Verify code' }).click();

    // 2. device name
    await waitForHeading(page, /Step 2/);
    await page.getByLabel('Device name').fill('PC-BOB-01');
    await page.getByRole('button', { name: 'Record device' }).click();

    // 3. key id (first 8 characters from the preboot screen)
    await waitForHeading(page, /Step 3/);
    await page.getByLabel('Recovery key ID').fill(device.keyId.slice(0, 8));
    await page.getByRole('button', { name: 'Match key ID' }).click();

    // 4. locate
    await waitForHeading(page, /Step 4/);
    await page.getByRole('button', { name: 'Locate the password' }).click();

    // 5. root cause
    await waitForHeading(page, /Step 5/);
    await page.locator('select[name=protectionMode]').selectOption('tpm-pin');
    await page.locator('select[name=forgottenPinOrLostKey]').selectOption('forgot-pin');
    await page.locator('select[name=changeCause]').selectOption('none');
    await page.locator('select[name=unattendedOrExposed]').selectOption('no');
    await page.getByLabel('What happened since?').fill('back from holidays, PIN forgotten');
    await page.getByRole('button', { name: 'Record answers' }).click();

    // 6. provide the password, read-back with one wrong group
    await waitForHeading(page, /Step 6/);
    await page.locator('select[name=reason-code]').selectOption('lost-pin');
    await page.getByRole('button', { name: 'Show the password' }).click();
    const groups = page.getByTestId('recovery-password').locator('.group-digits');
    await groups.first().waitFor();
    const real = device.password.split('-');
    expect(await groups.allTextContents()).toEqual(real);
    await page.getByRole('heading', { name: /Resolution/ }).waitFor();

    const typed = [...real];
    typed[2] = real[2] === '000000' ? '000011' : '000000';
    for (let i = 0; i < 8; i++) await page.getByLabel(`Read-back group ${i + 1}`).fill(typed[i]!);
    await page.getByRole('button', { name: 'Check read-back' }).click();
    await expect(page.getByTestId('read-back-result').textContent()).resolves.toMatch(/Wrong: group 3\b/);
    expect(await page.getByLabel('Read-back group 3').getAttribute('aria-invalid')).toBe('true');
    expect(await page.getByLabel('Read-back group 1').getAttribute('aria-invalid')).toBe('false');
    await shot(page, '11-helpdesk-wizard');
    await page.getByLabel('Read-back group 3').fill(real[2]!);
    await page.getByRole('button', { name: 'Check read-back' }).click();
    await expect(page.getByTestId('read-back-result').textContent()).resolves.toBe('All 8 groups are right.');
    await waitForHeading(page, /Step 7/);
    await expect(page.getByTestId('rotation-status').textContent()).resolves.toMatch(
      /Waiting for the device/,
    );
  });

  it('the device rotates through the escrow API and the wizard shows the rotation confirmed', async () => {
    const { page } = view;
    const checkIn = await admin.call<{
      actions: { type: string; rotationId: string; recoveryKeyId: string }[];
    }>('POST', '/api/escrow/check-in', { agentVersion: 'test' }, device.credential);
    const action = checkIn.actions.find((a) => a.type === 'rotate-recovery-password');
    expect(action).toBeDefined();
    const next = { keyId: randomUUID().toUpperCase(), password: generateRecoveryPassword() };
    await escrowKey(admin, device.credential, device.volumeGuid, next);
    await admin.call(
      'POST',
      `/api/escrow/rotations/${action!.rotationId}/result`,
      { outcome: 'completed', newRecoveryKeyId: next.keyId, oldProtectorRemoved: true },
      device.credential,
    );
    await page.getByText(/Rotation confirmed/).waitFor({ timeout: 15_000 });
    await shot(page, '12-helpdesk-wizard-rotated');
    // The device page shows the old key replaced and the new one current.
    await page.goto(`/devices/${device.deviceId}`);
    await page.getByText(next.keyId).waitFor();
    await page.locator('.timeline .tl-rotation').first().waitFor();
  });

  it('reports draw their charts under the CSP and offer CSV', async () => {
    const { page } = view;
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Reports' }).click();
    await page.getByRole('heading', { name: 'Reports' }).waitFor();
    await page.locator('canvas').first().waitFor();
    await expect.poll(() => page.locator('canvas').count()).toBeGreaterThanOrEqual(3);
    const href = await page.getByRole('link', { name: 'Download CSV' }).first().getAttribute('href');
    const res = await page.request.get(href!);
    expect(res.status()).toBe(200);
    expect(res.headers()['content-type']).toMatch(/csv/);
    await shot(page, '14-reports');
    expect(await page.evaluate('window.__csp || []')).toEqual([]);
    expect(view.problems).toEqual([]);
  });
});
