// Administration in Chromium beyond users and scoped assignments: a custom role from a permission set
// and a device group, the Tokens page (secrets shown once, a token revoked), every policy control
// checked through the API, webhooks delivered to a receiver on loopback, and the audit log's exports
// holding exactly what the filters show.
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { Page } from 'playwright-core';
import { Secret, TOTP } from 'otpauth';
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
const READER_PASSWORD = 'reads the audit log every day';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on loopback: answers 204 and keeps every request. */
async function startReceiver() {
  const requests: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/hooks/bdevault`,
    requests,
    async next(event: string, timeoutMs = 15_000): Promise<Received> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = requests.find((r) => r.headers['x-bdevault-event'] === event);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no webhook request for ${event}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The receiver's own check of `t=…,v1=…`: HMAC-SHA256 over `${t}.${body}` with the shown secret. */
function signatureValid(secret: string, r: Received): boolean {
  const header = String(r.headers['x-bdevault-signature'] ?? '');
  const t = /(?:^|,)t=(\d+)/.exec(header)?.[1];
  const v1 = /(?:^|,)v1=([0-9a-f]{64})/.exec(header)?.[1];
  if (!t || !v1) return false;
  return createHmac('sha256', secret).update(`${t}.${r.body}`).digest('hex') === v1;
}

/** A fresh sign-in's session state, through the public API. */
async function freshSignInState(baseUrl: string, username: string, password: string): Promise<string> {
  const res = await fetch(`${baseUrl}/api/auth/sign-in`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  if (!res.ok) throw new Error(`sign-in ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { state: string }).state;
}

/** RFC 4180 rows (quoted fields may hold commas, quotes and line breaks). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
    } else field += c;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

async function nav(page: Page, label: string) {
  await page
    .getByRole('navigation', { name: 'Main' })
    .getByRole('link', { name: label, exact: true })
    .click();
}

/** What a download holds, as text. */
async function downloadText(page: Page, link: string): Promise<{ name: string; text: string }> {
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: link }).click(),
  ]);
  return { name: download.suggestedFilename(), text: readFileSync((await download.path())!, 'utf8') };
}

describe.skipIf(chromiumMissing)('administration pages in Chromium', () => {
  let h: Harness;
  let view: Watched;
  let admin: ApiClient;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let adminId: string;
  let financeGroupId: string;
  let disclosed: SeededDevice;

  beforeAll(async () => {
    receiver = await startReceiver();
    h = await startHarness();
    view = await openPage(h);
    await signIn(view.page, 'admin', h.adminPassword, ADMIN_PASSWORD);
    admin = new ApiClient(h.url);
    await admin.signIn('admin', ADMIN_PASSWORD);
    adminId = (await admin.call<{ userId: string }>('GET', '/api/auth/me')).userId;
  }, 180_000);

  afterAll(async () => {
    await h?.close();
    await receiver?.close();
  });

  beforeEach(({ task, onTestFailed }) => {
    onTestFailed(async () => {
      if (!view) return;
      await shot(view.page, `failed-admin-${task.name.slice(0, 40).replace(/\W+/g, '-')}`);
      console.error(`[web tests] ${task.name} failed ${await describePage(view.page)}`);
    });
  });

  it('creates a device group and a custom role from a permission set, and assigns it scoped to the group', async () => {
    const { page } = view;
    const rita = await admin.call<{ userId: string; oneTimePassword: string }>('POST', '/api/users', {
      username: 'rita',
      displayName: 'Rita Reader',
    });
    await nav(page, 'Roles & groups');
    await page.getByRole('heading', { name: 'Roles & groups' }).waitFor();

    // A device group, made on the page; devices join it through an enrollment token naming it.
    const groupForm = page.getByRole('form', { name: 'New device group' });
    await groupForm.getByLabel('New group').fill('Finance laptops');
    await groupForm.getByRole('button', { name: 'Create group' }).click();
    const groups = page.getByRole('region', { name: 'Device groups' });
    await groups.getByText('Finance laptops', { exact: true }).waitFor();
    const { deviceGroups } = await admin.call<{ deviceGroups: { id: string; name: string }[] }>(
      'GET',
      '/api/device-groups',
    );
    financeGroupId = deviceGroups.find((g) => g.name === 'Finance laptops')!.id;
    await seedDevice(admin, 'PC-FIN-01', { group: 'Finance laptops' });
    await seedDevice(admin, 'PC-OPS-01');
    await groups.getByRole('button', { name: 'Members of Finance laptops' }).click();
    await groups.getByText(/^1 device\(s\)/).waitFor();

    // A custom role: a name, a description and three permissions.
    const roleForm = page.getByRole('form', { name: 'New custom role' });
    await roleForm.getByLabel('Name', { exact: true }).fill('Key auditor');
    await roleForm.getByLabel('Description').fill('Reads devices, key metadata and the audit log');
    expect(await roleForm.getByRole('button', { name: 'Create role' }).isDisabled()).toBe(true);
    for (const p of ['devices:read', 'keys:read-metadata', 'audit:read']) {
      await roleForm.getByRole('checkbox', { name: p, exact: true }).check();
    }
    await roleForm.getByRole('button', { name: 'Create role' }).click();
    const card = page
      .getByRole('listitem')
      .filter({ has: page.getByRole('heading', { name: /^Key auditor/ }) });
    await card.getByText('custom', { exact: true }).waitFor();
    const { roles } = await admin.call<{
      roles: { id: string; name: string; permissions: string[]; builtIn: boolean }[];
    }>('GET', '/api/roles');
    const role = roles.find((r) => r.name === 'Key auditor')!;
    expect(role.builtIn).toBe(false);
    expect([...role.permissions].sort()).toEqual(['audit:read', 'devices:read', 'keys:read-metadata']);
    // The form is empty again for the next role.
    expect(await roleForm.getByLabel('Name', { exact: true }).inputValue()).toBe('');

    // Assigned to rita for the Finance group only.
    await page.locator('select[name=assign-user]').selectOption({ label: 'rita' });
    await page.locator('select[name=assign-role]').selectOption({ label: 'Key auditor' });
    await page
      .getByRole('form', { name: 'Assign a role' })
      .getByRole('checkbox', { name: 'Finance laptops' })
      .check();
    // The page says what a group-scoped assignment of this role does not give.
    await expect(page.getByTestId('scope-note').textContent()).resolves.toMatch(
      /only its device and key permissions.*audit:read is about the whole organization/,
    );
    await page.getByRole('button', { name: 'Assign' }).click();
    const row = page.getByTestId('assignments').getByRole('row').filter({ hasText: 'Key auditor' });
    await row.getByRole('cell', { name: 'Groups: Finance laptops' }).waitFor();
    await row.getByRole('cell', { name: 'rita', exact: true }).waitFor();
    await shot(page, '23-admin-custom-role');
    const { roleAssignments } = await admin.call<{
      roleAssignments: { userId: string | null; roleId: string; deviceGroupIds: string[] | null }[];
    }>('GET', '/api/role-assignments');
    expect(roleAssignments).toContainEqual(
      expect.objectContaining({ userId: rita.userId, roleId: role.id, deviceGroupIds: [financeGroupId] }),
    );

    // It took effect: rita has the role's device permissions, on the group's devices only.
    const ritaApi = new ApiClient(h.url);
    await ritaApi.signIn('rita', rita.oneTimePassword);
    await ritaApi.call('POST', '/api/auth/change-password', {
      currentPassword: rita.oneTimePassword,
      newPassword: READER_PASSWORD,
    });
    await ritaApi.signIn('rita', READER_PASSWORD);
    const me = await ritaApi.call<{ permissions: string[] }>('GET', '/api/auth/me');
    expect([...me.permissions].sort()).toEqual(['devices:read', 'keys:read-metadata']);
    await expect(ritaApi.call('GET', '/api/audit-log')).rejects.toThrow(/ 403: /);
    const seen = await ritaApi.call<{ devices: { name: string }[] }>(
      'GET',
      '/api/devices?name=PC-&match=prefix',
    );
    expect(seen.devices.map((d) => d.name)).toEqual(['PC-FIN-01']);
    expect(view.problems).toEqual([]);
  });

  it('Tokens: an enrollment token and an API token are each shown once, work and are revoked', async () => {
    const { page } = view;
    await nav(page, 'Tokens');
    await page.getByRole('heading', { name: 'Tokens', exact: true }).waitFor();

    // Enrollment token into the Finance group, two uses.
    const enroll = page.getByRole('form', { name: 'Enrollment token for the agent' });
    await enroll.getByLabel('Put devices in group').fill('Finance laptops');
    await enroll.getByLabel('Uses').fill('2');
    await enroll.getByLabel('Valid for (hours)').fill('24');
    await enroll.getByRole('button', { name: 'Create enrollment token' }).click();
    const shown = page.getByTestId('shown-once');
    await shown.waitFor();
    await page.getByText(/^Enrollment token \(valid until/).waitFor();
    const enrollmentToken = (await shown.textContent())!;
    expect(enrollmentToken.length).toBeGreaterThan(20);
    const enrolled = await admin.call<{ deviceId: string }>(
      'POST',
      '/api/escrow/enroll',
      { device: { name: 'PC-FIN-02', os: 'Windows 11 Pro' } },
      enrollmentToken,
    );
    const device = await admin.call<{ groupIds: string[] }>('GET', `/api/devices/${enrolled.deviceId}`);
    expect(device.groupIds).toEqual([financeGroupId]);
    // Navigating away and back: the secret is gone from the page.
    await nav(page, 'Devices');
    await page.getByRole('heading', { name: 'Devices', exact: true }).waitFor();
    await nav(page, 'Tokens');
    await page.getByRole('heading', { name: 'New API token' }).waitFor();
    expect(await page.getByTestId('shown-once').count()).toBe(0);
    expect(await page.content()).not.toContain(enrollmentToken);
    // Listed with its use (1 of 2), and revoked from the page: it enrolls nothing more.
    const enrollmentRows = page.getByRole('region', { name: 'Enrollment tokens' }).getByRole('row');
    const enrollmentRow = enrollmentRows.filter({ hasText: 'Finance laptops' });
    await enrollmentRow.getByText('1 of 2').waitFor();
    await enrollmentRow.getByRole('button', { name: /^Revoke the enrollment token/ }).click();
    await enrollmentRow.getByText('revoked').waitFor();
    await expect(
      admin.call('POST', '/api/escrow/enroll', { device: { name: 'PC-FIN-03' } }, enrollmentToken),
    ).rejects.toThrow(/ 401: /);

    // API token: service kind, two permissions, 30 days.
    const form = page.getByRole('form', { name: 'New API token' });
    await form.getByLabel('Name', { exact: true }).fill('reporting-bot');
    await form.getByLabel('Kind').selectOption('service');
    await form.getByLabel('Expires in (days)').fill('30');
    expect(await form.getByRole('checkbox', { name: 'keys:read-metadata', exact: true }).isChecked()).toBe(
      true,
    );
    await form.getByRole('checkbox', { name: 'devices:read', exact: true }).check();
    await form.getByRole('button', { name: 'Create API token' }).click();
    await page.getByText('API token “reporting-bot”.').waitFor();
    const apiToken = (await page.getByTestId('shown-once').textContent())!;
    await shot(page, '24-admin-tokens');
    const tokens = page.getByRole('region', { name: 'API tokens' });
    const row = tokens.getByRole('row').filter({ hasText: 'reporting-bot' });
    await row.getByRole('cell', { name: 'keys:read-metadata, devices:read' }).waitFor();
    const asBot = () =>
      admin.call<{ devices: { name: string }[] }>(
        'GET',
        '/api/devices?name=PC-&match=prefix',
        undefined,
        apiToken,
      );
    expect((await asBot()).devices.map((d) => d.name)).toEqual(['PC-FIN-01', 'PC-FIN-02', 'PC-OPS-01']);
    const listed = await admin.call<{ apiTokens: { name: string; expiresAt: string | null }[] }>(
      'GET',
      '/api/api-tokens',
    );
    const expires = Date.parse(listed.apiTokens.find((t) => t.name === 'reporting-bot')!.expiresAt!);
    expect(Math.abs(expires - (Date.now() + 30 * 86_400_000))).toBeLessThan(3_600_000);
    expect(JSON.stringify(listed)).not.toContain(apiToken);
    // A reload: gone too.
    await page.reload();
    await row.waitFor();
    expect(await page.getByTestId('shown-once').count()).toBe(0);
    expect(await page.content()).not.toContain(apiToken);

    // Revoked: the row says so and the token no longer opens anything.
    await row.getByRole('button', { name: 'Revoke reporting-bot' }).click();
    await row.getByText('revoked').waitFor();
    expect(await row.getByRole('button', { name: /Revoke/ }).count()).toBe(0);
    await expect(asBot()).rejects.toThrow(/ 401: /);
    expect(view.problems).toEqual([]);
  });

  it('Policies: single-use passwords, approval, alert threshold and identity methods take effect', async () => {
    const { page } = view;
    await nav(page, 'Policies');
    await page.getByRole('heading', { name: 'Policies' }).waitFor();

    // Single-use passwords off, a 10-day rotation deadline.
    const rotation = page.getByRole('form', { name: 'Rotation' });
    const singleUse = rotation.getByRole('checkbox', { name: /Single-use passwords/ });
    expect(await singleUse.isChecked()).toBe(true);
    await singleUse.uncheck();
    await rotation.getByLabel('Rotation deadline (days)').fill('10');
    await rotation.getByRole('button', { name: 'Save rotation policy' }).click();
    await rotation.getByText('Rotation policy saved.').waitFor();
    expect(await admin.call('GET', '/api/rotation-policy')).toMatchObject({
      singleUsePasswords: false,
      deadlineDays: 10,
    });

    // The helpdesk: approval before disclosure, and no identity check by e-mail code.
    const helpdesk = page.getByRole('form', { name: 'Helpdesk recovery' });
    await helpdesk.getByRole('checkbox', { name: /second person approves/ }).check();
    await helpdesk.getByRole('checkbox', { name: /code to the user’s e-mail/ }).uncheck();
    await helpdesk.getByRole('button', { name: 'Save helpdesk policy' }).click();
    await helpdesk.getByText('Helpdesk policy saved.').waitFor();
    const casePolicy = await admin.call<{ identityMethods: string[]; requireDisclosureApproval: boolean }>(
      'GET',
      '/api/recovery-cases/policy',
    );
    expect(casePolicy.requireDisclosureApproval).toBe(true);
    expect([...casePolicy.identityMethods].sort()).toEqual(['attested', 'second-person']);
    // No method at all is refused, in words, and nothing changes.
    await helpdesk.getByRole('checkbox', { name: /Approval by a second person/ }).uncheck();
    await helpdesk.getByRole('checkbox', { name: /In person or call-back/ }).uncheck();
    await helpdesk.getByRole('button', { name: 'Save helpdesk policy' }).click();
    await expect(helpdesk.getByRole('alert').textContent()).resolves.toMatch(
      /^Choose at least one identity-verification method/,
    );
    expect(
      (await admin.call<{ identityMethods: string[] }>('GET', '/api/recovery-cases/policy')).identityMethods
        .length,
    ).toBe(2);

    // The disclosure alert: 3 within 15 minutes, without automatic suspension.
    await page.getByLabel('Alert after this many disclosures').fill('3');
    await page.getByLabel('within (minutes)').fill('15');
    await page.getByRole('button', { name: 'Save alert settings' }).click();
    await page.getByText('Saved.', { exact: true }).waitFor();
    expect(await admin.call('GET', '/api/organization/settings')).toMatchObject({
      disclosureAlertThreshold: 3,
      disclosureAlertWindowMinutes: 15,
      suspendOnDisclosureAlert: false,
    });

    // A reload shows what was stored.
    await page.reload();
    await page.getByRole('heading', { name: 'Policies' }).waitFor();
    await helpdesk.waitFor();
    expect(await singleUse.isChecked()).toBe(false);
    expect(await rotation.getByLabel('Rotation deadline (days)').inputValue()).toBe('10');
    const checked = (name: RegExp) => helpdesk.getByRole('checkbox', { name }).isChecked();
    expect(await checked(/second person approves/)).toBe(true);
    expect(await checked(/code to the user’s e-mail/)).toBe(false);
    expect(await checked(/Approval by a second person/)).toBe(true);
    expect(await checked(/In person or call-back/)).toBe(true);
    expect(await page.getByLabel('Alert after this many disclosures').inputValue()).toBe('3');
    await shot(page, '25-admin-policies-all');
    expect(view.problems).toEqual([]);
  });

  it('Notifications: a webhook to a local receiver, a signed test, and a real delivery in the log', async () => {
    const { page } = view;
    await nav(page, 'Notifications');
    await page.getByRole('heading', { name: 'Notifications' }).waitFor();
    const form = page.getByRole('form', { name: 'New webhook' });
    await form.getByLabel('Name', { exact: true }).fill('SIEM');
    await form.getByLabel('URL', { exact: true }).fill(receiver.url);
    await form.getByRole('checkbox', { name: 'rotation.completed' }).uncheck();
    await form.getByRole('button', { name: 'Add webhook' }).click();
    await page.getByText('Webhook signing secret (HMAC-SHA256).').waitFor();
    const secret = (await page.getByTestId('shown-once').textContent())!;
    const hooks = page.getByRole('region', { name: 'Webhooks' });
    const item = hooks.getByRole('listitem').filter({ hasText: 'SIEM' });
    await item.getByText(receiver.url).waitFor();
    const stored = await admin.call<{ webhooks: { url: string; eventTypes: string[] }[] }>(
      'GET',
      '/api/notifications/webhooks',
    );
    expect(stored.webhooks).toEqual([
      expect.objectContaining({
        url: receiver.url,
        eventTypes: expect.not.arrayContaining(['rotation.completed']) as unknown,
      }),
    ]);
    expect(stored.webhooks[0]!.eventTypes).toContain('recovery-key.disclosed');
    expect(JSON.stringify(stored)).not.toContain(secret);

    // The test send: delivered now, signed with the secret just shown.
    await item.getByRole('button', { name: 'Test webhook SIEM' }).click();
    await expect
      .poll(() => page.getByTestId('test-result').textContent())
      .toMatch(/^(Delivered|Not delivered)/);
    expect(await page.getByTestId('test-result').textContent()).toBe('Delivered (204).');
    const test = await receiver.next('notification.test');
    expect(signatureValid(secret, test)).toBe(true);

    // A real event goes through the outbox: a disclosure reaches the receiver and the delivery log.
    disclosed = await seedDevice(admin, 'PC-HOOK-01');
    const { recoveryKeys } = await admin.call<{ recoveryKeys: { id: string }[] }>(
      'GET',
      `/api/recovery-keys?deviceId=${disclosed.deviceId}`,
    );
    await admin.call('POST', `/api/recovery-keys/${recoveryKeys[0]!.id}/disclose`, {
      reason: 'webhook test: TPM reset',
    });
    const event = await receiver.next('recovery-key.disclosed');
    expect(signatureValid(secret, event)).toBe(true);
    expect(event.body).toContain(disclosed.deviceId);
    expect(event.body).not.toContain(disclosed.password);
    await expect
      .poll(
        async () =>
          (
            await admin.call<{ deliveries: { eventType: string; status: string }[] }>(
              'GET',
              '/api/notifications/deliveries?limit=50',
            )
          ).deliveries.find((d) => d.eventType === 'recovery-key.disclosed')?.status,
        { timeout: 15_000 },
      )
      .toBe('delivered');
    await page.reload();
    const log = page.getByRole('region', { name: 'Recent deliveries' });
    const delivered = log.getByRole('row').filter({ hasText: 'recovery-key.disclosed' });
    await delivered.waitFor();
    expect(await delivered.getByRole('cell').allTextContents()).toEqual([
      expect.any(String),
      'webhook',
      `SIEM (${receiver.url})`,
      'recovery-key.disclosed',
      expect.stringMatching(/^delivered/),
    ]);
    await shot(page, '26-admin-webhooks');
    expect(view.problems).toEqual([]);
  });

  it('Audit log: the CSV and JSON-lines exports hold exactly the entries the filters show', async () => {
    const { page } = view;
    await nav(page, 'Audit log');
    await page.getByRole('heading', { name: 'Audit log' }).waitFor();
    const day = (offset: number) =>
      page.evaluate(
        `(() => { const d = new Date(); d.setDate(d.getDate() + ${offset}); return d.toLocaleDateString('sv-SE'); })()`,
      ) as Promise<string>;

    // Every API-token action of the administrator, from yesterday to today.
    const filters = page.getByRole('form', { name: 'Filters' });
    await filters.getByLabel('Action').selectOption('api-token.');
    await filters.locator('input[name=actor]').fill('admin');
    await filters.getByLabel('Actor type').selectOption('user');
    await filters.getByLabel('From', { exact: true }).fill(await day(-1));
    await filters.getByLabel('To', { exact: true }).fill(await day(0));
    await filters.getByRole('button', { name: 'Apply filters' }).click();
    // What the API says the same filter matches.
    const api = await admin.call<{ entries: { seq: number }[] }>(
      'GET',
      `/api/audit-log?order=desc&action=api-token.&actor=admin&actorType=user&limit=500`,
    );
    expect(api.entries.length).toBeGreaterThan(0);
    // The click only starts the request: until its answer is drawn the table may still show the
    // unfiltered page or the loading state, so wait for the filtered rows themselves.
    const rows = page.locator('table.audit-table tbody tr');
    await expect
      .poll(async () => (await rows.locator('td:first-child').allTextContents()).map(Number), {
        timeout: 15_000,
      })
      .toEqual(api.entries.map((e) => e.seq));
    await expect(page.getByTestId('audit-count').textContent()).resolves.toMatch(/that is all of them/);
    const shownSeqs = (await rows.locator('td:first-child').allTextContents()).map(Number);
    const shownActions = await rows.locator('td:nth-child(4)').allTextContents();
    expect(new Set(shownActions)).toEqual(new Set(['api-token.created', 'api-token.revoked']));
    await shot(page, '27-audit-log-filtered');

    const csv = await downloadText(page, 'Export CSV');
    expect(csv.name).toMatch(/^bdevault-audit-log-\d{4}-\d\d-\d\d\.csv$/);
    const [header, ...records] = parseCsv(csv.text).filter((r) => r.length > 1);
    const col = (name: string) => header!.indexOf(name);
    expect(col('seq')).toBe(0);
    expect(records.map((r) => Number(r[0])).sort((a, b) => a - b)).toEqual(
      [...shownSeqs].sort((a, b) => a - b),
    );
    for (const r of records) {
      expect(r[col('action')]).toMatch(/^api-token\./);
      expect(r[col('actor_type')]).toBe('user');
      expect(r[col('actor_id')]).toBe(adminId);
    }
    const jsonl = await downloadText(page, 'Export JSON lines');
    const lines = jsonl.text
      .split('\n')
      .filter((l) => l !== '')
      .map(
        (l) => JSON.parse(l) as { seq: number; action: string; actorId: string | null; actor_id?: string },
      );
    // Oldest first, the chain order.
    expect(lines.map((l) => l.seq)).toEqual([...shownSeqs].reverse());
    expect(lines.every((l) => l.action.startsWith('api-token.'))).toBe(true);

    // A day range with nothing in it: the page says so and both exports are empty.
    await filters.getByLabel('From', { exact: true }).fill(await day(-3));
    await filters.getByLabel('To', { exact: true }).fill(await day(-2));
    await filters.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('No entry matches these filters.').waitFor();
    expect(parseCsv((await downloadText(page, 'Export CSV')).text).filter((r) => r.length > 1)).toHaveLength(
      1,
    );
    expect((await downloadText(page, 'Export JSON lines')).text.trim()).toBe('');

    // Each export is recorded with its filter.
    const exported = await admin.call<{ entries: { details: Record<string, unknown> }[] }>(
      'GET',
      '/api/audit-log?order=desc&action=audit-log.exported',
    );
    expect(exported.entries).toHaveLength(4);
    expect(exported.entries[3]!.details).toMatchObject({
      format: 'csv',
      action: 'api-token.',
      actor: 'admin',
      actorType: 'user',
    });
    expect(view.problems).toEqual([]);
  });

  // Last: the policy holds at once, for the administrator's own sessions too (the API client's as well).
  it('MFA requirement: the administrator without a second factor is sent to set one up, then turns it off', async () => {
    const { page } = view;
    // A helpdesk account: it can disclose through recovery cases and has no second factor.
    const harper = await admin.call<{ userId: string; oneTimePassword: string }>('POST', '/api/users', {
      username: 'harper',
    });
    await admin.call('POST', '/api/role-assignments', { roleId: 'helpdesk', userId: harper.userId });
    expect(await freshSignInState(h.url, 'harper', harper.oneTimePassword)).toBe('active');

    await nav(page, 'Policies');
    const mfa = page.getByRole('checkbox', { name: 'Require MFA for every account that can disclose keys' });
    expect(await mfa.isChecked()).toBe(false);
    await mfa.click();
    // The portal opens the enrolment step the server now asks of this session.
    await page.getByRole('heading', { name: 'Set up two-step sign-in' }).waitFor({ timeout: 15_000 });
    expect(await freshSignInState(h.url, 'harper', harper.oneTimePassword)).toBe('mfa-enrollment-required');
    const secret = (await page.getByTestId('totp-secret').textContent())!.replace(/\s/g, '');
    const totp = new TOTP({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: 30 });
    await page.getByLabel('Code from the app').fill(totp.generate());
    await page.getByRole('button', { name: 'Confirm' }).click();
    await page.getByRole('heading', { name: 'Keep your recovery codes' }).waitFor();
    await page.getByRole('button', { name: 'I have saved them' }).click();
    await page.getByRole('navigation', { name: 'Main' }).waitFor();
    // Checked through the browser's own session.
    const policy = async () => (await page.request.get('/api/auth/mfa-policy')).json() as Promise<unknown>;
    expect(await policy()).toEqual({ requireMfaForDisclosure: true });

    await nav(page, 'Policies');
    await mfa.uncheck();
    await page.getByText('MFA policy saved.').waitFor();
    expect(await policy()).toEqual({ requireMfaForDisclosure: false });
    expect(await freshSignInState(h.url, 'harper', harper.oneTimePassword)).toBe('active');
    expect(view.problems).toEqual([]);
  });
});
