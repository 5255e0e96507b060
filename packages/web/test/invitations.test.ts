// Inviting an existing account in Chromium: another organization's administrator invites, the
// technician accepts on My account, and the account-wide buttons stay with its home organization.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
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
const TECH_PASSWORD = 'a field engineer passphrase of some length';
const ADMIN_B_PASSWORD = 'customer b administrator passphrase';

describe.skipIf(chromiumMissing)('invitations in Chromium', () => {
  let h: Harness;
  let adminB: Watched;
  let techView: Watched;
  let orgB: string;

  beforeAll(async () => {
    h = await startHarness();
    const admin = new ApiClient(h.url);
    await admin.signIn('admin', h.adminPassword);
    await admin.call('POST', '/api/auth/change-password', {
      currentPassword: h.adminPassword,
      newPassword: ADMIN_PASSWORD,
    });
    // The technician's account lives in the first organization (the MSP).
    const tech = await admin.call<{ oneTimePassword: string }>('POST', '/api/users', { username: 'tech' });
    const techClient = new ApiClient(h.url);
    await techClient.signIn('tech', tech.oneTimePassword);
    await techClient.call('POST', '/api/auth/change-password', {
      currentPassword: tech.oneTimePassword,
      newPassword: TECH_PASSWORD,
    });
    // A customer organization with its own administrator (organizations are made at the console).
    const services = h.server.vault.services;
    orgB = 'org_' + 'b'.repeat(26);
    await services.organizations.insert({
      id: orgB,
      name: 'Customer B',
      created_at: new Date().toISOString(),
    });
    const { userId } = await services.identity.createUser({
      organizationId: orgB,
      username: 'b-admin',
      password: ADMIN_B_PASSWORD,
      permissions: [],
      mustChangePassword: false,
    });
    await services.access.createAssignment(
      orgB,
      { roleId: 'organization-administrator', userId },
      { type: 'cli', id: null },
    );
    adminB = await openPage(h);
    techView = await openPage(h);
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  beforeEach(({ task, onTestFailed }) => {
    onTestFailed(async () => {
      const name = task.name.slice(0, 40).replace(/\W+/g, '-');
      if (adminB) await shot(adminB.page, `failed-inv-admin-${name}`);
      if (techView) await shot(techView.page, `failed-inv-tech-${name}`);
    });
  });

  it("B's administrator invites the technician and an unknown name: the same answer for both", async () => {
    const { page } = adminB;
    await signIn(page, 'b-admin', ADMIN_B_PASSWORD);
    await page.getByRole('link', { name: 'Users' }).click();
    const form = page.getByRole('form', { name: 'Invite an existing account' });
    const sent: string[] = [];
    for (const name of ['tech', 'nobody-by-this-name']) {
      await form.getByLabel('Account to invite').fill(name);
      await form.getByLabel('Role').selectOption({ label: 'Helpdesk' });
      await form.getByRole('button', { name: 'Send invitation' }).click();
      const status = page.getByText(`Invitation recorded for ${name}.`);
      await status.waitFor();
      sent.push((await status.textContent())!.replace(name, 'NAME'));
    }
    expect(sent[1]).toBe(sent[0]);
    const pending = page.getByTestId('invitations');
    await pending.getByRole('cell', { name: 'tech', exact: true }).waitFor();
    await pending.getByRole('cell', { name: 'nobody-by-this-name', exact: true }).waitFor();
    await shot(page, '20-invite-existing-account');
    await page.getByRole('button', { name: 'Revoke the invitation of nobody-by-this-name' }).click();
    await expect
      .poll(() => pending.getByRole('cell', { name: 'nobody-by-this-name', exact: true }).count())
      .toBe(0);
  });

  it('the technician sees the invitation on My account and accepts it', async () => {
    const { page } = techView;
    await signIn(page, 'tech', TECH_PASSWORD);
    // The account link says there is something to answer, in words for screen readers too.
    const accountLink = page.getByRole('link', { name: 'tech 1 pending invitation', exact: true });
    await accountLink.waitFor();
    expect(await page.getByTestId('invitation-count').textContent()).toBe('1 pending invitation');
    await accountLink.click();
    const invitations = page.getByTestId('my-invitations');
    await invitations.getByText(/Customer B invites you as Helpdesk/).waitFor();
    await shot(page, '21-account-invitation');
    await page.getByRole('button', { name: 'Accept the invitation of Customer B' }).click();
    await page.getByText('You joined Customer B.').waitFor();
    await page.getByRole('heading', { name: 'Organizations' }).waitFor();
    await page.getByRole('button', { name: 'Switch' }).waitFor();
    await expect.poll(() => page.getByTestId('my-invitations').count()).toBe(0);
    // Answered: once the person leaves the account page, the link no longer counts it.
    await page.getByRole('link', { name: 'My devices' }).click();
    await page.getByRole('heading', { name: 'My devices' }).waitFor();
    await page.getByRole('link', { name: 'tech', exact: true }).waitFor();
    expect(await page.getByTestId('invitation-count').count()).toBe(0);
  });

  it("in B the technician's row offers only membership actions, and says why", async () => {
    const { page } = adminB;
    await page.reload();
    await page.getByRole('heading', { name: 'Users' }).waitFor();
    const row = page.getByRole('row').filter({ has: page.getByRole('cell', { name: /^tech/ }) });
    await row.getByTestId('managed-elsewhere').waitFor();
    expect(await row.getByTestId('managed-elsewhere').textContent()).toMatch(
      /Another organization manages this account/,
    );
    for (const name of ['Reset password', 'Disable', 'Sign out everywhere', 'Edit tech']) {
      expect(await row.getByRole('button', { name }).count(), name).toBe(0);
    }
    await row.getByRole('button', { name: 'Suspend tech here' }).waitFor();
    await row.getByRole('button', { name: 'Remove tech from this organization' }).waitFor();
    // B's own account keeps the account-wide actions.
    const own = page.getByRole('row').filter({ has: page.getByRole('cell', { name: /^b-admin/ }) });
    await own.getByRole('button', { name: 'Reset password' }).waitFor();
    await shot(page, '22-managed-elsewhere');
    // The pending list no longer shows the accepted invitation.
    await page.getByRole('heading', { name: 'Pending invitations' }).waitFor();
    expect(await page.getByRole('cell', { name: 'tech', exact: true }).count()).toBe(0);
  });

  it('B removes the technician from B after confirming; the account stays', async () => {
    const { page } = adminB;
    await page.getByRole('button', { name: 'Remove tech from this organization' }).click();
    await page.getByRole('button', { name: 'Yes, remove from this organization' }).click();
    await expect.poll(() => page.getByRole('cell', { name: /^tech/ }).count()).toBe(0);
    const tech = new ApiClient(h.url);
    await tech.signIn('tech', TECH_PASSWORD);
    const { organizations } = await tech.call<{ organizations: { name: string }[] }>(
      'GET',
      '/api/me/organizations',
    );
    expect(organizations.map((o) => o.name)).not.toContain('Customer B');
  });

  it('produced no CSP violation or page error', () => {
    expect(adminB.problems).toEqual([]);
    expect(techView.problems).toEqual([]);
  });
});
