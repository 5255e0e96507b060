// Importing from a real Samba AD DC into the vault: counts, fields, disclosure, idempotence, delegation, conflicts, scheduled sync.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateRecoveryPassword } from '@bdevault/bde';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/lib/config.js';
import type { ReadAdRecoveryKeysOptions } from '../../src/modules/directory-import/ad-reader.js';
import { startServer, type RunningServer } from '../../src/vault.js';
import { bearer, createTestVault, fastHasher, type TestVault } from '../helpers.js';
import {
  computerDn,
  computerLdif,
  ldifDocument,
  recoveryObjectLdif,
  type SeedComputer,
  type SeedRecoveryObject,
} from '../support/ad-ldif.js';
import { generateAdPassword, startSambaAd, type CreatedUser, type SambaAd } from '../support/samba-ad.js';
import { sambaAvailability } from '../support/samba-install.js';

const availability = await sambaAvailability();
if (!availability.ok) console.warn(availability.reason);

const COMPUTERS = 360;
const KEYS_PER_COMPUTER = 3;

interface Seed extends SeedRecoveryObject {
  computer: SeedComputer;
  invalid: boolean;
}

function corrupt(password: string): string {
  const groups = password.split('-');
  groups[2] = String((Number(groups[2]) + 1) % 1_000_000).padStart(6, '0'); // checksum breaks
  return groups.join('-');
}

describe.skipIf(!availability.ok)('Active Directory import into the vault (Samba AD)', () => {
  let dc: SambaAd;
  let delegated: CreatedUser & { password: string };
  let metadataOnly: CreatedUser & { password: string };
  const seeds = new Map<string, Seed>();
  const computers: SeedComputer[] = [];
  let t: TestVault;
  let directory: ReadAdRecoveryKeysOptions;
  const actor = { type: 'cli' as const, id: 'test' };

  beforeAll(async () => {
    dc = await startSambaAd();
    const entries: string[] = [];
    for (let i = 0; i < COMPUTERS; i++) {
      computers.push({
        name: `PC-${String(i).padStart(4, '0')}`,
        parentDn: dc.computersDn,
        dnsHostName: `pc-${String(i).padStart(4, '0')}.example.test`,
        operatingSystem: 'Windows 11 Enterprise',
      });
    }
    entries.push(...computers.map(computerLdif));
    let n = 0;
    for (const computer of computers) {
      const osVolume = randomUUID().toUpperCase();
      const dataVolume = randomUUID().toUpperCase();
      for (let k = 0; k < KEYS_PER_COMPUTER; k++) {
        n++;
        const invalid = n % 211 === 0;
        const password = generateRecoveryPassword();
        const seed: Seed = {
          computer,
          invalid,
          computerDn: computerDn(computer),
          recoveryGuid: randomUUID().toUpperCase(),
          volumeGuid: k < 2 ? osVolume : dataVolume,
          recoveryPassword: invalid ? corrupt(password) : password,
          keyPackage: n % 3 === 0 ? new Uint8Array(randomBytes(120)) : undefined,
          createdAt: new Date(Date.UTC(2023, 0, 1) + n * 3_600_000 + k * 60_000),
          utcOffsetMinutes: [-480, 0, 60][n % 3]!,
        };
        seeds.set(seed.recoveryGuid, seed);
        entries.push(recoveryObjectLdif(seed));
      }
    }
    await dc.seedLdif(ldifDocument(entries)); // one LDIF, one ldbadd

    const pw1 = generateAdPassword();
    delegated = { ...(await dc.createUser('svc-bitlocker', pw1)), password: pw1 };
    const pw2 = generateAdPassword();
    metadataOnly = { ...(await dc.createUser('svc-metadata', pw2)), password: pw2 };
    await dc.grantRecoveryMetadataRead(delegated.dn, dc.baseDn);
    await dc.grantRecoveryMetadataRead(metadataOnly.dn, dc.baseDn);
    await dc.grantConfidentialRead(delegated.dn, dc.baseDn);
    directory = {
      url: dc.url,
      tlsCa: dc.caCertPem,
      baseDn: dc.baseDn,
      bindDn: delegated.upn,
      bindPassword: delegated.password,
    };
    t = await createTestVault();
  });

  afterAll(async () => {
    await t?.close();
    await dc?.stop();
  });

  const invalidSeeds = () => [...seeds.values()].filter((s) => s.invalid);
  // A record with an invalid password writes nothing, so a volume whose only key is invalid is not made.
  const importedVolumes = () => new Set(validSeeds().map((s) => s.volumeGuid)).size;
  const validSeeds = () => [...seeds.values()].filter((s) => !s.invalid);

  it('imports > 1,000 recovery objects: devices, volumes, keys and key packages with the right fields', async () => {
    expect(seeds.size).toBeGreaterThan(1000);
    const progress: number[] = [];
    const report = await t.vault.services.directoryImport.importFromAd({
      organizationId: t.organizationId,
      directory,
      actor,
      onProgress: (p) => progress.push(p.records),
    });
    const valid = validSeeds();
    expect(report.counts).toEqual({
      records: seeds.size,
      devices: { created: COMPUTERS, updated: 0, unchanged: 0 },
      volumes: { created: importedVolumes(), updated: 0, unchanged: 0 },
      keys: {
        created: valid.length,
        updated: 0,
        unchanged: 0,
        conflicts: 0,
        invalid: invalidSeeds().length,
        notReadable: 0,
      },
    });
    expect(report.directory?.recoveryObjects).toBe(seeds.size);
    expect(progress.length).toBeGreaterThan(4); // batches of ~200
    expect(report.invalidPasswords.map((p) => p.keyId).sort()).toEqual(
      invalidSeeds()
        .map((s) => s.recoveryGuid)
        .sort(),
    );
    for (const problem of report.invalidPasswords) {
      const seed = seeds.get(problem.keyId)!;
      expect(problem.deviceName).toBe(seed.computer.name);
      expect(problem.reason).toMatch(/group 3/);
      for (const group of seed.recoveryPassword.split('-'))
        expect(JSON.stringify(problem)).not.toContain(group);
    }

    const db = t.vault.db;
    const devices = await db
      .selectFrom('devices')
      .selectAll()
      .where('organization_id', '=', t.organizationId)
      .execute();
    expect(devices).toHaveLength(COMPUTERS);
    const pc7 = devices.find((d) => d.name === 'PC-0007')!;
    expect(pc7).toMatchObject({ dns_name: 'pc-0007.example.test', os: 'Windows 11 Enterprise' });
    const refs = await db.selectFrom('device_external_refs').selectAll().execute();
    expect(refs).toHaveLength(COMPUTERS);
    expect(refs.every((r) => /^[0-9A-F-]{36}$/.test(r.external_id) && r.source === 'ad')).toBe(true);
    expect(await db.selectFrom('volumes').select('id').execute()).toHaveLength(importedVolumes());
    const keys = await db.selectFrom('recovery_keys').selectAll().execute();
    expect(keys).toHaveLength(valid.length);
    expect(keys.every((k) => k.source === 'import')).toBe(true);
    const packages = await db.selectFrom('recovery_key_packages').select('recovery_key_id').execute();
    expect(packages).toHaveLength(valid.filter((s) => s.keyPackage).length);

    // The volume's newest key is active, older ones superseded; creation time comes from the object name.
    const seed = valid.find((s) => s.computer.name === 'PC-0010' && s.volumeGuid && !s.keyPackage)!;
    const row = keys.find((k) => k.key_id === seed.recoveryGuid)!;
    expect(row.created_at).toBe(seed.createdAt.toISOString());
    const sameVolume = keys.filter((k) => k.volume_id === row.volume_id);
    const newest = sameVolume.reduce((a, b) => (a.created_at > b.created_at ? a : b));
    for (const k of sameVolume) expect(k.status).toBe(k === newest ? 'active' : 'superseded');

    // Disclosure through the API returns exactly what AD holds.
    const disclosed = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${row.id}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason: 'user locked out at preboot' },
    });
    expect(disclosed.statusCode, disclosed.body).toBe(200);
    expect(disclosed.json().recoveryPassword).toBe(seed.recoveryPassword);

    // One audit row for the run, none per key.
    const audit = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('action', '=', 'recovery-keys.imported')
      .execute();
    expect(audit).toHaveLength(1);
    expect(JSON.parse(audit[0]!.details)).toMatchObject({ source: 'ad', keysCreated: valid.length });
    expect(audit[0]!.actor_type).toBe('cli');
  });

  it('re-import changes nothing', async () => {
    const before = await t.vault.db
      .selectFrom('recovery_keys')
      .select(['id', 'status', 'created_at'])
      .execute();
    const report = await t.vault.services.directoryImport.importFromAd({
      organizationId: t.organizationId,
      directory,
      actor,
    });
    expect(report.counts.devices).toEqual({ created: 0, updated: 0, unchanged: COMPUTERS });
    expect(report.counts.volumes).toEqual({ created: 0, updated: 0, unchanged: importedVolumes() });
    expect(report.counts.keys).toMatchObject({
      created: 0,
      updated: 0,
      unchanged: validSeeds().length,
      conflicts: 0,
    });
    const after = await t.vault.db
      .selectFrom('recovery_keys')
      .select(['id', 'status', 'created_at'])
      .execute();
    // Only the key disclosed above changed status (rotation pending), and by the disclosure, not the import.
    expect(after.length).toBe(before.length);
    expect(after.filter((a) => !before.some((b) => b.id === a.id && b.status === a.status))).toHaveLength(0);
  });

  it('a dry run reports the same outcomes and writes nothing', async () => {
    const fresh = await createTestVault();
    try {
      const report = await fresh.vault.services.directoryImport.importFromAd({
        organizationId: fresh.organizationId,
        directory,
        dryRun: true,
        actor,
      });
      expect(report.dryRun).toBe(true);
      expect(report.counts.devices.created).toBe(COMPUTERS);
      expect(report.counts.keys.created).toBe(validSeeds().length);
      expect(await fresh.vault.db.selectFrom('devices').select('id').execute()).toHaveLength(0);
      expect(await fresh.vault.db.selectFrom('recovery_keys').select('id').execute()).toHaveLength(0);
    } finally {
      await fresh.close();
    }
  });

  it('a bind account without the confidential right imports metadata and reports passwords not readable', async () => {
    const fresh = await createTestVault();
    try {
      const report = await fresh.vault.services.directoryImport.importFromAd({
        organizationId: fresh.organizationId,
        directory: { ...directory, bindDn: metadataOnly.upn, bindPassword: metadataOnly.password },
        actor,
      });
      expect(report.counts.keys).toEqual({
        created: 0,
        updated: 0,
        unchanged: 0,
        conflicts: 0,
        invalid: 0,
        notReadable: seeds.size,
      });
      expect(report.directory?.passwordsNotReadable).toBe(seeds.size);
      expect(report.counts.devices.created).toBe(COMPUTERS);
      expect(report.counts.volumes.created).toBe(COMPUTERS * 2); // metadata of every object, invalid ones too
      expect(await fresh.vault.db.selectFrom('recovery_keys').select('id').execute()).toHaveLength(0);

      // Then with the delegated account: the same devices gain their keys.
      const full = await fresh.vault.services.directoryImport.importFromAd({
        organizationId: fresh.organizationId,
        directory,
        actor,
      });
      expect(full.counts.devices).toEqual({ created: 0, updated: 0, unchanged: COMPUTERS });
      expect(full.counts.keys.created).toBe(validSeeds().length);
    } finally {
      await fresh.close();
    }
  });

  it('a key id already stored with another password is a conflict and is not overwritten', async () => {
    const fresh = await createTestVault();
    try {
      const seed = validSeeds()[5]!;
      const other = generateRecoveryPassword();
      const pre = await fresh.vault.services.directoryImport.importItems({
        organizationId: fresh.organizationId,
        source: 'csv',
        items: [
          {
            row: 2,
            device: { name: seed.computer.name },
            volumeGuid: seed.volumeGuid,
            volumeType: 'os',
            keyId: seed.recoveryGuid,
            createdAt: new Date().toISOString(),
            password: { state: 'valid', value: other },
          },
        ],
        actor,
      });
      expect(pre.counts.keys.created).toBe(1);
      const report = await fresh.vault.services.directoryImport.importFromAd({
        organizationId: fresh.organizationId,
        directory,
        actor,
      });
      expect(report.counts.keys.conflicts).toBe(1);
      expect(report.conflicts).toEqual([{ deviceName: seed.computer.name, keyId: seed.recoveryGuid }]);
      const row = await fresh.vault.db
        .selectFrom('recovery_keys')
        .select('id')
        .where('key_id', '=', seed.recoveryGuid)
        .executeTakeFirstOrThrow();
      const disclosed = await fresh.vault.services.recoveryKeys.discloseRecoveryPassword({
        organizationId: fresh.organizationId,
        recoveryKeyRecordId: row.id,
        reason: 'conflict check',
        actor,
      });
      expect(disclosed.recoveryPassword).toBe(other);
    } finally {
      await fresh.close();
    }
  });

  it('the scheduled sync runs on its interval with a controlled clock, one run at a time, leased', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bdevault-sync-'));
    let now = new Date('2025-03-01T08:00:00Z');
    const clock = { now: () => new Date(now) };
    let timerCallback: (() => Promise<void>) | undefined;
    let server: RunningServer | undefined;
    try {
      server = await startServer(loadConfig({ dataDir: dir, logLevel: 'silent', port: 0 }), {
        clock,
        passwordHasher: fastHasher,
        directorySync: {
          timer: {
            every: (_ms, fn) => {
              timerCallback = fn;
              return { cancel: () => (timerCallback = undefined) };
            },
          },
        },
      });
      const orgId = server.firstAdmin!.organizationId;
      const token = await server.vault.services.apiTokens.createApiToken({
        organizationId: orgId,
        name: 'sync admin',
        permissions: ['org:admin'],
        creatorPermissions: undefined,
        actor: { type: 'cli', id: null },
      });
      const api = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: object) =>
        server!.app.inject({ method, url, headers: bearer(token.token), ...(payload ? { payload } : {}) });

      expect((await api('GET', '/api/directory-sync')).statusCode).toBe(404);
      const put = await api('PUT', '/api/directory-sync', {
        url: dc.url,
        caCertificate: dc.caCertPem,
        baseDn: dc.baseDn,
        bindDn: delegated.upn,
        bindPassword: delegated.password,
        intervalMinutes: 60,
        enabled: true,
      });
      expect(put.statusCode, put.body).toBe(200);
      expect(put.body).not.toContain(delegated.password);
      const stored = await server.vault.db
        .selectFrom('directory_sync_configs')
        .selectAll()
        .executeTakeFirstOrThrow();
      expect(JSON.stringify(stored)).not.toContain(delegated.password);

      // Another instance holds the lease: this one starts nothing.
      await server.vault.db
        .updateTable('directory_sync_configs')
        .set({ lease_holder: 'other-instance', lease_expires_at: '2025-03-01T08:05:00.000Z' })
        .execute();
      expect(await server.directorySync.tick()).toEqual([]);
      expect((await api('POST', '/api/directory-sync/sync-now')).statusCode).toBe(409);
      await server.vault.db
        .updateTable('directory_sync_configs')
        .set({ lease_holder: null, lease_expires_at: null })
        .execute();

      // The timer fires: the first run starts right away; a second tick while it runs starts nothing.
      expect(timerCallback).toBeDefined();
      await timerCallback!();
      expect(await server.directorySync.tick()).toEqual([]);
      await server.directorySync.idle();
      let view = (await api('GET', '/api/directory-sync')).json();
      expect(view.lastRun).toMatchObject({ status: 'succeeded', trigger: 'schedule', error: null });
      expect(view.lastRun.summary.counts.keys.created).toBe(validSeeds().length);
      expect(view.nextRunAt).toBe('2025-03-01T09:00:00.000Z');
      expect(view.running).toBe(false);

      // Not due yet; then due an hour later, and nothing changes.
      now = new Date('2025-03-01T08:30:00Z');
      expect(await server.directorySync.tick()).toEqual([]);
      now = new Date('2025-03-01T09:00:01Z');
      expect(await server.directorySync.tick()).toEqual([orgId]);
      await server.directorySync.idle();
      view = (await api('GET', '/api/directory-sync')).json();
      expect(view.lastRun.summary.counts.keys).toMatchObject({ created: 0, unchanged: validSeeds().length });

      // sync-now runs in the background; a wrong stored bind password is a failed run with a clear error.
      const change = await api('PUT', '/api/directory-sync', {
        url: dc.url,
        caCertificate: dc.caCertPem,
        baseDn: dc.baseDn,
        bindDn: delegated.upn,
        bindPassword: 'Wrong-password-1',
        intervalMinutes: 60,
        enabled: true,
      });
      expect(change.statusCode).toBe(200);
      expect((await api('POST', '/api/directory-sync/sync-now')).statusCode).toBe(202);
      // The route's run belongs to the app's service instance: poll its status.
      for (let i = 0; i < 100; i++) {
        view = (await api('GET', '/api/directory-sync')).json();
        if (view.lastRun?.trigger === 'manual' && view.lastRun.status !== 'running' && !view.running) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(view.lastRun).toMatchObject({ status: 'failed', trigger: 'manual' });
      expect(view.lastRun.error).toMatch(/DIRECTORY_BIND_FAILED/);
      expect(view.lastRun.error).not.toContain('Wrong-password-1');

      const runs = await server.vault.db
        .selectFrom('audit_log')
        .select(['outcome'])
        .where('action', '=', 'recovery-keys.imported')
        .execute();
      expect(runs.map((r) => r.outcome)).toEqual(['success', 'success', 'failure']);
    } finally {
      await server?.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
