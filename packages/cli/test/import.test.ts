// `bdevault import ad|csv` and `bdevault export keys` end to end: real Samba AD DC, real `age`.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { generateRecoveryPassword } from '@bdevault/bde';
import { loadConfig, openVault } from '@bdevault/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  computerDn,
  computerLdif,
  ldifDocument,
  recoveryObjectLdif,
} from '../../server/test/support/ad-ldif.js';
import { generateAdPassword, startSambaAd, type SambaAd } from '../../server/test/support/samba-ad.js';
import { sambaAvailability } from '../../server/test/support/samba-install.js';
import { bdevaultArgs } from './run-bdevault.js';

const run = promisify(execFile);
const root = new URL('../../../', import.meta.url).pathname;
const availability = await sambaAvailability();
if (!availability.ok) console.warn(availability.reason);
const ageOk = await run('age', ['--version']).then(
  () => true,
  () => false,
);
if (!ageOk)
  console.warn('the `age` binary is not installed (apt-get install -y age): skipping the export check');

let dataDir: string;

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, bdevaultArgs([...args, '--data-dir', dataDir]), {
      cwd: root,
      env: { ...process.env, BDEVAULT_KEK: '', DATABASE_URL: '', BDEVAULT_AD_BIND_PASSWORD: '', ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'bdevault-import-cli-'));
  const vault = await openVault(loadConfig({ dataDir, logLevel: 'silent' }));
  try {
    await vault.services.identity.bootstrapFirstOrganization({ organizationName: 'Import org' });
  } finally {
    await vault.close();
  }
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('bdevault import csv', () => {
  it('dry run then real run, with a per-row report and no digits of a bad password', async () => {
    const good = { keyId: randomUUID().toUpperCase(), password: generateRecoveryPassword() };
    const bad = generateRecoveryPassword().split('-');
    bad[1] = '000002';
    const file = join(dataDir, 'keys.csv');
    writeFileSync(
      file,
      [
        'deviceName,keyId,recoveryPassword,volumeType',
        `CSV-PC,${good.keyId},${good.password},os`,
        `CSV-PC2,${randomUUID()},${bad.join('-')},os`,
      ].join('\n'),
    );
    const dry = await cli(['import', 'csv', file, '--dry-run']);
    expect(dry.code, dry.stderr).toBe(3); // some rows were not importable
    expect(dry.stdout).toMatch(/row 2: created/);
    expect(dry.stdout).toMatch(/row 3: invalid .*group 2/);
    expect(dry.stdout).toMatch(/Dry run \(nothing written\)/);
    expect(dry.stdout).not.toContain(bad.join('-'));

    const real = await cli(['import', 'csv', file, '--json']);
    expect(real.code).toBe(3);
    const report = JSON.parse(real.stdout);
    expect(report.counts.keys).toMatchObject({ created: 1, invalid: 1 });
    expect(report.rows.map((r: { outcome: string }) => r.outcome)).toEqual(['created', 'invalid']);
  });
});

describe.skipIf(!availability.ok)('bdevault import ad (Samba AD)', () => {
  let dc: SambaAd;
  const passwords = new Map<string, string>();
  let svc: { upn: string; password: string };

  beforeAll(async () => {
    dc = await startSambaAd();
    const entries: string[] = [];
    for (let i = 0; i < 40; i++) {
      const computer = { name: `CLI-${i}`, parentDn: dc.computersDn, operatingSystem: 'Windows 11 Pro' };
      entries.push(computerLdif(computer));
      for (let k = 0; k < 2; k++) {
        const recoveryGuid = randomUUID().toUpperCase();
        const recoveryPassword = generateRecoveryPassword();
        passwords.set(recoveryGuid, recoveryPassword);
        entries.push(
          recoveryObjectLdif({
            computerDn: computerDn(computer),
            recoveryGuid,
            volumeGuid: randomUUID().toUpperCase(),
            recoveryPassword,
            createdAt: new Date(Date.UTC(2024, 0, 1 + i, k)),
            utcOffsetMinutes: 60,
          }),
        );
      }
    }
    await dc.seedLdif(ldifDocument(entries));
    const password = generateAdPassword();
    const user = await dc.createUser('svc-cli', password);
    await dc.grantRecoveryMetadataRead(user.dn, dc.baseDn);
    await dc.grantConfidentialRead(user.dn, dc.baseDn);
    svc = { upn: user.upn, password };
  });
  afterAll(async () => dc?.stop());

  const adArgs = () => [
    'import',
    'ad',
    '--url',
    dc.url,
    '--ca-file',
    dc.caCertPath,
    '--bind-dn',
    svc.upn,
    '--base-dn',
    dc.baseDn,
  ];

  it('imports with the bind password from BDEVAULT_AD_BIND_PASSWORD, then again changes nothing', async () => {
    const first = await cli([...adArgs(), '--json'], { BDEVAULT_AD_BIND_PASSWORD: svc.password });
    expect(first.code, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout);
    expect(report.counts).toMatchObject({
      records: 80,
      devices: { created: 40 },
      volumes: { created: 80 },
      keys: { created: 80, invalid: 0, conflicts: 0, notReadable: 0 },
    });
    expect(first.stdout + first.stderr).not.toContain(svc.password);

    const second = await cli(adArgs(), { BDEVAULT_AD_BIND_PASSWORD: svc.password });
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/keys: +0 created, 0 updated, 80 unchanged/);
    expect(second.stdout).toMatch(/Read 41 computer\(s\), 80 recovery object\(s\)/);

    const vault = await openVault(loadConfig({ dataDir, logLevel: 'silent' }));
    try {
      const [guid, password] = [...passwords][3]!;
      const row = await vault.db
        .selectFrom('recovery_keys')
        .selectAll()
        .where('key_id', '=', guid)
        .executeTakeFirstOrThrow();
      const disclosed = await vault.services.recoveryKeys.discloseRecoveryPassword({
        organizationId: row.organization_id,
        recoveryKeyRecordId: row.id,
        reason: 'cli import check',
        actor: { type: 'cli', id: null },
      });
      expect(disclosed.recoveryPassword).toBe(password);
    } finally {
      await vault.close();
    }
  });

  it('reads the password from --bind-password-file; a wrong one fails with a clear error and no secret', async () => {
    const file = join(dataDir, 'bind.txt');
    writeFileSync(file, `${svc.password}\n`, { mode: 0o600 });
    const ok = await cli([...adArgs(), '--bind-password-file', file, '--dry-run']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/Dry run/);
    const wrong = await cli(adArgs(), { BDEVAULT_AD_BIND_PASSWORD: 'Not-the-password-9' });
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/DIRECTORY_BIND_FAILED/);
    expect(wrong.stderr).not.toContain('Not-the-password-9');
  });

  it.skipIf(!ageOk)('export keys writes an age file that `age -d` opens', async () => {
    const identity = join(dataDir, 'identity.txt');
    await run('age-keygen', ['-o', identity]);
    const recipient = /public key: (age1\w+)/.exec(readFileSync(identity, 'utf8'))![1]!;
    const output = join(dataDir, 'keys.csv.age');
    const res = await cli(['export', 'keys', '--recipient', recipient, '--output', output]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/Exported 81 recovery key\(s\)/); // 80 from AD + 1 from the CSV test
    expect(statSync(output).mode & 0o777).toBe(0o600);
    const { stdout } = await run('age', ['-d', '-i', identity, output]);
    for (const [guid, password] of passwords) expect(stdout).toContain(`${guid},${password},`);
    const again = await cli(['export', 'keys', '--recipient', recipient, '--output', output]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists/);
    expect(existsSync(output)).toBe(true);
  });
});
