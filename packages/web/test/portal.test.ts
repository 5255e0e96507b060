// The portal end to end in Chromium against the real server: first sign-in, self-service recovery
// with the policy off and the refusal with it on, a scoped role assignment, the audit log and its chain.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ApiClient,
  chromiumMissing,
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
const USER_PASSWORD = 'a long and private passphrase';

describe.skipIf(chromiumMissing)('portal in Chromium', () => {
  let h: Harness;
  let admin: ApiClient;
  let adminView: Watched;
  const devices: Record<string, SeededDevice> = {};
  const oneTime: Record<string, string> = {};

  beforeAll(async () => {
    h = await startHarness();
    adminView = await openPage(h);
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  // A failing step leaves a picture of the administrator's page behind.
  beforeEach(({ task, onTestFailed }) => {
    onTestFailed(async () => {
      if (adminView) await shot(adminView.page, `failed-${task.name.slice(0, 40).replace(/\W+/g, '-')}`);
    });
  });

  it('serves the portal with a strict CSP and no inline script', async () => {
    const res = await fetch(`${h.url}/devices/anything`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|style=/);
    const api404 = await fetch(`${h.url}/api/no-such-route`);
    expect(api404.status).toBe(404);
    expect(((await api404.json()) as { error: { code: string } }).error.code).toBe('NOT_FOUND');
  });

  it('the first administrator signs in with the one-time password and must change it', async () => {
    const { page } = adminView;
    await page.goto('/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await shot(page, '01-sign-in');
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password', { exact: true }).fill('wrong password here');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(
      /user name or password is not right.*req_/i,
    );
    await signIn(page, 'admin', h.adminPassword, ADMIN_PASSWORD);
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    admin = new ApiClient(h.url);
    await admin.signIn('admin', ADMIN_PASSWORD);
  });

  it('seeds devices through the escrow API (enrollment token → device → escrow)', async () => {
    devices.alice = await seedDevice(admin, 'PC-ALICE-01', { group: 'Europe', owner: 'alice@example.test' });
    devices.eu2 = await seedDevice(admin, 'PC-EU-02', { group: 'Europe' });
    devices.us1 = await seedDevice(admin, 'PC-US-01', { group: 'Americas' });
    devices.us2 = await seedDevice(admin, 'PC-US-02', { group: 'Americas' });
  });

  it('the administrator adds users through the Users page (one-time passwords shown once)', async () => {
    const { page } = adminView;
    for (const username of ['alice', 'eu-helpdesk']) {
      await page.getByRole('link', { name: 'Users' }).click();
      await page.getByLabel('User name').fill(username);
      await page.getByRole('button', { name: 'Add user' }).click();
      const secret = page.getByTestId('shown-once');
      await secret.waitFor();
      oneTime[username] = (await secret.textContent())!;
      await page.getByRole('button', { name: 'Done' }).click();
      await page.getByRole('cell', { name: new RegExp(`^${username}`) }).waitFor();
    }
    await shot(page, '08-admin-users');
  });

  it("the administrator edits a user's display name and e-mail after creation", async () => {
    const { page } = adminView;
    await page.getByRole('button', { name: 'Edit alice' }).click();
    const form = page.getByRole('form', { name: 'Edit alice' });
    await form.getByLabel('Display name').fill('Alice Archer');
    await form.getByLabel(/E-mail/).fill('not an address');
    await form.getByRole('button', { name: 'Save' }).click();
    // The browser refuses it before the server sees it.
    expect(await form.getByLabel(/E-mail/).evaluate((el) => (el as HTMLInputElement).validity.valid)).toBe(
      false,
    );
    await form.getByLabel(/E-mail/).fill('alice.archer@example.test');
    await form.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved alice.').waitFor();
    await page.getByText('alice.archer@example.test').waitFor();
    await shot(page, '08b-admin-user-edited');
    const { users } = await admin.call<{
      users: { username: string; displayName: string; email?: string }[];
    }>('GET', '/api/users');
    expect(users.find((u) => u.username === 'alice')).toMatchObject({
      displayName: 'Alice Archer',
      email: 'alice.archer@example.test',
    });
    // Emptying the field removes the address.
    await page.getByRole('button', { name: 'Edit alice' }).click();
    await form.getByLabel(/E-mail/).fill('');
    await form.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved alice.').waitFor();
    await expect.poll(() => page.getByText('alice.archer@example.test').count()).toBe(0);
  });

  it('the administrator makes alice the owner of her device on the device page', async () => {
    const { page } = adminView;
    await page.getByRole('link', { name: 'Devices', exact: true }).click();
    await page.getByRole('heading', { name: 'Devices', exact: true }).waitFor();
    await page.getByLabel('Name', { exact: true }).fill('PC-ALICE');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('link', { name: 'PC-ALICE-01' }).click();
    await page.getByRole('heading', { name: 'PC-ALICE-01' }).waitFor();
    await page.locator('select[name=owner]').selectOption({ label: 'alice (Alice Archer)' });
    await page.getByRole('button', { name: 'Change owner' }).click();
    await page.getByText('Owner changed.').waitFor();
    await page.getByText(devices.alice!.keyId).waitFor();
  });

  it('self-service with the policy off: alice finds her key by device and by key id, and sees the password', async () => {
    const alice = await openPage(h);
    const { page } = alice;
    await signIn(page, 'alice', oneTime.alice!, USER_PASSWORD);
    await page.getByRole('heading', { name: 'My devices' }).waitFor();
    await page.getByRole('link', { name: 'View BitLocker keys of PC-ALICE-01' }).click();
    await page.getByText(devices.alice!.keyId).waitFor();
    await page.getByRole('button', { name: /View recovery password/ }).click();
    await page.getByLabel('Reason').selectOption('Lost PIN');
    await page.getByLabel(/Note/).fill('forgot the PIN after holidays');
    await page.getByRole('button', { name: 'Show password' }).click();
    const groups = page.getByTestId('recovery-password').locator('.group-digits');
    await groups.first().waitFor();
    expect(await groups.allTextContents()).toEqual(devices.alice!.password.split('-'));
    await shot(page, '02-self-service-password');

    // Leaving the tab hides it.
    await page.evaluate(`(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    })()`);
    await page.getByText('The password was hidden because you left the page.').waitFor();
    expect(await page.getByTestId('recovery-password').count()).toBe(0);
    await page.evaluate(`(() => { delete document.visibilityState; })()`);

    // The preboot screen's key id, first 8 characters.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'My devices' }).click();
    await page.getByLabel(/Recovery key ID/).fill(devices.alice!.keyId.slice(0, 8));
    await page.getByRole('button', { name: 'Find my key' }).click();
    await page.getByText(devices.alice!.keyId).waitFor();
    await shot(page, '03-self-service-key-id');
    // A key id that is not hers says so.
    await page.goto(`/recover?keyId=${devices.us1!.keyId.slice(0, 8)}`);
    await page.getByTestId('no-key').waitFor();

    // Phone width.
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto('/my-devices');
    await page.getByRole('heading', { name: 'My devices' }).waitFor();
    await shot(page, '04-self-service-phone');
    expect(alice.problems).toEqual([]);
    await alice.context.close();
  });

  it('self-service with the policy on: the refusal page', async () => {
    const { page } = adminView;
    await page.getByRole('link', { name: 'Policies' }).click();
    const box = page.getByLabel(/Restrict users from recovering/);
    await box.check();
    await page.getByText('Saved.').waitFor();
    expect(await box.isChecked()).toBe(true);
    // What the refusal page tells users: the administrator's text and link.
    await page.getByLabel(/Contact link/).fill('javascript:alert(1)');
    await page.getByRole('button', { name: 'Save contact' }).click();
    expect(
      await page.getByLabel(/Contact link/).evaluate((el) => (el as HTMLInputElement).validity.valid),
    ).toBe(false);
    await page.getByLabel(/Contact text/).fill('Call the service desk on 555-0100,\nweekdays 8–18.');
    await page.getByLabel(/Contact link/).fill('https://help.example.test/bitlocker');
    await page.getByRole('button', { name: 'Save contact' }).click();
    await page.getByText('Saved.').waitFor();
    const saved = await admin.call<{ selfServiceContactLink: string | null }>(
      'GET',
      '/api/organization/settings',
    );
    expect(saved.selfServiceContactLink).toBe('https://help.example.test/bitlocker');
    await shot(page, '09-admin-policies');

    const alice = await openPage(h);
    await signIn(alice.page, 'alice', USER_PASSWORD);
    await alice.page.getByRole('link', { name: 'View BitLocker keys of PC-ALICE-01' }).click();
    await alice.page.getByTestId('self-service-restricted').waitFor();
    expect(await alice.page.getByTestId('self-service-restricted').textContent()).toMatch(
      /contact the helpdesk/i,
    );
    const contact = alice.page.getByTestId('self-service-contact');
    await expect(contact.textContent()).resolves.toContain('Call the service desk on 555-0100');
    expect(await contact.getByRole('link').getAttribute('href')).toBe('https://help.example.test/bitlocker');
    await shot(alice.page, '05-self-service-restricted');
    expect(alice.problems).toEqual([]);
    await alice.context.close();

    await box.uncheck();
    await page.getByText('Saved.').waitFor();
  });

  it('a scoped role assignment: the Europe helpdesk sees only Europe devices', async () => {
    const { page } = adminView;
    await page.getByRole('link', { name: 'Roles & groups' }).click();
    await page.locator('select[name=assign-user]').selectOption({ label: 'eu-helpdesk' });
    await page.locator('select[name=assign-role]').selectOption({ label: 'Helpdesk Advanced' });
    await page.getByRole('checkbox', { name: 'Europe' }).check();
    await page.getByRole('button', { name: 'Assign' }).click();
    await page.getByTestId('assignments').getByRole('cell', { name: 'Groups: Europe' }).waitFor();
    await shot(page, '10-admin-roles');

    const helpdesk = await openPage(h);
    const hp = helpdesk.page;
    await signIn(hp, 'eu-helpdesk', oneTime['eu-helpdesk']!, USER_PASSWORD);
    await hp.getByRole('link', { name: 'Devices', exact: true }).click();
    await hp.getByRole('heading', { name: 'Devices', exact: true }).waitFor();
    await hp.getByLabel('Name', { exact: true }).fill('PC-');
    await hp.getByRole('button', { name: 'Search' }).click();
    await hp.getByRole('link', { name: 'PC-EU-02' }).waitFor();
    const names = await hp.locator('table tbody tr td:first-child a').allTextContents();
    expect(names.sort()).toEqual(['PC-ALICE-01', 'PC-EU-02']);
    // By owner: the server matches alice's username prefix, within the helpdesk's scope.
    await hp.locator('select[name=by]').selectOption('owner');
    await hp.getByLabel(/Owner \(username/).fill('ALI');
    await hp.getByRole('button', { name: 'Search' }).click();
    // PC-ALICE-01 is already listed by the name search: wait for the owner search's own results.
    await hp.getByRole('link', { name: 'PC-EU-02' }).waitFor({ state: 'detached' });
    await hp.getByRole('link', { name: 'PC-ALICE-01' }).waitFor();
    expect(await hp.locator('table tbody tr td:first-child a').allTextContents()).toEqual(['PC-ALICE-01']);
    await shot(hp, '15-devices-by-owner');
    // A key id of an Americas device is not found either.
    await hp.locator('select[name=by]').selectOption('keyid');
    await hp.getByLabel('Key ID', { exact: true }).fill(devices.us1!.keyId.slice(0, 8));
    await hp.getByRole('button', { name: 'Search' }).click();
    await hp.getByText(/No recovery key ID starts with/).waitFor();
    expect(helpdesk.problems).toEqual([]);
    await helpdesk.context.close();
  });

  it('the device page: volumes, key history, timeline, and a disclosure by the administrator', async () => {
    const { page } = adminView;
    await page.goto(`/devices/${devices.eu2!.deviceId}`);
    await page.getByRole('heading', { name: 'PC-EU-02' }).waitFor();
    await page.getByRole('heading', { name: 'Volumes' }).waitFor();
    await page.getByRole('button', { name: /View recovery password/ }).click();
    await page.getByLabel('Reason').selectOption('TPM reset');
    await page.getByRole('button', { name: 'Show password' }).click();
    await page.getByTestId('recovery-password').waitFor();
    await page.getByRole('button', { name: 'Hide now' }).click();
    await page.reload();
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    await page.locator('.timeline .tl-disclosure').first().waitFor();
    await shot(page, '06-device-page');
  });

  it('the audit log: newest first from the server, older pages, a filter, the export and the chain', async () => {
    const { page } = adminView;
    // More than a page: each enrollment token is one audit entry, newer than the disclosures.
    for (let i = 0; i < 60; i++) await admin.call('POST', '/api/enrollment-tokens', { maxUses: 1 });
    const newest = await admin.call<{ entries: { seq: number }[] }>(
      'GET',
      '/api/audit-log?order=desc&limit=1',
    );

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    const rows = page.locator('table.audit-table tbody tr');
    await rows.first().waitFor();
    expect(await rows.count()).toBe(50);
    const seqs = async () => (await rows.locator('td:first-child').allTextContents()).map(Number);
    expect((await seqs())[0]).toBe(newest.entries[0]!.seq);
    await page.getByRole('button', { name: 'Load 50 older entries' }).click();
    await expect.poll(() => rows.count()).toBeGreaterThan(50);
    const all = await seqs();
    expect(all).toEqual([...all].sort((a, b) => b - a));
    expect(new Set(all).size).toBe(all.length);

    // The server filters: only the disclosures, the administrator's (newer) first, then alice's.
    const filters = page.getByRole('form', { name: 'Filters' });
    await filters.getByLabel('Action').selectOption('recovery-key.disclosed');
    await filters.getByRole('button', { name: 'Apply filters' }).click();
    await expect.poll(() => rows.count()).toBe(2);
    expect(await page.locator('tbody tr[data-action="recovery-key.disclosed"]').count()).toBe(2);
    const reasons = await rows.locator('td:last-child').allTextContents();
    expect(reasons[0]).toContain('TPM reset');
    expect(reasons[1]).toContain('Lost PIN: forgot the PIN after holidays');
    expect(page.url()).toContain('action=recovery-key.disclosed');
    await expect(page.getByTestId('audit-count').textContent()).resolves.toMatch(/^2 entries shown/);

    // The export is the server's, with the same filter.
    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export CSV' }).click(),
    ]);
    expect(csv.suggestedFilename()).toMatch(/^bdevault-audit-log-\d{4}-\d\d-\d\d\.csv$/);
    const lines = readFileSync((await csv.path())!, 'utf8')
      .trimEnd()
      .split('\n');
    expect(lines[0]).toMatch(/^seq,id,organization_id,occurred_at,/);
    expect(lines).toHaveLength(3);
    expect(lines.slice(1).every((l) => l.includes(',recovery-key.disclosed,'))).toBe(true);
    const [jsonl] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Export JSON lines' }).click(),
    ]);
    const records = readFileSync((await jsonl.path())!, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { action: string; hash: string });
    expect(records.map((r) => r.action)).toEqual(['recovery-key.disclosed', 'recovery-key.disclosed']);
    // Each export is itself recorded.
    const exported = await admin.call<{ entries: { details: { format: string; action: string } }[] }>(
      'GET',
      '/api/audit-log?order=desc&action=audit-log.exported',
    );
    expect(exported.entries.map((e) => e.details)).toEqual([
      { format: 'jsonl', action: 'recovery-key.disclosed' },
      { format: 'csv', action: 'recovery-key.disclosed' },
    ]);

    await page.getByRole('button', { name: 'Verify chain' }).click();
    await expect(page.getByTestId('chain-verdict').textContent()).resolves.toMatch(/^Chain verified/);
    await shot(page, '07-audit-log');

    // A filter nothing matches says so; clearing the filters brings the newest entries back.
    await filters.locator('input[name=actor]').fill('nobody-by-this-name');
    await filters.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No entry matches these filters.').waitFor();
    await filters.getByRole('button', { name: 'Clear filters' }).click();
    await expect.poll(() => rows.count()).toBe(50);
    expect(adminView.problems).toEqual([]);
  });
});
