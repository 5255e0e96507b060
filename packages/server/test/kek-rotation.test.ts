// KEK rotation keeps every key readable, is resumable, and the KEK file is created 0600.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKekFile, kekNextPath } from '../src/lib/kek.js';
import { cryptoRandom } from '../src/lib/random.js';
import { SEALED_COLUMN_SETS } from '../src/modules/kek/sealed-secrets.js';
import { openVault } from '../src/vault.js';
import {
  bearer,
  createTestVault,
  enrollDevice,
  escrowPayload,
  newKey,
  randomKeyId,
  type TestVault,
} from './helpers.js';

let t: TestVault;
let escrowed: { id: string; password: string }[];
beforeEach(async () => {
  t = await createTestVault();
  const device = await enrollDevice(t);
  escrowed = [];
  for (let i = 0; i < 4; i += 1) {
    const key = newKey();
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [key]),
    });
    escrowed.push({ id: res.json().volumes[0].recoveryKeys[0].id, password: key.password });
  }
});
afterEach(async () => {
  await t.close();
});

async function discloseAll(app = t.app) {
  for (const key of escrowed) {
    const res = await app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${key.id}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'rotation check' },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().recoveryPassword).toBe(key.password);
  }
}

describe('KEK', () => {
  it('is created on first start with mode 0600 and no KEK is ever a default', () => {
    const path = join(t.dir, 'kek.key');
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('rotate-kek re-wraps every data key and keeps every key readable', async () => {
    const before = await t.vault.db
      .selectFrom('recovery_keys')
      .select(['id', 'password_kek_id', 'password_ciphertext'])
      .execute();
    const result = await t.vault.services.rotateKek();
    expect(result.rewrapped).toBe(4);
    expect(result.kekId).not.toBe(result.previousKekId);
    const after = await t.vault.db
      .selectFrom('recovery_keys')
      .select(['id', 'password_kek_id', 'password_ciphertext'])
      .execute();
    expect(new Set(after.map((r) => r.password_kek_id))).toEqual(new Set([result.kekId]));
    // Data keys are re-wrapped; the ciphertexts themselves are untouched.
    expect(after.map((r) => r.password_ciphertext).sort()).toEqual(
      before.map((r) => r.password_ciphertext).sort(),
    );
    expect(readdirSync(t.dir)).toContain(`kek.key.${result.previousKekId}.backup`);
    expect(existsSync(kekNextPath(join(t.dir, 'kek.key')))).toBe(false);

    // The running app resolves the new KEK from disk on first use.
    await discloseAll();
    // A fresh process (new vault from the same data dir) reads them too.
    const reopened = await t.appWith({});
    await discloseAll(reopened);
    // Running it again is a new rotation and still keeps everything readable.
    expect((await t.vault.services.rotateKek()).rewrapped).toBe(4);
    await discloseAll();
  });

  it('resumes an interrupted rotation with the same next KEK', async () => {
    const path = join(t.dir, 'kek.key');
    // Simulate a crash after the next KEK was made and half the rows were re-wrapped.
    const next = createKekFile(kekNextPath(path), cryptoRandom);
    const result = await t.vault.services.rotateKek();
    expect(result.kekId).toBe(next.id);
    expect(result.rewrapped).toBe(4);
    await discloseAll();
  });

  it('knows every sealed column of the schema, so rotation leaves no secret behind', async () => {
    const tables = await t.vault.db.introspection.getTables();
    const kekColumns = tables.flatMap((table) =>
      table.columns.filter((c) => /(^|_)kek_id$/.test(c.name)).map((c) => `${table.name}.${c.name}`),
    );
    expect(kekColumns.length).toBeGreaterThan(0);
    const covered = SEALED_COLUMN_SETS.map((set) => `${set.table}.${set.kekId}`);
    expect(kekColumns.sort()).toEqual(covered.sort());
  });

  it('re-wraps secrets beyond recovery passwords (a key package)', async () => {
    const key = await t.vault.db
      .selectFrom('recovery_keys')
      .select(['id', 'organization_id'])
      .executeTakeFirstOrThrow();
    const binding = {
      organizationId: key.organization_id,
      recordId: key.id,
      purpose: 'key-package',
    } as const;
    const sealed = t.vault.deps.envelope.seal(binding, 'key package bytes');
    await t.vault.db
      .insertInto('recovery_key_packages')
      .values({
        recovery_key_id: key.id,
        organization_id: key.organization_id,
        ciphertext: sealed.ciphertext,
        wrapped_key: sealed.wrappedKey,
        kek_id: sealed.kekId,
        created_at: new Date().toISOString(),
      })
      .execute();
    const result = await t.vault.services.rotateKek();
    expect(result.rewrapped).toBe(5);
    const row = await t.vault.db
      .selectFrom('recovery_key_packages')
      .selectAll()
      .where('recovery_key_id', '=', key.id)
      .executeTakeFirstOrThrow();
    expect(row.kek_id).toBe(result.kekId);
    expect(row.ciphertext).toBe(sealed.ciphertext);
    // A fresh process reading the rotated data directory opens it with the new KEK.
    const fresh = await openVault(t.config);
    try {
      expect(
        fresh.deps.envelope.open(binding, {
          ciphertext: row.ciphertext,
          wrappedKey: row.wrapped_key,
          kekId: row.kek_id,
        }),
      ).toBe('key package bytes');
    } finally {
      await fresh.close();
    }
  });
});
