// Self-service in Chromium, the cases portal.test.ts leaves out: one of your own devices with no key
// escrowed gets its own clear page, and a shown recovery password clears itself after its timeout
// (time driven with Playwright's clock, so the test does not wait the minute).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ApiClient,
  chromiumMissing,
  describePage,
  openPage,
  seedDevice,
  shot,
  signIn,
  startHarness,
  type Harness,
  type SeededDevice,
  type Watched,
} from './support.js';

const ADMIN_PASSWORD = 'correct horse battery staple 42';
const SAM_PASSWORD = 'my laptop, my recovery key';

describe.skipIf(chromiumMissing)('self-service pages in Chromium', () => {
  let h: Harness;
  let admin: ApiClient;
  let view: Watched;
  let withKey: SeededDevice;
  let noKeyId: string;

  beforeAll(async () => {
    h = await startHarness();
    const first = await openPage(h);
    await signIn(first.page, 'admin', h.adminPassword, ADMIN_PASSWORD);
    await first.context.close();
    admin = new ApiClient(h.url);
    await admin.signIn('admin', ADMIN_PASSWORD);
    const sam = await admin.call<{ userId: string; oneTimePassword: string }>('POST', '/api/users', {
      username: 'sam',
      displayName: 'Sam Owner',
    });
    // One device with its key escrowed, one enrolled whose agent never escrowed a key.
    withKey = await seedDevice(admin, 'PC-SAM-01');
    const token = await admin.call<{ enrollmentToken: string }>('POST', '/api/enrollment-tokens', {
      maxUses: 1,
    });
    noKeyId = (
      await admin.call<{ deviceId: string }>(
        'POST',
        '/api/escrow/enroll',
        { device: { name: 'PC-SAM-NEW', os: 'Windows 11 Pro' } },
        token.enrollmentToken,
      )
    ).deviceId;
    for (const id of [withKey.deviceId, noKeyId]) {
      await admin.call('PUT', `/api/devices/${id}/owner`, { ownerUserId: sam.userId });
    }
    view = await openPage(h);
    await signIn(view.page, 'sam', sam.oneTimePassword, SAM_PASSWORD);
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  beforeEach(({ task, onTestFailed }) => {
    onTestFailed(async () => {
      if (!view) return;
      await shot(view.page, `failed-self-${task.name.slice(0, 40).replace(/\W+/g, '-')}`);
      console.error(`[web tests] ${task.name} failed ${await describePage(view.page)}`);
    });
  });

  it('a device of mine with no escrowed key shows the "no key escrowed" page', async () => {
    const { page } = view;
    await page.getByRole('heading', { name: 'My devices' }).waitFor();
    await page.getByRole('link', { name: 'View BitLocker keys of PC-SAM-NEW' }).click();
    await page.getByRole('heading', { name: 'PC-SAM-NEW: BitLocker keys' }).waitFor();
    const notice = page.getByTestId('no-key');
    await notice.getByRole('heading', { name: 'No key escrowed for PC-SAM-NEW' }).waitFor();
    await expect(notice.textContent()).resolves.toMatch(/bdevault holds no BitLocker recovery key for it/);
    await expect(notice.textContent()).resolves.toMatch(/Contact the helpdesk/);
    // No key table, no password button, no error.
    expect(await page.getByRole('table').count()).toBe(0);
    expect(await page.getByRole('button', { name: /View recovery password/ }).count()).toBe(0);
    expect(await page.getByRole('alert').count()).toBe(0);
    expect(new URL(page.url()).pathname).toBe(`/my-devices/${noKeyId}`);
    await shot(page, '34-self-service-no-key');
    expect(view.problems).toEqual([]);
  });

  it('the shown recovery password clears itself after 60 seconds', async () => {
    const { page } = view;
    // Fake timers from the page's start, so the view's countdown runs on the test's clock.
    await page.clock.install();
    await page.goto(`/my-devices/${withKey.deviceId}`);
    await page.getByText(withKey.keyId).waitFor();
    await page.getByRole('button', { name: /View recovery password/ }).click();
    await page.getByLabel('Reason').selectOption('Lost PIN');
    await page.getByRole('button', { name: 'Show password' }).click();
    const groups = page.getByTestId('recovery-password').locator('.group-digits');
    await groups.first().waitFor();
    expect(await groups.allTextContents()).toEqual(withKey.password.split('-'));
    const countdown = page.getByText(/^Hides in \d+ s/);
    const secondsLeft = async () => Number(/Hides in (\d+) s/.exec((await countdown.textContent())!)![1]);
    expect(await secondsLeft()).toBeGreaterThan(50);

    // Half-way: still shown, the countdown follows.
    await page.clock.fastForward('00:30');
    await expect.poll(secondsLeft).toBeLessThanOrEqual(30);
    expect(await secondsLeft()).toBeGreaterThan(20);
    expect(await page.getByTestId('recovery-password').count()).toBe(1);
    await shot(page, '35-self-service-password-countdown');

    // Past the minute: gone from the page, and it says why.
    await page.clock.fastForward('00:31');
    await page.getByText('The password was hidden after 60 seconds.').waitFor();
    expect(await page.getByTestId('recovery-password').count()).toBe(0);
    const text = (await page.locator('main').textContent())!;
    for (const group of withKey.password.split('-')) expect(text).not.toContain(group);
    await shot(page, '36-self-service-password-cleared');
    expect(view.problems).toEqual([]);
  });
});
