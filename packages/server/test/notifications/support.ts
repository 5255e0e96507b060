// Notification test fixtures: a vault on a controlled clock, a real SMTP sink and a real webhook receiver on loopback.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { buildApp } from '../../src/app.js';
import type { App } from '../../src/app-types.js';
import type { AppDeps } from '../../src/deps.js';
import { loadConfig } from '../../src/lib/config.js';
import { verifyWebhookSignature } from '../../src/modules/notifications/webhook-signature.js';
import { openVault } from '../../src/vault.js';
import { fastHasher, type TestVault } from '../helpers.js';
import { testDatabase } from '../support/postgres.js';

export interface ControlledClock {
  now(): Date;
  set(iso: string): void;
  advance(ms: number): void;
}

export function controlledClock(start: string): ControlledClock {
  let current = Date.parse(start);
  return {
    now: () => new Date(current),
    set: (iso) => (current = Date.parse(iso)),
    advance: (ms) => (current += ms),
  };
}

/** Like createTestVault, with the clock injected (audit times, retries and reports follow it). */
export async function createClockedVault(clock: ControlledClock): Promise<TestVault> {
  const dir = mkdtempSync(join(tmpdir(), 'bdevault-notify-'));
  const database = await testDatabase();
  const config = loadConfig({ dataDir: dir, logLevel: 'silent', ...database.input });
  const vault = await openVault(config, { passwordHasher: fastHasher, clock });
  const first = await vault.services.identity.bootstrapFirstOrganization({ organizationName: 'Notify org' });
  if (!first) throw new Error('bootstrap did not run');
  await vault.services.adoptLegacyMembershipGrants();
  const token = await vault.services.apiTokens.createApiToken({
    organizationId: first.organizationId,
    name: 'test admin',
    permissions: ['*'],
    creatorPermissions: undefined,
    actor: { type: 'cli', id: null },
  });
  const apps: App[] = [];
  const make = async (overrides: Partial<AppDeps>) => {
    const app = await buildApp(config, { ...vault.deps, ...overrides });
    await app.ready();
    apps.push(app);
    return app;
  };
  const app = await make({});
  return {
    dir,
    config,
    vault,
    app,
    adminToken: token.token,
    organizationId: first.organizationId,
    appWith: make,
    async close() {
      await vault.deps.notifications.idle();
      for (const a of apps) await a.close();
      await vault.close();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ReceivedMail {
  to: string[];
  subject: string;
  text: string;
  raw: string;
  authUser: string | undefined;
}

export async function startSmtpSink() {
  const mails: ReceivedMail[] = [];
  const logins: { username: string; password: string }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, callback) {
      logins.push({ username: auth.username ?? '', password: auth.password ?? '' });
      callback(null, { user: auth.username });
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        simpleParser(raw)
          .then((parsed) => {
            mails.push({
              to: session.envelope.rcptTo.map((r) => r.address),
              subject: parsed.subject ?? '',
              text: parsed.text ?? '',
              raw,
              authUser: typeof session.user === 'string' ? session.user : undefined,
            });
            callback();
          })
          .catch(callback);
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    mails,
    logins,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface ReceivedHook {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The signature checked with the product's verifyWebhookSignature and the path's secret. */
  signatureValid: boolean;
  /** The same, checked without the product's code: {@link recomputeSignature} as the docs describe it. */
  signatureRecomputed: boolean;
  status: number;
}

/**
 * A receiver's own check of `X-Bdevault-Signature`, written from docs/notifications-and-reports.md
 * with node:crypto only: the header is `t=<unix seconds>,v1=<hex>`, v1 is HMAC-SHA256 with the
 * secret over the header's `t` text, a dot and the raw body; `t` within five minutes of our clock.
 */
export function recomputeSignature(
  secret: string,
  rawBody: Buffer | string,
  header: string | undefined,
  nowSeconds: number,
): boolean {
  const match = /^t=(\d{1,12}),v1=([0-9a-f]{64})$/.exec(header ?? '');
  if (!match) return false;
  const t = match[1]!;
  const v1 = match[2]!;
  if (Math.abs(nowSeconds - Number(t)) > 300) return false;
  const expected = createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(Buffer.concat([Buffer.from(`${t}.`, 'utf8'), Buffer.from(rawBody)]))
    .digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}

/**
 * A webhook receiver: each path has its secret and a plan of statuses to answer (the last one
 * repeats), and every request's signature is verified with the receiver's own clock reading.
 */
export async function startWebhookReceiver(nowSeconds: () => number) {
  const received: ReceivedHook[] = [];
  const routes = new Map<string, { secret: string; plan: number[] }>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = raw.toString('utf8');
      const path = req.url ?? '/';
      const route = routes.get(path);
      const signature = req.headers['x-bdevault-signature'];
      const header = typeof signature === 'string' ? signature : undefined;
      const signatureValid =
        route !== undefined && verifyWebhookSignature(route.secret, body, header, nowSeconds());
      const signatureRecomputed =
        route !== undefined && recomputeSignature(route.secret, raw, header, nowSeconds());
      const status = route ? (route.plan.length > 1 ? route.plan.shift()! : (route.plan[0] ?? 200)) : 404;
      received.push({ path, headers: req.headers, body, signatureValid, signatureRecomputed, status });
      res.statusCode = status;
      res.end(status < 300 ? 'ok' : 'nope');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    received,
    route(path: string, secret: string, plan: number[] = [200]) {
      routes.set(path, { secret, plan: [...plan] });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Polls until `check` holds (mail parsing finishes a moment after the send resolves). */
export async function waitFor(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
