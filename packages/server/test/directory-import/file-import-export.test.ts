// CSV / JSON import with dry run and per-row report, and the age-encrypted key export checked with the real `age`.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateRecoveryPassword } from '@bdevault/bde';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCsvRecords, rowsFromCsv } from '../../src/modules/directory-import/file-import.js';
import { parseAgeRecipient } from '../../src/modules/key-export/age.js';
import { bearer, createTestVault, randomKeyId, type TestVault } from '../helpers.js';

const run = promisify(execFile);

async function ageAvailable(): Promise<string | undefined> {
  try {
    await run('age', ['--version']);
    return undefined;
  } catch {
    try {
      await run('apt-get', ['install', '-y', 'age'], {
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      });
      return undefined;
    } catch {
      return 'the `age` binary is not installed and `apt-get install -y age` failed: skipping the export decryption check';
    }
  }
}
const ageMissing = await ageAvailable();
if (ageMissing) console.warn(ageMissing);

describe('CSV / JSON recovery-key import', () => {
  let t: TestVault;
  const good = Array.from({ length: 4 }, () => ({
    keyId: randomKeyId(),
    password: generateRecoveryPassword(),
  }));
  const volume = randomKeyId();
  let badPassword: string;
  let csv: string;

  beforeAll(async () => {
    t = await createTestVault();
    const groups = generateRecoveryPassword().split('-');
    groups[6] = '000001'; // not a multiple of 11
    badPassword = groups.join('-');
    csv = [
      'Device Name,Key ID,Recovery Password,Volume GUID,Volume Type,Created,Notes',
      `LAPTOP-1,${good[0]!.keyId},${good[0]!.password},${volume},os,2024-05-01T10:00:00Z,first`,
      `LAPTOP-1,{${good[1]!.keyId.toLowerCase()}},${good[1]!.password},${volume},1,2024-06-01T10:00:00Z,rotated`,
      `"DESK, 2",${good[2]!.keyId},${good[2]!.password},,fixed,,`,
      `DESK-3,${randomKeyId()},${badPassword},,,,`,
      `DESK-4,not-a-guid,${good[3]!.password},,,,`,
      `DESK-5,${good[3]!.keyId},${good[3]!.password},,removable,,`,
      `DESK-6,${good[3]!.keyId},${good[3]!.password},,,,duplicate`,
    ].join('\r\n');
  });
  afterAll(async () => t?.close());

  const post = (payload: object, token = t.adminToken) =>
    t.app.inject({ method: 'POST', url: '/api/import/recovery-keys', headers: bearer(token), payload });

  it('parses quoted CSV fields and bounds the input', () => {
    expect(parseCsvRecords('a,"b,""c"""\r\n1,2\n', 10)).toEqual([
      ['a', 'b,"c"'],
      ['1', '2'],
    ]);
    const big = `deviceName,keyId,recoveryPassword\n${'x,y,z\n'.repeat(5001)}`;
    expect(() => rowsFromCsv(big)).toThrow(/more than 5000 rows/);
    expect(() => rowsFromCsv('name,other\nx,y')).toThrow(/no deviceName column/);
  });

  it('dry run: per-row outcomes, nothing written, no password digits in the report', async () => {
    const res = await post({ format: 'csv', dryRun: true, csv });
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report.dryRun).toBe(true);
    expect(report.ignoredColumns).toEqual(['Notes']);
    expect(report.rows.map((r: { row: number; outcome: string }) => [r.row, r.outcome])).toEqual([
      [2, 'created'],
      [3, 'created'],
      [4, 'created'],
      [5, 'invalid'],
      [6, 'invalid'],
      [7, 'created'],
      [8, 'invalid'],
    ]);
    expect(report.rows[3].reason).toMatch(/group 7/);
    expect(report.rows[4].reason).toMatch(/not a GUID/);
    expect(report.rows[6].reason).toMatch(/earlier in the file/);
    expect(report.counts.keys).toMatchObject({ created: 4, invalid: 3 });
    for (const group of badPassword.split('-')) expect(res.body).not.toContain(group);
    for (const k of good) expect(res.body).not.toContain(k.password);
    expect(await t.vault.db.selectFrom('recovery_keys').select('id').execute()).toHaveLength(0);
  });

  it('real run imports the valid rows, reports the invalid ones; again changes nothing; a changed password conflicts', async () => {
    const res = await post({ format: 'csv', csv });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().counts).toMatchObject({
      devices: { created: 3 },
      volumes: { created: 3 },
      keys: { created: 4, invalid: 3, conflicts: 0 },
    });
    const keys = await t.vault.db.selectFrom('recovery_keys').selectAll().orderBy('created_at').execute();
    expect(keys).toHaveLength(4);
    const first = keys.find((k) => k.key_id === good[0]!.keyId)!;
    const second = keys.find((k) => k.key_id === good[1]!.keyId)!;
    expect(first).toMatchObject({
      status: 'superseded',
      source: 'import',
      created_at: '2024-05-01T10:00:00.000Z',
    });
    expect(second.status).toBe('active');
    const desk = await t.vault.db.selectFrom('devices').selectAll().where('name', '=', 'DESK, 2').execute();
    expect(desk).toHaveLength(1);
    const disclosed = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${second.id}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'check import' },
    });
    expect(disclosed.json().recoveryPassword).toBe(good[1]!.password);

    const again = await post({ format: 'csv', csv });
    expect(again.json().counts).toMatchObject({
      devices: { created: 0, unchanged: 3 },
      keys: { created: 0, unchanged: 4 },
    });

    const json = await post({
      format: 'json',
      rows: [{ deviceName: 'LAPTOP-1', keyId: good[0]!.keyId, recoveryPassword: generateRecoveryPassword() }],
    });
    expect(json.statusCode).toBe(200);
    expect(json.json().rows).toEqual([
      expect.objectContaining({ row: 1, outcome: 'conflict', keyId: good[0]!.keyId }),
    ]);
    const audits = await t.vault.db
      .selectFrom('audit_log')
      .select('details')
      .where('action', '=', 'recovery-keys.imported')
      .execute();
    expect(audits).toHaveLength(4); // one per run, dry run included
  });

  it('needs org:admin and strict, bounded bodies', async () => {
    const token = await t.vault.services.apiTokens.createApiToken({
      organizationId: t.organizationId,
      name: 'reader',
      permissions: ['keys:read-metadata'],
      creatorPermissions: undefined,
      actor: { type: 'cli', id: null },
    });
    expect((await post({ format: 'csv', csv }, token.token)).statusCode).toBe(403);
    expect((await post({ format: 'csv', csv, extra: 1 })).statusCode).toBe(400);
    expect((await post({ format: 'json', csv })).statusCode).toBe(400);
  });
});

describe('age-encrypted key export', () => {
  let t: TestVault;
  let dir: string;
  const keys = Array.from({ length: 3 }, () => ({
    keyId: randomKeyId(),
    password: generateRecoveryPassword(),
  }));

  beforeAll(async () => {
    t = await createTestVault();
    dir = mkdtempSync(join(tmpdir(), 'bdevault-age-'));
    const csv = [
      'deviceName,keyId,recoveryPassword,volumeType',
      ...keys.map((k, i) => `PC-${i},${k.keyId},${k.password},os`),
    ].join('\n');
    await t.app.inject({
      method: 'POST',
      url: '/api/import/recovery-keys',
      headers: bearer(t.adminToken),
      payload: { format: 'csv', csv },
    });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses bad recipients and non-administrators', async () => {
    expect(() => parseAgeRecipient('age1qqqq')).toThrow();
    const bad = await t.app.inject({
      method: 'POST',
      url: '/api/export/recovery-keys',
      headers: bearer(t.adminToken),
      payload: { recipient: `age1${'q'.repeat(58)}` },
    });
    expect(bad.statusCode).toBe(400);
    const token = await t.vault.services.apiTokens.createApiToken({
      organizationId: t.organizationId,
      name: 'helpdesk',
      permissions: ['keys:*', 'devices:read'],
      creatorPermissions: undefined,
      actor: { type: 'cli', id: null },
    });
    const forbidden = await t.app.inject({
      method: 'POST',
      url: '/api/export/recovery-keys',
      headers: bearer(token.token),
      payload: { recipient: `age1${'q'.repeat(58)}` },
    });
    expect(forbidden.statusCode).toBe(403);
  });

  it.skipIf(ageMissing !== undefined)(
    'the real `age -d` decrypts the export; the HTTP body is never clear; one audit row',
    async () => {
      const identity = join(dir, 'identity.txt');
      await run('age-keygen', ['-o', identity]);
      const recipient = /public key: (age1\w+)/.exec(readFileSync(identity, 'utf8'))![1]!;
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/export/recovery-keys',
        headers: bearer(t.adminToken),
        payload: { recipient },
      });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['content-type']).toBe('application/octet-stream');
      expect(res.headers['x-exported-keys']).toBe('3');
      const body = res.rawPayload;
      expect(body.subarray(0, 22).toString()).toBe('age-encryption.org/v1\n');
      for (const k of keys) expect(body.includes(Buffer.from(k.password))).toBe(false);
      const file = join(dir, 'keys.csv.age');
      writeFileSync(file, body);
      const { stdout } = await run('age', ['-d', '-i', identity, file]);
      const lines = stdout.trim().split('\n');
      expect(lines[0]).toBe('deviceName,keyId,recoveryPassword,volumeGuid,volumeType,createdAt,status');
      for (const k of keys) expect(lines.some((l) => l.includes(`${k.keyId},${k.password},`))).toBe(true);
      const audit = await t.vault.db
        .selectFrom('audit_log')
        .selectAll()
        .where('action', '=', 'recovery-keys.exported')
        .execute();
      expect(audit).toHaveLength(1);
      expect(JSON.parse(audit[0]!.details)).toMatchObject({ count: 3, format: 'age', recipient });
      // The export decrypted is itself importable (round trip into another vault).
      const other = await createTestVault();
      try {
        const imported = await other.app.inject({
          method: 'POST',
          url: '/api/import/recovery-keys',
          headers: bearer(other.adminToken),
          payload: { format: 'csv', csv: stdout },
        });
        expect(imported.json().counts.keys.created).toBe(3);
        expect(imported.json().ignoredColumns).toEqual(['status']);
      } finally {
        await other.close();
      }
    },
  );
});
