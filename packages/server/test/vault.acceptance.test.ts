// Acceptance path of the vault: escrow, lookups, audited disclosure, and what must not happen.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DomainEvent, EventSink } from '../src/lib/events.js';
import { AppError } from '../src/lib/errors.js';
import type { AuditWriter } from '../src/modules/audit/audit.service.js';
import {
  bearer,
  createTestVault,
  enrollDevice,
  escrowPayload,
  newKey,
  randomKeyId,
  type TestVault,
} from './helpers.js';
import { testDialect } from './support/postgres.js';

let t: TestVault;
beforeEach(async () => {
  t = await createTestVault();
});
afterEach(async () => {
  await t.close();
});

async function countRows(table: 'recovery_keys' | 'audit_log' | 'volumes' | 'devices') {
  const row = await t.vault.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

describe('escrow → lookup → disclosure', () => {
  it('finds the key by device, key id and 8-digit prefix, then discloses it with an audit row', async () => {
    const device = await enrollDevice(t, 'DESKTOP-53O32QI');
    const key = newKey();
    const volumeGuid = randomKeyId();
    const escrow = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(`{${volumeGuid.toLowerCase()}}`, [
        { keyId: `{${key.keyId.toLowerCase()}}`, password: key.password.replace(/-/g, ' ') },
      ]),
    });
    expect(escrow.statusCode, escrow.body).toBe(200);
    const keyRecordId = escrow.json().volumes[0].recoveryKeys[0].id as string;
    expect(escrow.body).not.toContain(key.password);

    const byName = await t.app.inject({
      url: '/api/devices?name=desktop-53o&match=prefix',
      headers: bearer(t.adminToken),
    });
    expect(byName.statusCode).toBe(200);
    expect(byName.json().devices.map((d: { id: string }) => d.id)).toEqual([device.deviceId]);
    const exact = await t.app.inject({
      url: '/api/devices?name=DESKTOP-53O32QI',
      headers: bearer(t.adminToken),
    });
    expect(exact.json().devices).toHaveLength(1);
    const notExact = await t.app.inject({
      url: '/api/devices?name=DESKTOP-53O',
      headers: bearer(t.adminToken),
    });
    expect(notExact.json().devices).toHaveLength(0);

    const byDevice = await t.app.inject({
      url: `/api/recovery-keys?deviceId=${device.deviceId}`,
      headers: bearer(t.adminToken),
    });
    expect(byDevice.json().recoveryKeys.map((k: { id: string }) => k.id)).toEqual([keyRecordId]);
    const byKeyId = await t.app.inject({
      url: `/api/recovery-keys?keyId=${key.keyId.toLowerCase()}`,
      headers: bearer(t.adminToken),
    });
    expect(byKeyId.json().recoveryKeys[0]).toMatchObject({
      id: keyRecordId,
      recoveryKeyId: key.keyId,
      status: 'active',
    });
    const byPrefix = await t.app.inject({
      url: `/api/recovery-keys?keyIdPrefix=${key.keyId.slice(0, 8)}`,
      headers: bearer(t.adminToken),
    });
    expect(byPrefix.json().recoveryKeys[0].volume.volumeGuid).toBe(volumeGuid);
    for (const r of [byDevice, byKeyId, byPrefix]) expect(r.body).not.toContain(key.password);

    const disclose = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${keyRecordId}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'user locked out at preboot, ticket 4711' },
    });
    expect(disclose.statusCode, disclose.body).toBe(200);
    expect(disclose.json().recoveryPassword).toBe(key.password);
    expect(disclose.headers['cache-control']).toBe('no-store');

    const audit = await t.vault.db
      .selectFrom('audit_log')
      .selectAll()
      .where('id', '=', disclose.json().auditEntryId)
      .executeTakeFirstOrThrow();
    expect(audit).toMatchObject({
      action: 'recovery-key.disclosed',
      target_id: keyRecordId,
      reason: 'user locked out at preboot, ticket 4711',
    });
    expect(JSON.stringify(audit)).not.toContain(key.password);
    const after = await t.app.inject({
      url: `/api/recovery-keys/${keyRecordId}`,
      headers: bearer(t.adminToken),
    });
    expect(after.json().lastDisclosedAt).not.toBeNull();
    expect(after.json().status).toBe('rotation_pending');
  });

  it('is idempotent, and a new key supersedes the previous one without deleting it', async () => {
    const device = await enrollDevice(t);
    const volumeGuid = randomKeyId();
    const first = newKey();
    const send = (keys: { keyId: string; password: string }[]) =>
      t.app.inject({
        method: 'POST',
        url: '/api/escrow/recovery-keys',
        headers: bearer(device.credential),
        payload: escrowPayload(volumeGuid, keys),
      });
    expect((await send([first])).statusCode).toBe(200);
    const auditBefore = await countRows('audit_log');
    const again = await send([first]);
    expect(again.json().volumes[0].recoveryKeys[0].created).toBe(false);
    expect(await countRows('recovery_keys')).toBe(1);
    expect(await countRows('audit_log')).toBe(auditBefore);

    const second = newKey();
    expect((await send([second])).statusCode).toBe(200);
    const keys = await t.app.inject({
      url: `/api/recovery-keys?deviceId=${device.deviceId}`,
      headers: bearer(t.adminToken),
    });
    const statuses = Object.fromEntries(
      keys
        .json()
        .recoveryKeys.map((k: { recoveryKeyId: string; status: string }) => [k.recoveryKeyId, k.status]),
    );
    expect(statuses).toEqual({ [first.keyId]: 'superseded', [second.keyId]: 'active' });

    // Deleting the device keeps its keys.
    expect(
      (
        await t.app.inject({
          method: 'DELETE',
          url: `/api/devices/${device.deviceId}`,
          headers: bearer(t.adminToken),
        })
      ).statusCode,
    ).toBe(204);
    const kept = await t.app.inject({
      url: `/api/recovery-keys?keyId=${first.keyId}`,
      headers: bearer(t.adminToken),
    });
    expect(kept.json().recoveryKeys[0].device.deleted).toBe(true);
  });

  it('refuses the same key id with another password (409) and writes nothing', async () => {
    const device = await enrollDevice(t);
    const key = newKey();
    const volumeGuid = randomKeyId();
    await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(volumeGuid, [key]),
    });
    const other = { keyId: key.keyId, password: newKey().password };
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(volumeGuid, [other]),
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('RECOVERY_KEY_CONFLICT');
    expect(res.body).not.toContain(other.password);
  });
});

describe('disclosure needs its audit row', () => {
  it('returns no password when the audit write fails, and changes nothing', async () => {
    const device = await enrollDevice(t);
    const key = newKey();
    const escrow = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [key]),
    });
    const keyRecordId = escrow.json().volumes[0].recoveryKeys[0].id as string;
    const failingAudit: AuditWriter = {
      append: async () => {
        throw new AppError('AUDIT_WRITE_FAILED', 'injected failure');
      },
      prepare: () => {
        throw new AppError('AUDIT_WRITE_FAILED', 'injected failure');
      },
    };
    const broken = await t.appWith({ auditWriter: failingAudit });
    const auditBefore = await countRows('audit_log');
    const res = await broken.inject({
      method: 'POST',
      url: `/api/recovery-keys/${keyRecordId}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'should not work' },
    });
    expect(res.statusCode).toBe(500);
    expect(res.json().error.code).toBe('AUDIT_WRITE_FAILED');
    expect(res.body).not.toContain(key.password);
    expect(res.body).not.toContain(key.password.replace(/-/g, ''));
    expect(await countRows('audit_log')).toBe(auditBefore);
    const meta = await t.app.inject({
      url: `/api/recovery-keys/${keyRecordId}`,
      headers: bearer(t.adminToken),
    });
    expect(meta.json()).toMatchObject({ lastDisclosedAt: null, status: 'active' });
  });
});

describe('disclosure events', () => {
  it('are emitted after commit, carry identifiers only, and not when the audit write fails', async () => {
    const device = await enrollDevice(t);
    const key = newKey();
    const escrow = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [key]),
    });
    const keyRecordId = escrow.json().volumes[0].recoveryKeys[0].id as string;
    const events: DomainEvent[] = [];
    const sink: EventSink = { emit: async (...emitted) => void events.push(...emitted) };

    const failingAudit: AuditWriter = {
      append: async () => {
        throw new AppError('AUDIT_WRITE_FAILED', 'injected failure');
      },
      prepare: () => {
        throw new AppError('AUDIT_WRITE_FAILED', 'injected failure');
      },
    };
    const broken = await t.appWith({ auditWriter: failingAudit, events: sink });
    const refused = await broken.inject({
      method: 'POST',
      url: `/api/recovery-keys/${keyRecordId}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'audit down' },
    });
    expect(refused.statusCode).toBe(500);
    expect(events).toEqual([]);

    const app = await t.appWith({ events: sink });
    const res = await app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${keyRecordId}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'user locked out' },
    });
    expect(res.statusCode, res.body).toBe(200);
    // Single-use passwords (on by default): the disclosure also opened a rotation request.
    expect(events.map((e) => e.type)).toEqual(['recovery-key.disclosed', 'rotation.requested']);
    expect(events[1]).toMatchObject({ trigger: 'disclosure', auditEntryId: res.json().auditEntryId });
    expect(events[0]).toMatchObject({
      type: 'recovery-key.disclosed',
      organizationId: t.organizationId,
      recoveryKeyRecordId: keyRecordId,
      reason: 'user locked out',
      channel: 'api',
      auditEntryId: res.json().auditEntryId,
    });
    expect(JSON.stringify(events)).not.toContain(key.password);
    expect(JSON.stringify(events)).not.toContain(key.password.replace(/-/g, ''));
  });
});

describe('secrets at rest', () => {
  // Reads the SQLite file itself; on PostgreSQL there is no file to search.
  it.skipIf(testDialect === 'postgres')(
    'the SQLite file and its WAL hold no recovery password in any spelling',
    async () => {
      const device = await enrollDevice(t);
      const keys = [newKey(), newKey(), newKey()];
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/escrow/recovery-keys',
        headers: bearer(device.credential),
        payload: escrowPayload(randomKeyId(), keys),
      });
      expect(res.statusCode).toBe(200);
      const files = readdirSync(t.dir).filter((f) => f.startsWith('bdevault.sqlite'));
      expect(files).toContain('bdevault.sqlite-wal');
      const raw = Buffer.concat(files.map((f) => readFileSync(join(t.dir, f))));
      // Make sure the check can see the key ids at all (the search works), then that no password is there.
      expect(raw.includes(Buffer.from(keys[0]!.keyId))).toBe(true);
      for (const k of keys) {
        for (const spelling of [
          k.password,
          k.password.replace(/-/g, ''),
          k.password.split('-')[0]! + '-' + k.password.split('-')[1]!,
        ]) {
          expect(raw.includes(Buffer.from(spelling))).toBe(false);
          expect(raw.includes(Buffer.from(spelling, 'utf16le'))).toBe(false);
        }
      }
    },
  );

  it('a ciphertext moved to another row does not decrypt', async () => {
    const device = await enrollDevice(t);
    const [a, b] = [newKey(), newKey()];
    await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [a]),
    });
    await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [b]),
    });
    const rows = await t.vault.db.selectFrom('recovery_keys').selectAll().execute();
    const [rowA, rowB] = [rows.find((r) => r.key_id === a.keyId)!, rows.find((r) => r.key_id === b.keyId)!];
    await t.vault.db
      .updateTable('recovery_keys')
      .set({ password_ciphertext: rowA.password_ciphertext, password_wrapped_key: rowA.password_wrapped_key })
      .where('id', '=', rowB.id)
      .execute();
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${rowB.id}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'moved ciphertext' },
    });
    expect(res.statusCode).toBe(500);
    expect(res.json().error.code).toBe('DECRYPTION_FAILED');
    expect(res.body).not.toContain(a.password);
    // The untouched row still decrypts.
    const ok = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${rowA.id}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'original row' },
    });
    expect(ok.json().recoveryPassword).toBe(a.password);
  });
});
