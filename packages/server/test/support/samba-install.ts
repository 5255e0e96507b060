// Makes sure Debian's Samba AD DC tools are present, installing them on a clean root CI machine.
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { acquireFileLock } from './file-lock.js';

const run = promisify(execFile);

export const SAMBA_PACKAGES = [
  'samba',
  'samba-ad-provision',
  'samba-dsdb-modules',
  'samba-vfs-modules',
  'ldb-tools',
  'ldap-utils',
] as const;

const REQUIRED_COMMANDS = ['samba', 'samba-tool', 'ldbadd', 'openssl'] as const;

export type SambaAvailability = { ok: true } | { ok: false; reason: string };

async function findCommand(name: string): Promise<string | undefined> {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin']);
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

async function missingCommands(): Promise<string[]> {
  const missing: string[] = [];
  for (const name of REQUIRED_COMMANDS) if (!(await findCommand(name))) missing.push(name);
  return missing;
}

async function aptInstall(): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () =>
    run('apt-get', ['install', '-y', '--no-install-recommends', ...SAMBA_PACKAGES, 'openssl'], {
      env,
      timeout: 300_000,
      maxBuffer: 64 * 1024 * 1024,
    });
  try {
    await install();
  } catch {
    // A fresh machine often has no package lists yet.
    await run('apt-get', ['update'], { env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
    await install();
  }
}

let cached: Promise<SambaAvailability> | undefined;

/**
 * Resolves `{ ok: true }` when a Samba AD DC can be provisioned here, installing the Debian packages
 * when they are missing and this process may (root with apt-get). Otherwise `{ ok: false, reason }`
 * says why, so suites can skip with a clear message instead of failing.
 */
export function sambaAvailability(): Promise<SambaAvailability> {
  cached ??= checkAndInstall();
  return cached;
}

async function checkAndInstall(): Promise<SambaAvailability> {
  if (process.platform !== 'linux') return { ok: false, reason: 'Samba AD tests need Linux' };
  // The AD DC runs as root and listens on the fixed ports 389 and 636.
  if (process.getuid?.() !== 0) {
    return { ok: false, reason: 'Samba AD tests skipped: a Samba AD DC needs root (it binds ports 389/636)' };
  }
  let missing = await missingCommands();
  if (missing.length === 0) return { ok: true };
  if (!(await findCommand('apt-get'))) {
    return {
      ok: false,
      reason: `Samba AD tests skipped: ${missing.join(', ')} not installed and apt-get is not available`,
    };
  }
  // Test files run in parallel processes; only one may drive dpkg at a time.
  const lock = await acquireFileLock(join(tmpdir(), 'bdevault-samba-install.lock'), {
    timeoutMs: 600_000,
    what: 'another test process installing Samba',
  });
  try {
    missing = await missingCommands();
    if (missing.length > 0) await aptInstall();
  } catch (err) {
    return { ok: false, reason: `Samba AD tests skipped: apt-get install failed: ${(err as Error).message}` };
  } finally {
    await lock.release();
  }
  missing = await missingCommands();
  if (missing.length > 0) {
    return {
      ok: false,
      reason: `Samba AD tests skipped: still missing after install: ${missing.join(', ')}`,
    };
  }
  return { ok: true };
}
