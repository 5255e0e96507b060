// Reads batched on PostgreSQL: the read each disclosure starts with (disclosure-read-batcher.ts: the
// key in the caller's scope with the organization's policy) and the notification routing read after
// each change (routing-read-batcher.ts), several callers' in one statement. Each read must answer
// exactly what it would have answered alone, whatever the others ask.
import { describe, expect, it } from 'vitest';
import type { AccessScope } from '../../src/modules/access/permissions.js';
import {
  createDisclosurePolicyRepo,
  type KeyRead,
} from '../../src/modules/recovery-keys/disclosure-policy.repo.js';
import { createNotificationsRepo } from '../../src/modules/notifications/notifications.repo.js';
import { PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';
import {
  bearer,
  discloseAllAtOnce,
  escrowKeysOnNewDevice,
  onFreshPostgresVault,
  type TestVault,
} from '../helpers.js';

const pgUp = await postgresAvailable();
if (!pgUp) console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the read batching tests are skipped`);

describe.skipIf(!pgUp)('disclosure and routing reads batched on PostgreSQL', () => {
  let t: TestVault;
  onFreshPostgresVault((vault) => (t = vault));

  const deviceOf = (keyRecordId: string) =>
    t.vault.db
      .selectFrom('recovery_keys')
      .select('device_id')
      .where('id', '=', keyRecordId)
      .executeTakeFirstOrThrow()
      .then((r) => r.device_id);

  it('answers each read as findForKey alone would: scope, missing keys, open rotation requests', async () => {
    const [inside] = await escrowKeysOnNewDevice(t, 1);
    const [outside, disclosed] = await escrowKeysOnNewDevice(t, 2);
    const group = await t.app.inject({
      method: 'POST',
      url: '/api/device-groups',
      headers: bearer(t.adminToken),
      payload: { name: `read batching ${Date.now()}` },
    });
    expect(group.statusCode, group.body).toBe(201);
    const member = await t.app.inject({
      method: 'POST',
      url: `/api/device-groups/${group.json().id as string}/members`,
      headers: bearer(t.adminToken),
      payload: { deviceIds: [await deviceOf(inside!.id)] },
    });
    expect(member.statusCode, member.body).toBeLessThan(300);
    // A disclosure opens the key's rotation request: its read must name it.
    const first = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${disclosed!.id}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'open a rotation request' },
    });
    expect(first.statusCode, first.body).toBe(200);
    // A stricter alert policy than the defaults, so a mix-up with the default would show.
    const settings = await t.app.inject({
      method: 'PATCH',
      url: '/api/organization/settings',
      headers: bearer(t.adminToken),
      payload: { disclosureAlertThreshold: 7 },
    });
    expect(settings.statusCode, settings.body).toBe(200);

    const grouped: AccessScope = { kind: 'groups', constraints: [[group.json().id as string]] };
    const org = t.organizationId;
    const reads: KeyRead[] = [
      { organizationId: org, keyRecordId: inside!.id, scope: grouped },
      { organizationId: org, keyRecordId: outside!.id, scope: grouped },
      { organizationId: org, keyRecordId: outside!.id, scope: { kind: 'all' } },
      { organizationId: org, keyRecordId: disclosed!.id },
      { organizationId: org, keyRecordId: 'rk_no_such_key' },
      { organizationId: 'org_no_such_org', keyRecordId: inside!.id },
      { organizationId: org, keyRecordId: inside!.id, scope: { kind: 'none' } },
    ];
    const repo = createDisclosurePolicyRepo(t.vault.db);
    const alone = await Promise.all(
      reads.map((r) => repo.findForKey(r.organizationId, r.keyRecordId, r.scope)),
    );
    const together = await repo.findForKeys(reads);
    expect(together).toEqual(alone);
    // And what they say: in scope, out of scope, found, missing; the open request; the policy.
    expect(together.map((r) => r.key?.id)).toEqual([
      inside!.id,
      undefined,
      outside!.id,
      disclosed!.id,
      undefined,
      undefined,
      undefined,
    ]);
    expect(together[3]!.key!.open_rotation_id).toMatch(/^rot_/);
    expect(together[0]!.key!.open_rotation_id).toBeNull();
    expect(together[0]!.policy.alerts.disclosureAlertThreshold).toBe(7);
    expect(together[5]!.policy.alerts.disclosureAlertThreshold).toBe(20);
  });

  it('concurrent HTTP disclosures share their key reads and routing reads, and each gets its own key', async () => {
    const keys = (await Promise.all([8, 8].map((n) => escrowKeysOnNewDevice(t, n)))).flat();
    const { responses, sent } = await discloseAllAtOnce(
      t,
      keys.map((k) => k.id),
      'read batching',
    );
    for (const [i, r] of responses.entries()) {
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().recoveryPassword).toBe(keys[i]!.password);
    }
    // The key reads (alone: Kysely's quoted names; batched: json_to_recordset) and the routing reads.
    const keyReads = sent.filter((s) => /left join "?recovery_keys"? as "?k"?/i.test(s));
    const routingReads = sent.filter((s) => /left join "?notification_settings"? as "?s"?/i.test(s));
    // Fewer statements than disclosures: some were shared. How many depends on how the requests
    // interleave (each first authenticates and counts), so no tighter bound holds on every run;
    // the tests above check the batched answers item by item.
    for (const reads of [keyReads, routingReads]) {
      expect(reads.length).toBeGreaterThan(0);
      expect(reads.length).toBeLessThan(keys.length);
    }
  });

  it('routing: answers each (organization, device) as routing alone would', async () => {
    const api = (method: 'PUT' | 'POST', url: string, payload: object) =>
      t.app.inject({ method, url, headers: bearer(t.adminToken), payload });
    const settings = await api('PUT', '/api/notifications/settings', {
      smtp: null,
      securityAddresses: ['soc@example.test', 'ciso@example.test'],
    });
    expect(settings.statusCode, settings.body).toBe(200);
    for (const [name, enabled] of [
      ['first', true],
      ['off', false],
      ['second', true],
    ] as const) {
      const hook = await api('POST', '/api/notifications/webhooks', {
        name,
        url: `https://hooks.example.test/${name}`,
        eventTypes: ['recovery-key.disclosed'],
        enabled,
      });
      expect(hook.statusCode, hook.body).toBe(201);
    }
    const [key] = await escrowKeysOnNewDevice(t, 1);
    const deviceId = await deviceOf(key!.id);
    const org = t.organizationId;
    const targets = [
      { organizationId: org, deviceId },
      { organizationId: org },
      { organizationId: org, deviceId: 'dev_no_such_device' },
      { organizationId: 'org_no_such_org', deviceId },
      { organizationId: org, deviceId },
    ];
    const repo = createNotificationsRepo(t.vault.db);
    const alone = await Promise.all(targets.map((x) => repo.routing(x.organizationId, x.deviceId)));
    const together = await repo.routingMany(targets);
    expect(together).toEqual(alone);
    expect(together[0]!.webhooks).toHaveLength(2);
    expect(together[0]!.device?.name).toEqual(expect.any(String));
    expect(JSON.parse(together[0]!.securityAddresses!)).toEqual(['soc@example.test', 'ciso@example.test']);
    expect(together[1]!.device).toBeUndefined();
    expect(together[3]).toEqual({ securityAddresses: null, webhooks: [], device: undefined });
  });
});
