/** Test fixtures: a vault on a real SQLite file in a temp dir, an app, and signed-in callers. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateRecoveryPassword } from '@bdevault/bde';
import { randomUUID } from 'node:crypto';
import { buildApp } from '../src/app.js';
import type { App } from '../src/app-types.js';
import type { AppDeps } from '../src/deps.js';
import { loadConfig, type Config, type ConfigInput } from '../src/lib/config.js';
import { createArgon2Hasher } from '../src/modules/identity/password-hasher.js';
import { openVault, type Vault } from '../src/vault.js';
import { afterAll, beforeAll } from 'vitest';
import { createPgDatabase, testDatabase } from './support/postgres.js';
import { statementsOf } from './support/sent-statements.js';

// Cheap Argon2id parameters: tests exercise the flow, not the cost.
export const fastHasher = createArgon2Hasher({ memoryCost: 1024, timeCost: 1 });

export interface TestVault {
  dir: string;
  config: Config;
  vault: Vault;
  app: App;
  adminToken: string;
  organizationId: string;
  /** Rebuilds the app with some dependencies replaced (e.g. a failing audit writer). */
  appWith(overrides: Partial<AppDeps>): Promise<App>;
  close(): Promise<void>;
}

export async function createTestVault(input: ConfigInput = {}): Promise<TestVault> {
  const dir = mkdtempSync(join(tmpdir(), 'bdevault-test-'));
  const database = await testDatabase(input);
  const config = loadConfig({ dataDir: dir, logLevel: 'silent', ...database.input, ...input });
  const vault = await openVault(config, { passwordHasher: fastHasher });
  const first = await vault.services.identity.bootstrapFirstOrganization({ organizationName: 'Test org' });
  if (!first) throw new Error('bootstrap did not run on an empty database');
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
      for (const a of apps) await a.close();
      await vault.close();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * For a PostgreSQL-only suite: a test vault on a fresh database of its own, opened before the
 * suite's tests (handed to `use`) and closed, its database dropped, after them.
 */
export function onFreshPostgresVault(use: (vault: TestVault) => void): void {
  let t: TestVault | undefined;
  let database: { url: string; drop(): Promise<void> } | undefined;
  beforeAll(async () => {
    database = await createPgDatabase();
    t = await createTestVault({ databaseUrl: database.url });
    use(t);
  });
  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });
}

/**
 * Discloses every key at once over HTTP as the test vault's administrator: the responses, in the
 * keys' order, and the statements node-postgres sent meanwhile (PostgreSQL suites count them).
 */
export async function discloseAllAtOnce(
  t: TestVault,
  keyIds: readonly string[],
  reason: string,
): Promise<{ responses: Awaited<ReturnType<App['inject']>>[]; sent: string[] }> {
  let responses: Awaited<ReturnType<App['inject']>>[] = [];
  const sent = await statementsOf(async () => {
    responses = await Promise.all(
      keyIds.map((id) =>
        t.app.inject({
          method: 'POST',
          url: `/api/recovery-keys/${id}/disclose`,
          headers: bearer(t.adminToken),
          payload: { reason },
        }),
      ),
    );
  });
  return { responses, sent };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export function randomKeyId(): string {
  return randomUUID().toUpperCase();
}

/** Enrolls a device through the HTTP API and returns its credential. */
export async function enrollDevice(
  t: TestVault,
  name = `PC-${randomKeyId().slice(0, 6)}`,
  groupName?: string,
) {
  const created = await t.app.inject({
    method: 'POST',
    url: '/api/enrollment-tokens',
    headers: bearer(t.adminToken),
    payload: { maxUses: 5, ...(groupName ? { deviceGroupName: groupName } : {}) },
  });
  if (created.statusCode !== 201) throw new Error(`enrollment token: ${created.body}`);
  const enrolled = await t.app.inject({
    method: 'POST',
    url: '/api/escrow/enroll',
    headers: bearer(created.json().enrollmentToken),
    payload: { device: { name, os: 'Windows 11 Pro' } },
  });
  if (enrolled.statusCode !== 201) throw new Error(`enroll: ${enrolled.body}`);
  return {
    name,
    deviceId: enrolled.json().deviceId as string,
    credential: enrolled.json().deviceCredential as string,
  };
}

export function escrowPayload(
  volumeGuid: string,
  keys: { keyId: string; password: string }[],
  volumeType = 'os',
) {
  return {
    volumes: [
      {
        volumeGuid,
        volumeType,
        driveLetter: 'C:',
        encryptionMethod: 'XtsAes128',
        protectionStatus: 'on',
        recoveryKeys: keys.map((k) => ({ recoveryKeyId: k.keyId, recoveryPassword: k.password })),
      },
    ],
  };
}

export function newKey() {
  return { keyId: randomKeyId(), password: generateRecoveryPassword() };
}

/**
 * `n` new recovery keys escrowed on one new device's C: volume through the escrow API: their
 * record ids and the passwords escrowed.
 */
export async function escrowKeysOnNewDevice(
  t: TestVault,
  n: number,
): Promise<{ id: string; password: string }[]> {
  const device = await enrollDevice(t);
  const keys = Array.from({ length: n }, () => newKey());
  const escrow = await t.app.inject({
    method: 'POST',
    url: '/api/escrow/recovery-keys',
    headers: bearer(device.credential),
    payload: escrowPayload(randomKeyId(), keys),
  });
  if (escrow.statusCode !== 200) throw new Error(`escrow: ${escrow.body}`);
  return (escrow.json().volumes[0].recoveryKeys as { id: string }[]).map((k, i) => ({
    id: k.id,
    password: keys[i]!.password,
  }));
}
