// Where the key-encryption key comes from: BDEVAULT_KEK (base64) or BDEVAULT_KEK_FILE (a file outside
// the data directory). Either keeps every key readable across restarts, and the wrong KEK opens none.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateRecoveryPassword } from '@bdevault/bde';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { loadConfig, type ConfigInput } from '../src/lib/config.js';
import { openVault } from '../src/vault.js';
import { bearer, escrowPayload, fastHasher, randomKeyId } from './helpers.js';
import { testDatabase } from './support/postgres.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** A vault on a fresh data dir (and database), reopened as often as the test asks, with `kek` input. */
async function installation() {
  const dataDir = mkdtempSync(join(tmpdir(), 'bdevault-kek-'));
  const database = await testDatabase();
  cleanups.push(async () => {
    await database.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  return {
    dataDir,
    /** Opens the vault with this KEK input, runs `f` against its app, closes it again. */
    async with<T>(
      kek: ConfigInput,
      f: (app: Awaited<ReturnType<typeof buildApp>>, token: string) => Promise<T>,
    ) {
      const config = loadConfig({ dataDir, logLevel: 'silent', ...database.input, ...kek });
      const vault = await openVault(config, { passwordHasher: fastHasher });
      try {
        const org = await vault.services.identity.bootstrapFirstOrganization({ organizationName: 'KEK org' });
        const organizationId =
          org?.organizationId ??
          (await vault.db.selectFrom('organizations').select('id').executeTakeFirstOrThrow()).id;
        const { token } = await vault.services.apiTokens.createApiToken({
          organizationId,
          name: 'kek test',
          permissions: ['*'],
          creatorPermissions: undefined,
          actor: { type: 'cli', id: null },
        });
        const app = await buildApp(config, vault.deps);
        try {
          return await f(app, token);
        } finally {
          await app.close();
        }
      } finally {
        await vault.close();
      }
    },
  };
}

async function escrowOne(app: Awaited<ReturnType<typeof buildApp>>, token: string) {
  const created = await app.inject({
    method: 'POST',
    url: '/api/enrollment-tokens',
    headers: bearer(token),
    payload: { maxUses: 1 },
  });
  const enrolled = await app.inject({
    method: 'POST',
    url: '/api/escrow/enroll',
    headers: bearer(created.json().enrollmentToken),
    payload: { device: { name: `PC-${randomKeyId().slice(0, 6)}`, os: 'Windows 11 Pro' } },
  });
  const key = { keyId: randomKeyId(), password: generateRecoveryPassword() };
  const escrowed = await app.inject({
    method: 'POST',
    url: '/api/escrow/recovery-keys',
    headers: bearer(enrolled.json().deviceCredential),
    payload: escrowPayload(randomKeyId(), [key]),
  });
  expect(escrowed.statusCode, escrowed.body).toBe(200);
  return key;
}

async function disclose(app: Awaited<ReturnType<typeof buildApp>>, token: string, keyId: string) {
  const found = await app.inject({ url: `/api/recovery-keys?keyId=${keyId}`, headers: bearer(token) });
  const id = found.json().recoveryKeys[0].id as string;
  return app.inject({
    method: 'POST',
    url: `/api/recovery-keys/${id}/disclose`,
    headers: bearer(token),
    payload: { reason: 'KEK source test' },
  });
}

describe('KEK sources', () => {
  it('BDEVAULT_KEK: no KEK file is written, keys stay readable after a restart, another KEK reads none', async () => {
    const install = await installation();
    const kekBase64 = randomBytes(32).toString('base64');
    const key = await install.with({ kekBase64 }, (app, token) => escrowOne(app, token));
    expect(existsSync(join(install.dataDir, 'kek.key'))).toBe(false);

    const again = await install.with({ kekBase64 }, (app, token) => disclose(app, token, key.keyId));
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json().recoveryPassword).toBe(key.password);

    const wrong = await install.with({ kekBase64: randomBytes(32).toString('base64') }, (app, token) =>
      disclose(app, token, key.keyId),
    );
    expect(wrong.statusCode).toBeGreaterThanOrEqual(500);
    expect(wrong.json().error.code).toBe('DECRYPTION_FAILED');
    expect(wrong.body).not.toContain(key.password);
  });

  it('BDEVAULT_KEK_FILE: the file is created with mode 0600 where it is named, not in the data dir', async () => {
    const install = await installation();
    const kekDir = mkdtempSync(join(tmpdir(), 'bdevault-kekfile-'));
    cleanups.push(async () => rmSync(kekDir, { recursive: true, force: true }));
    const kekFile = join(kekDir, 'bdevault.kek');
    const key = await install.with({ kekFile }, (app, token) => escrowOne(app, token));
    expect(statSync(kekFile).mode & 0o777).toBe(0o600);
    expect(existsSync(join(install.dataDir, 'kek.key'))).toBe(false);

    const again = await install.with({ kekFile }, (app, token) => disclose(app, token, key.keyId));
    expect(again.json().recoveryPassword).toBe(key.password);
    // The data directory's own default KEK (created now) is another key: it opens nothing.
    const other = await install.with({}, (app, token) => disclose(app, token, key.keyId));
    expect(other.json().error.code).toBe('DECRYPTION_FAILED');
  });
});
