/**
 * Browser-test support: Debian's Chromium through playwright-core, the real server on loopback
 * serving the built portal, an HTTP client for seeding through the API, and CSP-violation capture.
 */
import { createServer as createNetServer } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, rmdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { generateRecoveryPassword } from '@bdevault/bde';
import { loadConfig, startServer, type RunningServer } from '@bdevault/server';
import { createArgon2Hasher } from '../../server/src/modules/identity/password-hasher.js';

export const CHROMIUM = '/usr/bin/chromium';
export const chromiumMissing = !existsSync(CHROMIUM);
if (chromiumMissing) {
  console.warn(
    `[web tests] skipped: ${CHROMIUM} not found. Install it with: apt-get install -y --no-install-recommends chromium`,
  );
}

export const webDir = fileURLToPath(new URL('..', import.meta.url));
export const distDir = join(webDir, 'dist');
export const screenshotDir = join(webDir, 'test', 'screenshots');

function newestMtime(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const e of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, e)));
  return newest;
}

/** Builds the portal with Vite when dist is missing or older than its sources (one builder at a time). */
export async function ensurePortalBuilt(): Promise<void> {
  const sources = ['src', 'index.html', 'vite.config.ts', 'public', 'package.json'].map((p) =>
    join(webDir, p),
  );
  const stale = () =>
    !existsSync(join(distDir, 'index.html')) ||
    statSync(join(distDir, 'index.html')).mtimeMs < Math.max(...sources.filter(existsSync).map(newestMtime));
  if (!stale()) return;
  const lock = join(tmpdir(), 'bdevault-web-build.lock');
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (i > 600) rmSync(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    if (!stale()) return;
    const { build } = await import('vite');
    await build({ root: webDir, configFile: join(webDir, 'vite.config.ts'), logLevel: 'warn' });
  } finally {
    rmdirSync(lock);
  }
}

export interface Harness {
  server: RunningServer;
  url: string;
  dataDir: string;
  browser: Browser;
  adminPassword: string;
  close(): Promise<void>;
}

/** A free loopback port (closed again at once; the caller binds it right after). */
async function freePort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/**
 * The server with the built portal and a headless Chromium. `passkeys`: served as
 * http://localhost:PORT with that as the public URL, because WebAuthn needs a host name (an IP
 * address is never a valid relying-party id) and the server derives the relying party from it.
 */
export async function startHarness(options: { passkeys?: boolean } = {}): Promise<Harness> {
  await ensurePortalBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'bdevault-web-'));
  const port = options.passkeys ? await freePort() : 0;
  const publicUrl = options.passkeys ? `http://localhost:${port}` : undefined;
  const server = await startServer(
    loadConfig({
      dataDir,
      host: '127.0.0.1',
      port,
      logLevel: 'silent',
      webRoot: distDir,
      ...(publicUrl ? { publicUrl } : {}),
    }),
    { passwordHasher: createArgon2Hasher({ memoryCost: 1024, timeCost: 1 }) },
  );
  if (!server.firstAdmin) throw new Error('the first start did not create an administrator');
  // Playwright gives every launch a fresh temporary profile (its own --user-data-dir).
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    server,
    url: publicUrl ?? server.url,
    dataDir,
    browser,
    adminPassword: server.firstAdmin.oneTimePassword,
    async close() {
      await browser.close().catch(() => undefined);
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Collects CSP violations and page errors; the portal must produce none. */
export interface Watched {
  page: Page;
  context: BrowserContext;
  problems: string[];
}

export async function openPage(h: Harness, viewport = { width: 1280, height: 900 }): Promise<Watched> {
  const context = await h.browser.newContext({ viewport, baseURL: h.url });
  await context
    .grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.url })
    .catch(() => undefined);
  await context.addInitScript(
    `document.addEventListener('securitypolicyviolation', (e) => {
       (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI);
       console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI);
     });`,
  );
  // Every error alert the page ever shows, with the step heading beside it: one that flashes for a
  // frame is gone before a locator can read it (waitForHeading reports these).
  await context.addInitScript(
    `new MutationObserver(() => {
       for (const el of document.querySelectorAll('.alert-error')) {
         if (el.__seen) continue;
         el.__seen = true;
         const h2 = document.querySelector('h2');
         (window.__alerts = window.__alerts || []).push((h2 ? h2.textContent + ' | ' : '') + el.textContent);
       }
     }).observe(document, { childList: true, subtree: true, characterData: true });`,
  );
  const page = await context.newPage();
  page.setDefaultTimeout(8_000);
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const text = m.text();
    // A refused API call logs "Failed to load resource: … 4xx"; the page shows it, which is intended.
    if (/Failed to load resource: the server responded with a status of 4\d\d/.test(text)) return;
    problems.push(text);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return { page, context, problems };
}

/** What the page shows (address, headings, alerts), for a failed test's message. */
export async function describePage(page: Page): Promise<string> {
  const headings = await page
    .getByRole('heading')
    .allTextContents()
    .catch(() => []);
  const alerts = await page
    .getByRole('alert')
    .allTextContents()
    .catch(() => []);
  return `at ${page.url()}; headings: ${JSON.stringify(headings)}; alerts: ${JSON.stringify(alerts)}`;
}

/**
 * Waits for a heading after an action; an error alert on the way fails at once with its words (and
 * the request id), instead of a bare time-out that says nothing of what the page showed.
 */
export async function waitForHeading(page: Page, name: RegExp, timeout = 20_000): Promise<void> {
  const heading = page.getByRole('heading', { name });
  const alert = page.locator('.alert-error');
  await heading
    .or(alert)
    .first()
    .waitFor({ timeout })
    .catch(async (err: Error) => {
      throw new Error(`no heading ${name}: ${err.message.split('\n')[0]} (${await describePage(page)})`);
    });
  if (await heading.isVisible()) return;
  // An alert came first. Seen once in CI (the wizard's step 3 → 4): an alert that was gone a moment
  // later, with the expected heading in its place. A lasting alert still fails (after a short
  // grace); a passing one is reported with its words, so the next reader can find what flashed.
  const seen = await alert
    .first()
    .textContent({ timeout: 1000 })
    .catch(() => null);
  const arrived = await heading
    .waitFor({ timeout: 5000 })
    .then(() => true)
    .catch(() => false);
  if (!arrived) {
    throw new Error(`an error instead of heading ${name}: ${seen ?? '?'} (${await describePage(page)})`);
  }
  const recorded = await page.evaluate('(window.__alerts || []).slice(-3)').catch(() => []);
  console.warn(
    `[web tests] a passing alert before heading ${name}: ${seen ?? '(gone before it was read)'}; ` +
      `alerts the page showed last: ${JSON.stringify(recorded)}`,
  );
}

export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true });
  await page.screenshot({ path: join(screenshotDir, `${name}.png`), fullPage: true });
}

/** Signs in through the form; with `newPassword`, also does the first-sign-in password change. */
export async function signIn(page: Page, username: string, password: string, newPassword?: string) {
  await page.goto('/sign-in');
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  if (newPassword !== undefined) {
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('New password again').fill(newPassword);
    await page.getByRole('button', { name: 'Change password' }).click();
  }
  await page.getByRole('navigation', { name: 'Main' }).waitFor();
}

/** A cookie-session API client for seeding (what the portal itself does, without a browser). */
export class ApiClient {
  #cookie = '';
  #csrf = '';
  constructor(readonly baseUrl: string) {}

  async signIn(username: string, password: string): Promise<void> {
    const res = await fetch(`${this.baseUrl}/api/auth/sign-in`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (!res.ok) throw new Error(`sign-in ${res.status}: ${await res.text()}`);
    this.#cookie = (res.headers.get('set-cookie') ?? '').split(';')[0]!;
    this.#csrf = ((await res.json()) as { csrfToken: string }).csrfToken;
  }

  async call<T = unknown>(method: string, path: string, body?: unknown, bearer?: string): Promise<T> {
    const headers: Record<string, string> = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    else {
      headers.cookie = this.#cookie;
      headers['x-csrf-token'] = this.#csrf;
    }
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path} ${res.status}: ${text}`);
    return (text ? JSON.parse(text) : null) as T;
  }
}

export interface SeededDevice {
  name: string;
  deviceId: string;
  credential: string;
  keyId: string;
  password: string;
  volumeGuid: string;
}

/** Enrollment token → device → escrow, as the agent does it. */
export async function seedDevice(
  admin: ApiClient,
  name: string,
  options: { group?: string; owner?: string } = {},
): Promise<SeededDevice> {
  const token = await admin.call<{ enrollmentToken: string }>('POST', '/api/enrollment-tokens', {
    maxUses: 1,
    ...(options.group ? { deviceGroupName: options.group } : {}),
  });
  const enrolled = await admin.call<{ deviceId: string; deviceCredential: string }>(
    'POST',
    '/api/escrow/enroll',
    { device: { name, os: 'Windows 11 Pro', ...(options.owner ? { registeredOwner: options.owner } : {}) } },
    token.enrollmentToken,
  );
  const key = { keyId: randomUUID().toUpperCase(), password: generateRecoveryPassword() };
  const volumeGuid = randomUUID().toUpperCase();
  await escrowKey(admin, enrolled.deviceCredential, volumeGuid, key);
  return { name, deviceId: enrolled.deviceId, credential: enrolled.deviceCredential, volumeGuid, ...key };
}

export async function escrowKey(
  client: ApiClient,
  credential: string,
  volumeGuid: string,
  key: { keyId: string; password: string },
) {
  return client.call(
    'POST',
    '/api/escrow/recovery-keys',
    {
      volumes: [
        {
          volumeGuid,
          volumeType: 'os',
          driveLetter: 'C:',
          encryptionMethod: 'XtsAes128',
          protectionStatus: 'on',
          recoveryKeys: [{ recoveryKeyId: key.keyId, recoveryPassword: key.password }],
        },
      ],
    },
    credential,
  );
}

export interface ReceivedMail {
  to: string[];
  subject: string;
  text: string;
}

/** An SMTP sink on loopback (smtp-server + mailparser): what the organization's mail server would receive. */
export async function startSmtpSink() {
  const { SMTPServer } = await import('smtp-server');
  const { simpleParser } = await import('mailparser');
  const messages: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          const to = ([] as { value: { address?: string }[] }[])
            .concat(parsed.to ?? [])
            .flatMap((a) => a.value.map((v) => v.address ?? ''));
          messages.push({ to, subject: parsed.subject ?? '', text: parsed.text ?? '' });
          callback();
        })
        .catch((err: Error) => callback(err));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    messages,
    async next(address: string, match: RegExp, timeoutMs = 8000): Promise<ReceivedMail> {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find((m) => m.to.includes(address) && match.test(m.text));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no mail to ${address} matching ${match}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
