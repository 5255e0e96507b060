// A vault and app for identity tests: a clock the test moves, a public URL, and helpers to sign in.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../../../src/app.js';
import type { App } from '../../../src/app-types.js';
import { loadConfig, type Config, type ConfigInput } from '../../../src/lib/config.js';
import { openVault, type Vault } from '../../../src/vault.js';
import { fastHasher } from '../../helpers.js';
import { testDatabase } from '../../support/postgres.js';

export interface TestClock {
  now(): Date;
  advance(ms: number): void;
  set(date: Date): void;
}

export function testClock(start = new Date()): TestClock {
  let current = start.getTime();
  return {
    now: () => new Date(current),
    advance: (ms) => {
      current += ms;
    },
    set: (date) => {
      current = date.getTime();
    },
  };
}

export interface IdentityVault {
  dir: string;
  config: Config;
  vault: Vault;
  app: App;
  clock: TestClock;
  organizationId: string;
  adminId: string;
  /** An org-admin API token (Bearer). */
  adminToken: string;
  /** A local user with a known password and optional built-in roles. */
  createUser(username: string, roles?: string[]): Promise<{ userId: string; password: string }>;
  signIn(username: string, password: string): Promise<Session>;
  close(): Promise<void>;
}

export interface Session {
  status: number;
  body: Record<string, unknown>;
  cookie: string;
  csrf: string;
  /** Headers for a cookie request that changes something. */
  headers: Record<string, string>;
}

export function sessionFrom(response: {
  statusCode: number;
  headers: Record<string, unknown>;
  json(): unknown;
}): Session {
  const body = response.json() as Record<string, unknown>;
  const setCookie = ([] as unknown[]).concat(response.headers['set-cookie'] ?? []).map(String);
  const cookie = setCookie.find((c) => c.startsWith('bdv_session='))?.split(';')[0] ?? '';
  const csrf = typeof body.csrfToken === 'string' ? body.csrfToken : '';
  return { status: response.statusCode, body, cookie, csrf, headers: { cookie, 'x-csrf-token': csrf } };
}

export async function createIdentityVault(input: ConfigInput = {}): Promise<IdentityVault> {
  const dir = mkdtempSync(join(tmpdir(), 'bdevault-identity-'));
  const database = await testDatabase(input);
  const config = loadConfig({
    dataDir: dir,
    logLevel: 'silent',
    publicUrl: 'https://vault.example.test',
    ...database.input,
    ...input,
  });
  const clock = testClock(new Date('2030-01-01T09:00:00Z'));
  const vault = await openVault(config, { passwordHasher: fastHasher, clock });
  const first = await vault.services.identity.bootstrapFirstOrganization({
    organizationName: 'Identity org',
  });
  if (!first) throw new Error('bootstrap did not run');
  await vault.services.adoptLegacyMembershipGrants();
  const admin = await vault.db
    .selectFrom('users')
    .select('id')
    .where('username', '=', 'admin')
    .executeTakeFirstOrThrow();
  const token = await vault.services.apiTokens.createApiToken({
    organizationId: first.organizationId,
    name: 'identity admin',
    permissions: ['*'],
    creatorPermissions: undefined,
    actor: { type: 'cli', id: null },
  });
  const app = await buildApp(config, vault.deps);
  await app.ready();
  let counter = 0;
  return {
    dir,
    config,
    vault,
    app,
    clock,
    organizationId: first.organizationId,
    adminId: admin.id,
    adminToken: token.token,
    async createUser(username, roles = []) {
      const password = `Correct Horse ${++counter} Battery Staple`;
      const { userId } = await vault.services.identity.createUser({
        organizationId: first.organizationId,
        username,
        password,
        permissions: [],
        mustChangePassword: false,
      });
      for (const roleId of roles) {
        await vault.services.access.createAssignment(
          first.organizationId,
          { roleId, userId },
          { type: 'cli', id: null },
        );
      }
      return { userId, password };
    },
    // Through the service: the HTTP route's per-address request limit (10 a minute) would trip in tests.
    async signIn(username, password): Promise<Session> {
      try {
        const result = await vault.services.identity.signIn(username, password);
        const cookie = `bdv_session=${result.sessionToken}`;
        return {
          status: 200,
          body: { ...result, sessionToken: undefined },
          cookie,
          csrf: result.csrfToken,
          headers: { cookie, 'x-csrf-token': result.csrfToken },
        };
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode ?? 500;
        return { status, body: { error: err }, cookie: '', csrf: '', headers: {} as Record<string, string> };
      }
    },
    async close() {
      await app.close();
      await vault.close();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
