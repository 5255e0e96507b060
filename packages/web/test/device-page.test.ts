// The device page in Chromium: escrow freshness (fresh, and flagged after 30 days), a rotation
// requested in the portal and completed by the device (through the escrow API) on the timeline, a
// move to another device group, and deletion that keeps the keys.
import { randomUUID } from 'node:crypto';
import { generateRecoveryPassword } from '@bdevault/bde';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ApiClient,
  chromiumMissing,
  describePage,
  escrowKey,
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

interface ApiKey {
  id: string;
  recoveryKeyId: string;
  status: string;
  device: { id: string; deleted: boolean };
}

describe.skipIf(chromiumMissing)('device page in Chromium', () => {
  let h: Harness;
  let view: Watched;
  let admin: ApiClient;
  let lab: SeededDevice;
  let old: SeededDevice;
  let replacement: { keyId: string; password: string };
  const groupIds: Record<string, string> = {};

  beforeAll(async () => {
    h = await startHarness();
    view = await openPage(h);
    await signIn(view.page, 'admin', h.adminPassword, ADMIN_PASSWORD);
    admin = new ApiClient(h.url);
    await admin.signIn('admin', ADMIN_PASSWORD);
    lab = await seedDevice(admin, 'PC-LAB-01', { group: 'Lab' });
    old = await seedDevice(admin, 'PC-LAB-OLD', { group: 'Lab' });
    await admin.call('POST', '/api/device-groups', { name: 'Quarantine' });
    const { deviceGroups } = await admin.call<{ deviceGroups: { id: string; name: string }[] }>(
      'GET',
      '/api/device-groups',
    );
    for (const g of deviceGroups) groupIds[g.name] = g.id;
    // The older device last escrowed 45 days ago (what an agent that stopped reporting leaves behind).
    await h.server.vault.db
      .updateTable('devices')
      .set({ last_seen_at: new Date(Date.now() - 45 * 86_400_000).toISOString() })
      .where('id', '=', old.deviceId)
      .execute();
  }, 180_000);

  afterAll(async () => {
    await h?.close();
  });

  beforeEach(({ task, onTestFailed }) => {
    onTestFailed(async () => {
      if (!view) return;
      await shot(view.page, `failed-device-${task.name.slice(0, 40).replace(/\W+/g, '-')}`);
      console.error(`[web tests] ${task.name} failed ${await describePage(view.page)}`);
    });
  });

  const keysOf = async (deviceId: string) =>
    (await admin.call<{ recoveryKeys: ApiKey[] }>('GET', `/api/recovery-keys?deviceId=${deviceId}`))
      .recoveryKeys;
  const fact = (name: string) => view.page.locator('dl.facts dt', { hasText: name }).locator('+ dd');
  const timeline = () => view.page.getByRole('region', { name: 'Timeline' }).getByRole('listitem');

  it('shows escrow freshness: a device that escrowed just now, and one flagged after 30 days', async () => {
    const { page } = view;
    await page.goto(`/devices/${lab.deviceId}`);
    await page.getByRole('heading', { name: 'PC-LAB-01' }).waitFor();
    await expect(fact('Last escrow').textContent()).resolves.toBe('just now');
    expect(await fact('Last escrow').locator('.fresh-ok').count()).toBe(1);
    await expect(fact('Groups').textContent()).resolves.toBe('Lab');

    await page.goto(`/devices/${old.deviceId}`);
    await page.getByRole('heading', { name: 'PC-LAB-OLD' }).waitFor();
    await expect(fact('Last escrow').textContent()).resolves.toBe('⚠ 45 days ago');
    expect(await fact('Last escrow').locator('.fresh-stale').count()).toBe(1);
    await shot(page, '30-device-page-stale');

    // The search results flag it too.
    await page.getByRole('link', { name: '← Devices' }).click();
    await page.getByLabel('Name', { exact: true }).fill('PC-LAB');
    await page.getByRole('button', { name: 'Search' }).click();
    const row = (name: string) => page.getByRole('row').filter({ has: page.getByRole('link', { name }) });
    await row('PC-LAB-OLD').getByText('⚠ 45 days ago').waitFor();
    await row('PC-LAB-01').getByText('just now').waitFor();
    expect(await row('PC-LAB-01').getByText('⚠').count()).toBe(0);
    expect(view.problems).toEqual([]);
  });

  it('requests a rotation: the key is being replaced and the timeline shows it; the device completes it', async () => {
    const { page } = view;
    await page.goto(`/devices/${lab.deviceId}`);
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    await timeline().filter({ hasText: 'Key escrowed' }).waitFor();
    expect(await timeline().filter({ hasText: 'Rotation requested' }).count()).toBe(0);

    await page.getByRole('button', { name: 'Request key rotation' }).click();
    await page.getByText(/^Rotation requested for 1 key\(s\)/).waitFor();
    const keys = page.getByRole('region', { name: 'Key history' });
    await keys.getByRole('row').filter({ hasText: lab.keyId }).getByText('Being replaced').waitFor();
    // The timeline follows without a reload.
    await timeline().filter({ hasText: 'Rotation requested' }).waitFor();
    expect(await timeline().filter({ hasText: 'Rotation requested' }).getAttribute('class')).toBe(
      'tl-rotation',
    );
    // Asking again says a rotation is already open.
    await page.getByRole('button', { name: 'Request key rotation' }).click();
    await page.getByText('A rotation is already open for this device.').waitFor();
    const [pending] = await keysOf(lab.deviceId);
    expect(pending!.status).toBe('rotation_pending');

    // The device side: check-in, the new key escrowed, the result reported.
    const checkIn = await admin.call<{ actions: { type: string; rotationId: string }[] }>(
      'POST',
      '/api/escrow/check-in',
      { agentVersion: 'test' },
      lab.credential,
    );
    const action = checkIn.actions.find((a) => a.type === 'rotate-recovery-password');
    expect(action).toBeDefined();
    replacement = { keyId: randomUUID().toUpperCase(), password: generateRecoveryPassword() };
    await escrowKey(admin, lab.credential, lab.volumeGuid, replacement);
    await admin.call(
      'POST',
      `/api/escrow/rotations/${action!.rotationId}/result`,
      { outcome: 'completed', newRecoveryKeyId: replacement.keyId, oldProtectorRemoved: true },
      lab.credential,
    );
    await page.reload();
    await timeline().filter({ hasText: 'Rotation completed' }).waitFor();
    await keys.getByRole('row').filter({ hasText: replacement.keyId }).getByText('Current').waitFor();
    await keys.getByRole('row').filter({ hasText: lab.keyId }).getByText('Replaced').waitFor();
    await shot(page, '28-device-page-rotation');
    expect(view.problems).toEqual([]);
  });

  it('moves the device to another group', async () => {
    const { page } = view;
    await page.goto(`/devices/${lab.deviceId}`);
    await page.getByRole('heading', { name: 'PC-LAB-01' }).waitFor();
    const move = page.getByRole('form', { name: 'Move to another group' });
    expect(await move.getByRole('button', { name: 'Move' }).isDisabled()).toBe(true);
    await move.getByLabel('Move to group').selectOption({ label: 'Quarantine' });
    await move.getByRole('button', { name: 'Move' }).click();
    await page.getByText('Device moved.').waitFor();
    await expect.poll(() => fact('Groups').textContent()).toBe('Quarantine');
    const device = await admin.call<{ groupIds: string[] }>('GET', `/api/devices/${lab.deviceId}`);
    expect(device.groupIds).toEqual([groupIds.Quarantine]);
    const members = await admin.call<{ deviceIds: string[] }>(
      'GET',
      `/api/device-groups/${groupIds.Lab}/members`,
    );
    expect(members.deviceIds).toEqual([old.deviceId]);
    expect(view.problems).toEqual([]);
  });

  it('deletes the device after a confirmation; its keys are kept and it shows as deleted', async () => {
    const { page } = view;
    await page.goto(`/devices/${lab.deviceId}`);
    await page.getByRole('heading', { name: 'PC-LAB-01' }).waitFor();
    await page.getByRole('button', { name: 'Delete device (keys kept)' }).click();
    const confirm = page.getByRole('alertdialog');
    await expect(confirm.textContent()).resolves.toMatch(/Delete PC-LAB-01\? Its recovery keys are kept/);
    // Cancel first: nothing happens.
    await confirm.getByRole('button', { name: 'Cancel' }).click();
    expect(
      (await admin.call<{ deletedAt: string | null }>('GET', `/api/devices/${lab.deviceId}`)).deletedAt,
    ).toBeNull();
    await page.getByRole('button', { name: 'Delete device (keys kept)' }).click();
    await page.getByRole('alertdialog').getByRole('button', { name: 'Yes, delete the device' }).click();
    await page.getByRole('heading', { name: 'Devices', exact: true }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/devices');

    // Through the API: the device is marked deleted, its key history is all there.
    const device = await admin.call<{ deletedAt: string | null }>('GET', `/api/devices/${lab.deviceId}`);
    expect(device.deletedAt).not.toBeNull();
    const kept = await keysOf(lab.deviceId);
    expect(kept.map((k) => [k.recoveryKeyId, k.status]).sort()).toEqual(
      [
        [lab.keyId, 'superseded'],
        [replacement.keyId, 'active'],
      ].sort(),
    );
    expect(kept.every((k) => k.device.deleted)).toBe(true);

    // In the portal: found by key ID, the device page says deleted and still lists its keys and timeline.
    await page.locator('select[name=by]').selectOption('keyid');
    await page.getByLabel('Key ID', { exact: true }).fill(replacement.keyId.slice(0, 8));
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('link', { name: 'PC-LAB-01' }).click();
    await page
      .getByRole('heading', { name: /^PC-LAB-01/ })
      .getByText('deleted')
      .waitFor();
    const keys = page.getByRole('region', { name: 'Key history' });
    await keys.getByText(lab.keyId).waitFor();
    await keys.getByText(replacement.keyId).waitFor();
    await timeline().filter({ hasText: 'Rotation requested' }).waitFor();
    // No action the server would refuse for a deleted device.
    await expect(page.getByTestId('device-deleted').textContent()).resolves.toMatch(
      /^This device was deleted .*Its recovery keys are kept/,
    );
    const actions = page.getByRole('region', { name: 'Actions' });
    expect(await actions.getByRole('button').count()).toBe(0);
    // A kept key still gives its password (a disk taken out of a retired machine).
    await keys
      .getByRole('button', { name: `View recovery password for key ${replacement.keyId.slice(0, 8)}` })
      .click();
    await page.getByLabel('Reason').selectOption('Other');
    await page.getByLabel(/Note/).fill('disk of a retired laptop');
    await page.getByRole('button', { name: 'Show password' }).click();
    const groups = page.getByTestId('recovery-password').locator('.group-digits');
    await groups.first().waitFor();
    expect(await groups.allTextContents()).toEqual(replacement.password.split('-'));
    await page.getByRole('button', { name: 'Hide now' }).click();
    await shot(page, '29-device-page-deleted');
    expect(view.problems).toEqual([]);
  });
});
