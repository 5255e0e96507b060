// `bdevault serve` starts on a free port with a temp data dir, answers /healthz, prints the one-time password once.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { get as httpsGet } from 'node:https';
import { connect as http2Connect } from 'node:http2';
import { createTestCertificates } from '../../server/test/support/test-ca.js';
import { generateRecoveryPassword } from '@bdevault/bde';
import { bdevaultArgs, runBdevault } from './run-bdevault.js';
import { afterAll, describe, expect, it } from 'vitest';

const root = new URL('../../../', import.meta.url).pathname;
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterAll(() => {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null || !child.pid) continue;
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function startServe(
  dataDir: string,
  logLevel = 'info',
  extraArgs: string[] = [],
): Promise<{ child: ChildProcess; url: string; stdout: () => string; stderr: () => string }> {
  // node itself, not `npx tsx`: a signal to a wrapper would leave the server running behind it.
  const child = spawn(
    process.execPath,
    bdevaultArgs(['serve', '--port', '0', '--data-dir', dataDir, '--log-level', logLevel, ...extraArgs]),
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BDEVAULT_KEK: '', DATABASE_URL: '' },
    },
  );
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}${err}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /bdevault listening on (https?:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]!, stdout: () => out, stderr: () => err });
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

async function stop(child: ChildProcess) {
  const exited = new Promise((r) => child.once('exit', r));
  process.kill(child.pid!, 'SIGTERM');
  await exited;
}

describe('bdevault serve', () => {
  it('answers /healthz with 200 and prints the one-time password on stdout only, once', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bdevault-serve-'));
    dirs.push(dataDir);
    const first = await startServe(dataDir);
    const health = await fetch(`${first.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect(first.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const oneTime = /one-time password:\s+(\S+)/.exec(first.stdout())?.[1];
    expect(oneTime).toBeDefined();

    // The one-time password signs in and must be changed first.
    const signIn = await fetch(`${first.url}/api/auth/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: oneTime }),
    });
    expect(signIn.status).toBe(200);
    expect(((await signIn.json()) as { mustChangePassword: boolean }).mustChangePassword).toBe(true);
    // The log lines (JSON on stdout) never carry it.
    const logLines = first
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'));
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) expect(line).not.toContain(oneTime!);
    expect(statSync(join(dataDir, 'kek.key')).mode & 0o777).toBe(0o600);
    await stop(first.child);

    const second = await startServe(dataDir);
    expect(second.stdout()).not.toContain('one-time password');
    expect((await fetch(`${second.url}/readyz`)).status).toBe(200);
    await stop(second.child);
    expect(readFileSync(join(dataDir, 'kek.key'), 'utf8').trim()).toHaveLength(44);
  });

  it('logs no recovery password, token or credential, even at trace level and on refused input', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bdevault-serve-'));
    dirs.push(dataDir);
    const server = await startServe(dataDir, 'trace');
    const cli = async (args: string[]) => {
      const r = await runBdevault([...args, '--data-dir', dataDir, '--json'], {
        env: { BDEVAULT_KEK: '', DATABASE_URL: '' },
      });
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout) as Record<string, string>;
    };
    const apiToken = (await cli(['admin', 'api-token', 'create', '--name', 'log test', '--permissions', '*']))
      .token!;
    const enrollmentToken = (await cli(['admin', 'enrollment-token', 'create'])).enrollmentToken!;
    const call = async (method: string, path: string, token: string, body?: unknown) => {
      const res = await fetch(`${server.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, json: (await res.json()) as Record<string, unknown> };
    };
    const enrolled = await call('POST', '/api/escrow/enroll', enrollmentToken, {
      device: { name: 'PC-LOG-01', os: 'Windows 11 Pro' },
    });
    expect(enrolled.status).toBe(201);
    const credential = enrolled.json.deviceCredential as string;
    const password = generateRecoveryPassword();
    const keyId = randomUUID().toUpperCase();
    const volume = (recoveryPassword: string, recoveryKeyId: string) => ({
      volumes: [
        {
          volumeGuid: randomUUID().toUpperCase(),
          volumeType: 'os',
          recoveryKeys: [{ recoveryKeyId, recoveryPassword }],
        },
      ],
    });
    expect(
      (await call('POST', '/api/escrow/recovery-keys', credential, volume(password, keyId))).status,
    ).toBe(200);
    // A refused escrow: the server must not echo the bad password into a log or the error text.
    const bad = password.slice(0, -1) + String((Number(password.slice(-1)) + 1) % 10);
    const refused = await call('POST', '/api/escrow/recovery-keys', credential, volume(bad, randomUUID()));
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.json)).not.toContain(bad);
    const found = await call('GET', `/api/recovery-keys?keyId=${keyId}`, apiToken);
    const recordId = (found.json.recoveryKeys as { id: string }[])[0]!.id;
    const disclosed = await call('POST', `/api/recovery-keys/${recordId}/disclose`, apiToken, {
      reason: 'log redaction test',
    });
    expect(disclosed.json.recoveryPassword).toBe(password);
    await stop(server.child);

    const log = server.stdout() + server.stderr();
    expect(log.split('\n').filter((l) => l.startsWith('{')).length).toBeGreaterThan(5);
    for (const secret of [password, password.replace(/-/g, ''), bad, bad.replace(/-/g, '')]) {
      expect(log).not.toContain(secret);
    }
    for (const secret of [apiToken, enrollmentToken, credential]) expect(log).not.toContain(secret);
  });

  it('serves HTTPS with HTTP/2 and HTTP/1.1 on one port with --tls-cert and --tls-key', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bdevault-serve-'));
    dirs.push(dataDir);
    const certs = await createTestCertificates(join(dataDir, 'tls'));
    const server = await startServe(dataDir, 'warn', [
      '--tls-cert',
      certs.serverCertPath,
      '--tls-key',
      certs.serverKeyPath,
    ]);
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // HTTP/1.1, verifying the certificate against the test CA.
    const http1 = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsGet(`${server.url}/healthz`, { ca: certs.caCertPem }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    expect(http1.status).toBe(200);
    expect(JSON.parse(http1.body)).toEqual({ status: 'ok' });
    // HTTP/2 on the same port.
    const session = http2Connect(server.url, { ca: certs.caCertPem });
    const status = await new Promise<number>((resolve, reject) => {
      const stream = session.request({ ':path': '/readyz' });
      stream.on('response', (headers) => resolve(Number(headers[':status'])));
      stream.on('error', reject);
      stream.resume();
      stream.end();
    });
    expect(status).toBe(200);
    // A client that does not trust the CA is refused by its own TLS check: the certificate is real.
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
    // SIGTERM with the HTTP/2 session still open and idle (as a browser or proxy keeps it): the
    // server asks it to go away and stops, instead of waiting for the session's idle timeout.
    const sessionClosed = new Promise((resolve) => session.once('close', resolve));
    await stop(server.child);
    await sessionClosed;
  });

  it('fails fast with a clear message on bad configuration', async () => {
    const child = spawn(process.execPath, bdevaultArgs(['serve', '--port', 'eighty']), {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(2);
    expect(err).toMatch(/Invalid configuration/);
    expect(err).toMatch(/port/);
  });
});
