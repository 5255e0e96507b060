// `bdevault volume …` run as a real process against cryptsetup's BitLocker images (images.conf is the oracle).
import { execFileSync, spawn } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bitlkFixtures } from '../../bde/test/fixtures.js';
import { bdevaultArgs, runBdevault, type CliResult } from './run-bdevault.js';

const fixtures = bitlkFixtures();
const skipReason =
  'bitlk-images.tar.xz not found (../shared/fixtures/bitlk or BDEVAULT_BITLK_ARCHIVE): skipped';

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** No secret in either stream (the warning for a command-line value names the flag, not the value). */
function expectNoSecret(r: CliResult, ...secrets: string[]): void {
  for (const secret of secrets) {
    expect(r.stdout).not.toContain(secret);
    expect(r.stderr).not.toContain(secret);
  }
}

describe.skipIf(!fixtures)(`bdevault volume (real images)${fixtures ? '' : `: ${skipReason}`}`, () => {
  const img = (name: string) => fixtures!.image(name);
  let work: string;
  let n = 0;
  /** A fresh empty folder per test, so "nothing left behind" can be checked by listing it. */
  const folder = async () => {
    const dir = join(work, `t${++n}`);
    await mkdir(dir);
    return dir;
  };

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'bdevault-volume-cli-'));
  });
  afterAll(async () => {
    await rm(work, { recursive: true, force: true });
  });

  describe('info', () => {
    it('prints manage-bde status and protectors with their ids', async () => {
      const x = img('aes-xts-128');
      const r = await runBdevault(['volume', 'info', x.path]);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Size:\s+0\.10 GB/);
      expect(r.stdout).toMatch(/BitLocker Version:\s+2\.0/);
      expect(r.stdout).toMatch(/Conversion Status:\s+Fully Encrypted/);
      expect(r.stdout).toMatch(/Percentage Encrypted:\s+100\.0%/);
      expect(r.stdout).toMatch(/Encryption Method:\s+XTS-AES 128/);
      expect(r.stdout).toMatch(/Protection Status:\s+Protection On/);
      expect(r.stdout).toMatch(/Lock Status:\s+Locked/);
      expect(r.stdout).toMatch(/Key Protectors:\n\s+\S/);
      expect(r.stdout).toMatch(
        new RegExp(`Numerical Password:\\n\\s+ID: \\{${x.rpVmkGuid!.toUpperCase()}\\}`),
      );
      expect(r.stdout).toMatch(new RegExp(`Password:\\n\\s+ID: \\{${x.pwVmkGuid!.toUpperCase()}\\}`));
      expect(r.stdout).toContain(`{${x.guid!.toUpperCase()}}`);
    });

    it('--json: the documented shape', async () => {
      const x = img('aes-cbc-elephant-128');
      const r = await runBdevault(['volume', 'info', x.path, '--json']);
      expect(r.code).toBe(0);
      const info = JSON.parse(r.stdout);
      expect(info).toMatchObject({
        formatVersion: 1,
        source: x.path,
        kind: 'windows7',
        bitlockerVersion: '2.0',
        volumeGuid: x.guid!.toUpperCase(),
        size: 128 * 1024 * 1024,
        percentageEncrypted: 100,
        sectorSize: 512,
        encryptionMethod: { code: 0x8000, name: 'AES 128 with Diffuser' },
        conversionStatus: 'Fully Encrypted',
        encryptOnWrite: false,
        protectionStatus: 'On',
        lockStatus: 'Locked',
      });
      expect(info.metadata.offsets).toHaveLength(3);
      const byType = Object.fromEntries(
        (info.protectors as { type: string; id: string; typeName: string }[]).map((p) => [p.type, p]),
      );
      expect(byType['recovery-password']).toMatchObject({
        id: x.rpVmkGuid!.toUpperCase(),
        typeName: 'Numerical Password',
      });
      expect(byType.password).toMatchObject({ id: x.pwVmkGuid!.toUpperCase(), typeName: 'Password' });
    });

    it('smart card: the public-key protector with its certificate thumbprint', async () => {
      const x = img('aes-xts-128-smart-card');
      const text = await runBdevault(['volume', 'info', x.path]);
      expect(text.code).toBe(0);
      expect(text.stdout).toMatch(
        new RegExp(
          `Smart Card \\(Certificate Based\\):\\n\\s+ID: \\{${x.SC_VMK_GUID!.toUpperCase()}\\}\\n` +
            '\\s+Certificate Thumbprint:\\n\\s+fb23e268a833a7f330d1b427cf2ef6c8dbe14e0f',
        ),
      );
      const json = JSON.parse((await runBdevault(['volume', 'info', x.path, '--json'])).stdout);
      const pk = json.protectors.find((p: { type: string }) => p.type === 'public-key');
      expect(pk).toMatchObject({
        id: x.SC_VMK_GUID!.toUpperCase(),
        typeName: 'Public Key',
        heading: 'Smart Card (Certificate Based)',
        certificate: { thumbprint: 'fb23e268a833a7f330d1b427cf2ef6c8dbe14e0f', certType: 2 },
      });
    });

    it('startup-key image: the External Key protector and its .BEK file name', async () => {
      const x = img('aes-xts-128-startup-key');
      const id = x.SK_VMK_GUID!.toUpperCase();
      const r = await runBdevault(['volume', 'info', x.path]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(
        new RegExp(`External Key:\\n\\s+ID: \\{${id}\\}\\n\\s+External Key File Name:\\n\\s+${id}\\.BEK`),
      );
    });

    it('a file that is not BitLocker: a coded error, exit 2', async () => {
      const dir = await folder();
      const path = join(dir, 'zeros.img');
      await writeFile(path, Buffer.alloc(1024 * 1024));
      const r = await runBdevault(['volume', 'info', path]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^bdevault: ERR_BDE_NOT_BITLOCKER: /);
    });
  });

  describe('unlock', () => {
    it('with the recovery password from stdin: exit 0, names the protector, never echoes it', async () => {
      const x = img('aes-xts-128');
      const r = await runBdevault(['volume', 'unlock', x.path, '--recovery-password'], {
        input: `${x.rp}\n`,
      });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Numerical Password protector {${x.rpVmkGuid!.toUpperCase()}}`);
      expect(r.stdout).toContain('Metadata integrity: verified');
      expectNoSecret(r, x.rp!);
    });

    it('with the password (--json)', async () => {
      const x = img('aes-cbc-128');
      const r = await runBdevault(['volume', 'unlock', x.path, '--json', '--password'], {
        input: 'anaconda\n',
      });
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        unlocked: true,
        credential: 'password',
        volumeGuid: x.guid!.toUpperCase(),
        protector: { id: x.pwVmkGuid!.toUpperCase(), type: 'password', typeName: 'Password' },
        metadataVerified: true,
      });
      expectNoSecret(r, 'anaconda');
    });

    it('with the .BEK file (Windows 10 and Windows 11 forms)', async () => {
      for (const name of ['aes-xts-128-startup-key', 'aes-xts-128-startup-key-win11']) {
        const x = img(name);
        const id = x.SK_VMK_GUID!.toUpperCase();
        const r = await runBdevault([
          'volume',
          'unlock',
          x.path,
          '--startup-key',
          join(fixtures!.dir, `${id}.BEK`),
        ]);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain(`External Key protector {${id}}`);
      }
    });

    it('the smart-card image opens with its recovery password; a value on the command line is warned about', async () => {
      const x = img('aes-xts-128-smart-card');
      const r = await runBdevault([
        'volume',
        'unlock',
        x.path,
        '--recovery-password',
        x.rp!,
        '--key-id',
        x.rpVmkGuid!.slice(0, 8),
      ]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Numerical Password protector {${x.rpVmkGuid!.toUpperCase()}}`);
      expect(r.stderr).toMatch(/warning: a value given with --recovery-password is visible .* process list/);
      expectNoSecret(r, x.rp!);
    });

    it('a wrong credential: exit 1 and the one generic message, without the secret', async () => {
      const x = img('aes-xts-128');
      const wrong = 'not-the-password-42';
      const r = await runBdevault(['volume', 'unlock', x.path, '--password'], { input: `${wrong}\n` });
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        'bdevault: ERR_BDE_UNLOCK_FAILED: Unlock failed: the credential does not open this volume\n',
      );
      expectNoSecret(r, wrong);
      // A well-formed but wrong recovery password ends in the same message.
      const other = img('aes-xts-256').rp!;
      const rp = await runBdevault(['volume', 'unlock', x.path, '--recovery-password'], { input: other });
      expect(rp.code).toBe(1);
      expect(rp.stderr).toBe(r.stderr);
      expectNoSecret(rp, other);
    });

    it('a certificate key that matches no protector: the generic failure; its passphrase is read, not shown', async () => {
      const dir = await folder();
      const passphrase = 'cert-pass-9731';
      const { privateKey } = generateKeyPairSync('rsa', {
        modulusLength: 2048,
        privateKeyEncoding: { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase },
        publicKeyEncoding: { type: 'spki', format: 'pem' },
      });
      const key = join(dir, 'key.pem');
      await writeFile(key, privateKey);
      const x = img('aes-xts-128-smart-card');
      const r = await runBdevault(
        ['volume', 'unlock', x.path, '--certificate', key, '--certificate-password'],
        {
          input: `${passphrase}\n`,
        },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('ERR_BDE_UNLOCK_FAILED');
      expectNoSecret(r, passphrase);
    });

    it('credential usage: none, two, or --key-id without a recovery password', async () => {
      const x = img('aes-xts-128');
      const none = await runBdevault(['volume', 'unlock', x.path]);
      expect(none.code).toBe(1);
      expect(none.stderr).toContain('Give one credential: --recovery-password, --password');
      const two = await runBdevault(['volume', 'unlock', x.path, '--clear-key', '--startup-key', 'x.BEK']);
      expect(two.code).toBe(1);
      expect(two.stderr).toContain('Give exactly one credential, not --startup-key and --clear-key');
      const keyId = await runBdevault(['volume', 'unlock', x.path, '--clear-key', '--key-id', '64311DEA']);
      expect(keyId.code).toBe(1);
      expect(keyId.stderr).toContain('--key-id goes with --recovery-password');
      // A malformed recovery password: its own code, no digits of it in the message.
      const bad = '235818-357951-253979-013365-241120-245575-342914-591911';
      const malformed = await runBdevault(['volume', 'unlock', x.path, '--recovery-password'], {
        input: bad,
      });
      expect(malformed.code).toBe(1);
      expect(malformed.stderr).toMatch(/ERR_BDE_INVALID_PASSWORD_FORMAT: .*group 8/);
      expectNoSecret(malformed, bad, '591911');
    });
  });

  describe('decrypt', () => {
    it('XTS-AES 128 with the recovery password: --json summary and SHA-256 = images.conf', async () => {
      const x = img('aes-xts-128');
      const dir = await folder();
      const out = join(dir, 'plain.img');
      const r = await runBdevault(
        ['volume', 'decrypt', x.path, out, '--json', '--sha256', '--recovery-password'],
        {
          input: `${x.rp}\n`,
        },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      const summary = JSON.parse(r.stdout);
      expect(summary).toMatchObject({
        output: out,
        bytes: 100 * 1024 * 1024,
        sha256: x.sha256,
        credential: 'recovery-password',
        protector: { id: x.rpVmkGuid!.toUpperCase() },
      });
      expect(typeof summary.seconds).toBe('number');
      expect(await sha256File(out)).toBe(x.sha256);
      const s = await stat(out);
      expect(s.size).toBe(100 * 1024 * 1024);
      expect(s.mode & 0o777).toBe(0o600);
      expect(await readdir(dir)).toEqual(['plain.img']);
      expectNoSecret(r, x.rp!);
    });

    it('AES-CBC with the Elephant diffuser, with the password, over an existing file only with --force', async () => {
      const x = img('aes-cbc-elephant-128');
      const dir = await folder();
      const out = join(dir, 'plain.img');
      await writeFile(out, 'keep me');
      const refused = await runBdevault(['volume', 'decrypt', x.path, out, '--password'], {
        input: 'anaconda\n',
      });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('already exists; add --force to overwrite it');
      expect(await readFile(out, 'utf8')).toBe('keep me');
      const r = await runBdevault(['volume', 'decrypt', x.path, out, '--force', '--password'], {
        input: 'anaconda\n',
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/Decrypted 128\.0 MiB to .* in [\d.]+ s/);
      expect(r.stdout).toContain(`Password protector {${x.pwVmkGuid!.toUpperCase()}}`);
      expect(await sha256File(out)).toBe(x.sha256);
      expect(await readdir(dir)).toEqual(['plain.img']);
    });

    it('4096-byte sectors (XTS-AES 128 4k)', async () => {
      const x = img('aes-xts-128-4k');
      const dir = await folder();
      const out = join(dir, 'plain.img');
      const r = await runBdevault(['volume', 'decrypt', x.path, out, '--sha256', '--recovery-password'], {
        input: x.rp,
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`SHA-256: ${x.sha256}`);
      expect(await sha256File(out)).toBe(x.sha256);
    });

    it('an encrypt-on-write volume: ERR_BDE_UNSUPPORTED_EOW, non-zero, no file left', async () => {
      const x = img('aes-xts-128-eow');
      const dir = await folder();
      const r = await runBdevault(['volume', 'decrypt', x.path, join(dir, 'plain.img'), '--password'], {
        input: 'anaconda\n',
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^bdevault: ERR_BDE_UNSUPPORTED_EOW: .*encrypt-on-write/);
      expect(await readdir(dir)).toEqual([]);
    });

    it('SIGINT during the write removes the temporary file', async () => {
      const x = img('aes-cbc-elephant-256');
      const dir = await folder();
      const child = spawn(
        process.execPath,
        bdevaultArgs(['volume', 'decrypt', x.path, join(dir, 'plain.img'), '--password']),
        { stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      child.stdin.end('anaconda\n');
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      let sawTemp = false;
      for (let i = 0; i < 500 && child.exitCode === null; i++) {
        const names = await readdir(dir);
        if (names.some((f) => f.endsWith('.partial'))) {
          sawTemp = true;
          child.kill('SIGINT');
          break;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      const code = await exited;
      expect(sawTemp, 'the temporary file appeared before the run ended').toBe(true);
      expect(code).toBe(130);
      expect(stderr).toContain('Interrupted; the partial output was removed');
      expect(await readdir(dir)).toEqual([]);
    });
  });

  describe('keys', () => {
    it('recovery-passwords after a password unlock = images.conf RP with its protector id', async () => {
      const x = img('aes-xts-256');
      const r = await runBdevault(['volume', 'recovery-passwords', x.path, '--json', '--password'], {
        input: 'anaconda\n',
      });
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({
        volumeGuid: x.guid!.toUpperCase(),
        recoveryPasswords: [{ protectorId: x.rpVmkGuid!.toUpperCase(), recoveryPassword: x.rp }],
      });
      expect(r.stderr).not.toContain(x.rp!);
    });

    it('export-fvek (dislocker 66 bytes, mode 0600), then decrypt and re-export with --fvek-file', async () => {
      const x = img('aes-cbc-128');
      const dir = await folder();
      const fvek = join(dir, 'volume.fvek');
      const r = await runBdevault(['volume', 'export-fvek', x.path, fvek, '--password'], {
        input: 'anaconda\n',
      });
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('dislocker format, 66 bytes');
      const file = await readFile(fvek);
      expect(file.length).toBe(66);
      expect(file.readUInt16LE(0)).toBe(0x8002);
      expect((await stat(fvek)).mode & 0o777).toBe(0o600);

      const out = join(dir, 'plain.img');
      const d = await runBdevault([
        'volume',
        'decrypt',
        x.path,
        out,
        '--fvek-file',
        fvek,
        '--json',
        '--sha256',
      ]);
      expect(d.code, d.stderr).toBe(0);
      expect(JSON.parse(d.stdout)).toMatchObject({ sha256: x.sha256, credential: 'fvek', protector: null });
      expect(await sha256File(out)).toBe(x.sha256);

      const raw = join(dir, 'volume.key');
      const e = await runBdevault([
        'volume',
        'export-fvek',
        x.path,
        raw,
        '--format',
        'raw',
        '--fvek-file',
        fvek,
      ]);
      expect(e.code, e.stderr).toBe(0);
      expect(await readFile(raw)).toEqual(file.subarray(2, 18));
      // The raw key works as a credential too; a key of another volume does not.
      const u = await runBdevault(['volume', 'unlock', x.path, '--fvek-file', raw]);
      expect(u.code, u.stderr).toBe(0);
      const wrong = await runBdevault(['volume', 'unlock', img('togo-aes-cbc-128').path, '--fvek-file', raw]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('ERR_BDE_UNLOCK_FAILED');
      // The listing needs the VMK, which an FVEK cannot give.
      const noVmk = await runBdevault(['volume', 'recovery-passwords', x.path, '--fvek-file', fvek]);
      expect(noVmk.code).toBe(1);
      expect(noVmk.stderr).toContain('needs the volume master key');
    });

    it('rebuild-bek writes {GUID}.BEK (mode 0600) that unlocks the volume', async () => {
      const x = img('aes-xts-128-startup-key');
      const id = x.SK_VMK_GUID!.toUpperCase();
      const dir = await folder();
      const r = await runBdevault(['volume', 'rebuild-bek', x.path, dir, '--recovery-password'], {
        input: x.rp,
      });
      expect(r.code, r.stderr).toBe(0);
      const bek = join(dir, `${id}.BEK`);
      expect(await readdir(dir)).toEqual([`${id}.BEK`]);
      expect((await stat(bek)).mode & 0o777).toBe(0o600);
      const u = await runBdevault(['volume', 'unlock', x.path, '--startup-key', bek]);
      expect(u.code, u.stderr).toBe(0);
      expect(u.stdout).toContain(`External Key protector {${id}}`);
    });
  });

  describe('metadata package and repair', () => {
    it('a copy with the three FVE blocks zeroed decrypts to the reference hash', async () => {
      const x = img('aes-xts-128-new-entry');
      const dir = await folder();
      const pkg = join(dir, 'volume.bdemeta');
      const e = await runBdevault(['volume', 'export-metadata', x.path, pkg]);
      expect(e.code, e.stderr).toBe(0);
      expect(e.stdout).toContain(`{${x.guid!.toUpperCase()}}`);
      expect((await stat(pkg)).size).toBeLessThan(1024 * 1024);

      const damaged = join(dir, 'damaged.img');
      execFileSync('cp', ['--sparse=always', x.path, damaged]);
      const info = JSON.parse((await runBdevault(['volume', 'info', x.path, '--json'])).stdout);
      const handle = await open(damaged, 'r+');
      try {
        for (const offset of info.metadata.offsets as number[]) {
          await handle.write(Buffer.alloc(64 * 1024), 0, 64 * 1024, offset);
        }
      } finally {
        await handle.close();
      }
      const broken = await runBdevault(['volume', 'info', damaged]);
      expect(broken.code).toBe(2);
      expect(broken.stderr).toMatch(/ERR_BDE_(CORRUPT_METADATA|NOT_BITLOCKER)/);

      const out = join(dir, 'plain.img');
      const r = await runBdevault(
        ['volume', 'repair', damaged, out, '--metadata', pkg, '--json', '--sha256', '--recovery-password'],
        { input: x.rp },
      );
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ sha256: x.sha256 });
      expect(await sha256File(out)).toBe(x.sha256);
      expectNoSecret(r, x.rp!);
      // Same safe-write rules as decrypt.
      const again = await runBdevault(['volume', 'repair', damaged, out, '--metadata', pkg, '--clear-key']);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('already exists');
      expect(existsSync(out)).toBe(true);
    });
  });
});
