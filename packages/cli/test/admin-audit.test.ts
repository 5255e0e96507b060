// `bdevault admin …` and `bdevault audit …` act on the database directly.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { bdevaultArgs } from './run-bdevault.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateRecoveryPassword } from '@bdevault/bde';
import { buildApp, loadConfig, openVault, type Vault } from '@bdevault/server';
import { randomUUID } from 'node:crypto';

const run = promisify(execFile);
const root = new URL('../../../', import.meta.url).pathname;
let dataDir: string;

async function cli(...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, bdevaultArgs([...args, '--data-dir', dataDir]), {
      cwd: root,
      env: { ...process.env, BDEVAULT_KEK: '', DATABASE_URL: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function withVault<T>(fn: (vault: Vault) => Promise<T>): Promise<T> {
  const vault = await openVault(loadConfig({ dataDir, logLevel: 'silent' }));
  try {
    return await fn(vault);
  } finally {
    await vault.close();
  }
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'bdevault-admin-'));
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('bdevault admin and audit', () => {
  it('refuses to act before the first start', async () => {
    const res = await cli('admin', 'enrollment-token', 'create');
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/bdevault serve/);
  });

  it('creates tokens, escrows through them, rotates the KEK, verifies and exports the audit log', async () => {
    await withVault((v) => v.services.identity.bootstrapFirstOrganization({ organizationName: 'CLI org' }));

    const enrollment = await cli(
      'admin',
      'enrollment-token',
      'create',
      '--max-uses',
      '2',
      '--group',
      'Laptops',
      '--json',
    );
    expect(enrollment.code, enrollment.stderr).toBe(0);
    const { enrollmentToken } = JSON.parse(enrollment.stdout);
    expect(enrollmentToken).toMatch(/^bdv_et_/);

    const apiToken = await cli(
      'admin',
      'api-token',
      'create',
      '--name',
      'helpdesk script',
      '--permissions',
      'keys:*,devices:read',
      '--json',
    );
    expect(apiToken.code, apiToken.stderr).toBe(0);
    const { token } = JSON.parse(apiToken.stdout);
    expect(token).toMatch(/^bdv_at_/);
    const badPermission = await cli(
      'admin',
      'api-token',
      'create',
      '--name',
      'x',
      '--permissions',
      'keys:steal',
    );
    expect(badPermission.code).toBe(2);

    const password = generateRecoveryPassword();
    const keyRecordId = await withVault(async (v) => {
      const app = await buildApp(v.config, v.deps);
      try {
        const enrolled = await app.inject({
          method: 'POST',
          url: '/api/escrow/enroll',
          headers: { authorization: `Bearer ${enrollmentToken}` },
          payload: { device: { name: 'LAPTOP-1' } },
        });
        const escrow = await app.inject({
          method: 'POST',
          url: '/api/escrow/recovery-keys',
          headers: { authorization: `Bearer ${enrolled.json().deviceCredential}` },
          payload: {
            volumes: [
              {
                volumeGuid: randomUUID(),
                volumeType: 'os',
                recoveryKeys: [{ recoveryKeyId: randomUUID(), recoveryPassword: password }],
              },
            ],
          },
        });
        return escrow.json().volumes[0].recoveryKeys[0].id as string;
      } finally {
        await app.close();
      }
    });

    const rotate = await cli('admin', 'rotate-kek', '--json');
    expect(rotate.code, rotate.stderr).toBe(0);
    expect(JSON.parse(rotate.stdout).rewrapped).toBe(1);

    const disclosed = await withVault(async (v) => {
      const app = await buildApp(v.config, v.deps);
      try {
        const res = await app.inject({
          method: 'POST',
          url: `/api/recovery-keys/${keyRecordId}/disclose`,
          headers: { authorization: `Bearer ${token}` },
          payload: { reason: 'after rotation' },
        });
        return res.json().recoveryPassword as string;
      } finally {
        await app.close();
      }
    });
    expect(disclosed).toBe(password);

    const verify = await cli('audit', 'verify', '--json');
    expect(verify.code, verify.stderr).toBe(0);
    expect(JSON.parse(verify.stdout)).toMatchObject({ ok: true });

    const jsonl = await cli('audit', 'export', '--format', 'jsonl');
    const actions = jsonl.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).action);
    expect(actions).toEqual(
      expect.arrayContaining([
        'organization.bootstrapped',
        'enrollment-token.created',
        'api-token.created',
        'recovery-key.escrowed',
        'kek.rotated',
        'recovery-key.disclosed',
      ]),
    );
    expect(jsonl.stdout).not.toContain(password);

    const csvPath = join(dataDir, 'audit.csv');
    const csv = await cli('audit', 'export', '--format', 'csv', '--output', csvPath);
    expect(csv.code, csv.stderr).toBe(0);
    expect(readFileSync(csvPath, 'utf8').split('\n')[0]).toMatch(/^seq,id,organization_id/);

    // Tampering is detected and exits 1.
    await withVault((v) =>
      v.db.updateTable('audit_log').set({ reason: 'edited' }).where('seq', '=', 2).execute(),
    );
    const broken = await cli('audit', 'verify');
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/BROKEN.*row 2/);
  }, 120_000);

  it('--help works on every command', async () => {
    for (const args of [
      ['serve'],
      ['admin'],
      ['admin', 'enrollment-token', 'create'],
      ['admin', 'api-token', 'create'],
      ['admin', 'rotate-kek'],
      ['audit', 'verify'],
      ['audit', 'export'],
    ]) {
      const res = await run(process.execPath, bdevaultArgs([...args, '--help']), { cwd: root });
      expect(res.stdout).toMatch(/Usage: bdevault/);
    }
  }, 120_000);
});
