// A real Samba Active Directory domain controller on 127.0.0.1 for tests: provision, start, seed, delegate, stop.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Attribute, Change, Client, EqualityFilter } from 'ldapts';
import {
  computerDn,
  computerLdif,
  ldifDocument,
  recoveryObjectLdif,
  type SeedRecoveryObject,
} from './ad-ldif.js';
import { acquireFileLock, isProcessAlive, type FileLock } from './file-lock.js';
import { createTestCertificates } from './test-ca.js';

const run = promisify(execFile);

// Throwaway test data needs no durability; skipping fsync makes provisioning and seeding faster.
const SAMBA_ENV = { ...process.env, TDB_NO_FSYNC: '1' };

/** schemaIDGUIDs from the AD schema (identical in Windows and Samba). */
export const AD_SCHEMA_GUIDS = {
  msFVERecoveryInformation: 'ea715d30-8f53-40d0-bd1e-6109186d782c',
  msFVERecoveryPassword: '43061ac1-c8ad-4ccc-b785-2bfac20fc60a',
  msFVEKeyPackage: '1fd55ea8-88a7-47dc-8129-0daa97186a54',
} as const;

// Samba's LDAP server has no port setting (389/636/3268/3269 are built in), so only one DC can run
// on 127.0.0.1 at a time: test files in parallel processes queue on this lock.
const LOCK_PATH = join(tmpdir(), 'bdevault-samba-ad.lock');
const LDAP_PORTS = [389, 636, 3268, 3269] as const;
const DIR_PREFIX = 'bdevault-samba-dc-';

export interface StartSambaAdOptions {
  /** Kerberos realm / DNS domain in upper case (default `EXAMPLE.TEST`). */
  realm?: string;
  /** NetBIOS domain name (default `EXAMPLE`). */
  domain?: string;
  /** How long to wait for another test process's DC to stop (default 110 s, under vitest's hook timeout). */
  lockTimeoutMs?: number;
  /** How long to wait for the first LDAPS bind after start (default 30 s). */
  startTimeoutMs?: number;
}

export interface CreatedUser {
  dn: string;
  /** `name@realm`, usable as a bind name. */
  upn: string;
  sid: string;
}

export interface SambaAd {
  /** `ldaps://127.0.0.1:636`. */
  url: string;
  /** `ldap://127.0.0.1:389`, for StartTLS. */
  startTlsUrl: string;
  caCertPem: string;
  caCertPath: string;
  realm: string;
  domain: string;
  /** `DC=example,DC=test`. */
  baseDn: string;
  computersDn: string;
  usersDn: string;
  adminDn: string;
  adminUpn: string;
  adminPassword: string;
  /** The temporary directory holding the whole domain (removed by stop()). */
  dir: string;
  pid: number;
  /** Runs one `ldbadd` over LDAP with the whole document (fast for thousands of entries). */
  seedLdif(ldif: string): Promise<{ added: number; ms: number }>;
  /** Adds a workstation account under CN=Computers (or `parentDn`); returns its DN. */
  addComputer(
    name: string,
    options?: { dnsHostName?: string; operatingSystem?: string; parentDn?: string },
  ): Promise<string>;
  /** Adds msFVE-RecoveryInformation children with one ldbadd call. */
  addRecoveryObjects(objects: readonly SeedRecoveryObject[]): Promise<{ added: number; ms: number }>;
  createGroup(name: string): Promise<string>;
  /** Creates an enabled user (password never expires) and adds it to the named groups, creating them. */
  createUser(
    name: string,
    password: string,
    groups?: readonly string[],
    attributes?: { displayName?: string; mail?: string },
  ): Promise<CreatedUser>;
  addGroupMember(groupDn: string, memberDn: string): Promise<void>;
  sidOf(dn: string): Promise<string>;
  /**
   * Lets `principalDn` see recovery objects below `targetDn` (default CN=Computers) and read their
   * non-confidential attributes: what a Windows "read BitLocker metadata" delegation gives.
   */
  grantRecoveryMetadataRead(principalDn: string, targetDn?: string): Promise<void>;
  /**
   * Grants Control Access on msFVE-RecoveryPassword and msFVE-KeyPackage of recovery objects below
   * `targetDn`: the confidential-attribute right needed to read the passwords themselves.
   */
  grantConfidentialRead(principalDn: string, targetDn?: string): Promise<void>;
  /** Runs `fn` with a client bound as Administrator over LDAPS. */
  withAdmin<T>(fn: (client: Client) => Promise<T>): Promise<T>;
  stop(): Promise<void>;
}

/** A password that satisfies AD complexity rules and is safe on a command line (no `%`, quotes or spaces). */
export function generateAdPassword(): string {
  return `Bv1-${randomBytes(15).toString('base64url')}`;
}

function baseDnOf(realm: string): string {
  return realm
    .toLowerCase()
    .split('.')
    .map((part) => `DC=${part}`)
    .join(',');
}

/** S-1-5-21-… from the binary objectSid. */
export function sidToString(sid: Buffer): string {
  const revision = sid.readUInt8(0);
  const count = sid.readUInt8(1);
  const authority = sid.readUIntBE(2, 6);
  const subs: number[] = [];
  for (let i = 0; i < count; i++) subs.push(sid.readUInt32LE(8 + i * 4));
  return ['S', revision, authority, ...subs].join('-');
}

async function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(true));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(false)));
  });
}

async function waitForFreePorts(deadline: number): Promise<void> {
  for (;;) {
    const busy: number[] = [];
    for (const port of LDAP_PORTS) if (await portInUse(port)) busy.push(port);
    if (busy.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`Samba AD harness: 127.0.0.1 port(s) ${busy.join(', ')} in use by another process`);
    }
    await sleep(250);
  }
}

/** Removes domain directories left by test processes that were killed before stop() ran. */
async function sweepAbandonedDirs(): Promise<void> {
  const root = tmpdir();
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(root, name);
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) continue;
    const owner = Number(await readFile(join(dir, 'owner.pid'), 'utf8').catch(() => ''));
    const abandoned = owner > 0 ? !isProcessAlive(owner) : Date.now() - (await stat(dir)).mtimeMs > 600_000;
    if (abandoned) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // group already gone
  }
}

function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Provisions a fresh domain in a temporary directory (~3 s) and starts `samba` on 127.0.0.1 with
 * LDAPS (test CA) and StartTLS. Call `sambaAvailability()` first; this throws when Samba is absent.
 */
export async function startSambaAd(options: StartSambaAdOptions = {}): Promise<SambaAd> {
  const realm = (options.realm ?? 'EXAMPLE.TEST').toUpperCase();
  const domain = (options.domain ?? 'EXAMPLE').toUpperCase();
  const baseDn = baseDnOf(realm);
  const adminPassword = generateAdPassword();
  await sweepAbandonedDirs();
  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  await writeFile(join(dir, 'owner.pid'), String(process.pid));
  let lock: FileLock | undefined;
  let child: ChildProcess | undefined;
  const output: string[] = [];
  const cleanupSync = () => {
    if (child?.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    lock?.releaseSync();
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', cleanupSync);
  try {
    const certs = await createTestCertificates(join(dir, 'tls'));
    for (const sub of ['run', 'log']) await mkdir(join(dir, sub), { recursive: true });
    const smbConf = join(dir, 'dc', 'etc', 'smb.conf');
    await run(
      'samba-tool',
      [
        'domain', 'provision', `--targetdir=${join(dir, 'dc')}`, `--realm=${realm}`, `--domain=${domain}`,
        '--server-role=dc', '--dns-backend=NONE', '--use-rfc2307', `--adminpass=${adminPassword}`,
        // The machine's own hostname is not a valid DC name, so name the DC explicitly.
        '--host-name=DC1', '--host-ip=127.0.0.1',
        '--option=interfaces = 127.0.0.1', '--option=bind interfaces only = yes',
        '--option=server services = ldap', `--option=pid directory = ${join(dir, 'run')}`,
        `--option=log file = ${join(dir, 'log', 'log.%m')}`, '--option=tls enabled = yes',
        `--option=tls keyfile = ${certs.serverKeyPath}`, `--option=tls certfile = ${certs.serverCertPath}`,
        `--option=tls cafile = ${certs.caCertPath}`,
      ], // prettier-ignore
      { env: SAMBA_ENV, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
    );

    lock = await acquireFileLock(LOCK_PATH, {
      timeoutMs: options.lockTimeoutMs ?? 110_000,
      what: 'the Samba AD DC of another test process to stop (it uses the fixed LDAP ports)',
    });
    await waitForFreePorts(Date.now() + 15_000);

    // `-i` ties samba's life to its stdin: if this process dies without stop(), the pipe closes and
    // samba exits too. `detached` gives it its own process group so stop() can signal the whole tree.
    child = spawn('samba', ['-i', '--no-process-group', '--maximum-runtime=3600', '-s', smbConf], {
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: SAMBA_ENV,
    });
    const keep = (chunk: Buffer) => {
      output.push(chunk.toString('utf8'));
      if (output.length > 200) output.splice(0, output.length - 200);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    let exitCode: number | null | undefined;
    void exited.then((code) => (exitCode = code));

    const url = 'ldaps://127.0.0.1:636';
    const adminUpn = `Administrator@${realm.toLowerCase()}`;
    const adminDn = `CN=Administrator,CN=Users,${baseDn}`;
    const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
    for (;;) {
      if (exitCode !== undefined) {
        throw new Error(`samba exited with code ${exitCode} during start:\n${output.join('').slice(-4000)}`);
      }
      const client = new Client({
        url,
        tlsOptions: { ca: certs.caCertPem },
        connectTimeout: 1000,
        timeout: 2000,
      });
      try {
        await client.bind(adminDn, adminPassword);
        break;
      } catch (err) {
        if (Date.now() > deadline) {
          throw new Error(`samba did not accept an LDAPS bind in time: ${(err as Error).message}`);
        }
      } finally {
        await client.unbind().catch(() => undefined);
      }
      await sleep(100);
    }

    const pid = child.pid!;
    const computersDn = `CN=Computers,${baseDn}`;
    const usersDn = `CN=Users,${baseDn}`;

    const withAdmin = async <T>(fn: (client: Client) => Promise<T>): Promise<T> => {
      const client = new Client({
        url,
        tlsOptions: { ca: certs.caCertPem },
        timeout: 60_000,
        strictDN: false,
      });
      try {
        await client.bind(adminDn, adminPassword);
        return await fn(client);
      } finally {
        await client.unbind().catch(() => undefined);
      }
    };

    const seedLdif = async (ldif: string) => {
      const file = join(dir, `seed-${randomBytes(4).toString('hex')}.ldif`);
      await writeFile(file, ldif, { mode: 0o600 });
      const started = Date.now();
      try {
        // Samba's tools read the password from PASSWD, which keeps it off the command line.
        const { stdout } = await run(
          'ldbadd',
          ['-H', 'ldap://127.0.0.1', '-U', `${domain}\\Administrator`, file],
          {
            env: { ...SAMBA_ENV, PASSWD: adminPassword },
            timeout: 300_000,
            maxBuffer: 64 * 1024 * 1024,
          },
        );
        const added = Number(/Added (\d+) records/.exec(stdout)?.[1] ?? NaN);
        // ldbadd stops at the first rejected entry yet may still exit 0: compare the count.
        const expected = ldif.match(/^dn::? /gm)?.length ?? 0;
        if (added !== expected)
          throw Object.assign(new Error(`added ${added} of ${expected} entries`), { stdout });
        return { added, ms: Date.now() - started };
      } catch (err) {
        const e = err as Error & { stderr?: string; stdout?: string };
        throw new Error(
          `ldbadd failed: ${e.message.slice(0, 300)} ${(e.stderr ?? '').slice(0, 2000)} ${(e.stdout ?? '').slice(0, 500)}`,
        );
      } finally {
        await rm(file, { force: true });
      }
    };

    const sidOf = (dn: string) =>
      withAdmin(async (client) => {
        const { searchEntries } = await client.search(dn, {
          scope: 'base',
          attributes: ['objectSid'],
          explicitBufferAttributes: ['objectSid'],
        });
        const sid = searchEntries[0]?.objectSid;
        if (!Buffer.isBuffer(sid)) throw new Error(`no objectSid for ${dn}`);
        return sidToString(sid);
      });

    const addAces = async (targetDn: string, sddl: string) => {
      await run('samba-tool', ['dsacl', 'set', '-s', smbConf, `--objectdn=${targetDn}`, `--sddl=${sddl}`], {
        env: SAMBA_ENV,
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
      });
    };

    const createGroup = async (name: string) => {
      const dn = `CN=${name},${usersDn}`;
      await withAdmin((client) => client.add(dn, { objectClass: 'group', sAMAccountName: name }));
      return dn;
    };

    const addGroupMember = async (groupDn: string, memberDn: string) => {
      await withAdmin((client) =>
        client.modify(
          groupDn,
          new Change({
            operation: 'add',
            modification: new Attribute({ type: 'member', values: [memberDn] }),
          }),
        ),
      );
    };

    const groupDnFor = async (name: string): Promise<string> => {
      const existing = await withAdmin(async (client) => {
        const { searchEntries } = await client.search(baseDn, {
          filter: new EqualityFilter({ attribute: 'sAMAccountName', value: name }),
          attributes: ['dn'],
        });
        return searchEntries[0]?.dn;
      });
      return existing ?? createGroup(name);
    };

    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      killGroup(pid, 'SIGTERM');
      const killDeadline = Date.now() + 5000;
      while (groupAlive(pid) && Date.now() < killDeadline) await sleep(50);
      if (groupAlive(pid)) killGroup(pid, 'SIGKILL');
      while (groupAlive(pid) && Date.now() < killDeadline + 2000) await sleep(50);
      child?.stdin?.destroy();
      process.removeListener('exit', cleanupSync);
      await lock?.release();
      await rm(dir, { recursive: true, force: true });
    };

    return {
      url,
      startTlsUrl: 'ldap://127.0.0.1:389',
      caCertPem: certs.caCertPem,
      caCertPath: certs.caCertPath,
      realm,
      domain,
      baseDn,
      computersDn,
      usersDn,
      adminDn,
      adminUpn,
      adminPassword,
      dir,
      pid,
      seedLdif,
      async addComputer(name, opts = {}) {
        const parentDn = opts.parentDn ?? computersDn;
        await seedLdif(computerLdif({ name, parentDn, ...opts }));
        return computerDn({ name, parentDn });
      },
      addRecoveryObjects: (objects) => seedLdif(ldifDocument(objects.map(recoveryObjectLdif))),
      createGroup,
      async createUser(name, password, groups = [], attributes = {}) {
        const dn = `CN=${name},${usersDn}`;
        const upn = `${name}@${realm.toLowerCase()}`;
        await withAdmin((client) =>
          client.add(dn, [
            new Attribute({ type: 'objectClass', values: ['user'] }),
            new Attribute({ type: 'sAMAccountName', values: [name] }),
            new Attribute({ type: 'userPrincipalName', values: [upn] }),
            new Attribute({ type: 'displayName', values: [attributes.displayName ?? name] }),
            ...(attributes.mail ? [new Attribute({ type: 'mail', values: [attributes.mail] })] : []),
            // AD takes the password as the quoted string in UTF-16LE, and only over an encrypted connection.
            new Attribute({ type: 'unicodePwd', values: [Buffer.from(`"${password}"`, 'utf16le')] }),
            // NORMAL_ACCOUNT | DONT_EXPIRE_PASSWORD
            new Attribute({ type: 'userAccountControl', values: [String(0x200 | 0x10000)] }),
          ]),
        );
        for (const group of groups) await addGroupMember(await groupDnFor(group), dn);
        return { dn, upn, sid: await sidOf(dn) };
      },
      addGroupMember,
      sidOf,
      async grantRecoveryMetadataRead(principalDn, targetDn = computersDn) {
        const sid = await sidOf(principalDn);
        await addAces(targetDn, `(OA;CIIO;RPLCLORC;;${AD_SCHEMA_GUIDS.msFVERecoveryInformation};${sid})`);
      },
      async grantConfidentialRead(principalDn, targetDn = computersDn) {
        const sid = await sidOf(principalDn);
        const cls = AD_SCHEMA_GUIDS.msFVERecoveryInformation;
        await addAces(
          targetDn,
          `(OA;CIIO;CR;${AD_SCHEMA_GUIDS.msFVERecoveryPassword};${cls};${sid})` +
            `(OA;CIIO;CR;${AD_SCHEMA_GUIDS.msFVEKeyPackage};${cls};${sid})`,
        );
      },
      withAdmin,
      stop,
    };
  } catch (err) {
    process.removeListener('exit', cleanupSync);
    cleanupSync();
    throw err;
  }
}
