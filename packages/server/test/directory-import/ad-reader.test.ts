// The AD BitLocker reader against a real Samba AD domain controller: paging, delegation, TLS, validation.
import { randomBytes, randomUUID } from 'node:crypto';
import { generateRecoveryPassword } from '@bdevault/bde';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  readAdRecoveryKeyByGuid,
  readAdRecoveryKeys,
  type ReadAdRecoveryKeysOptions,
} from '../../src/modules/directory-import/ad-reader.js';
import type { AdRecoveryRecord } from '../../src/modules/directory-import/ad-recovery-object.js';
import { validateAdRecoveryRecord } from '../../src/modules/directory-import/ad-record-validation.js';
import { DirectoryError } from '../../src/modules/directory-import/directory-error.js';
import {
  computerDn,
  computerLdif,
  ldifDocument,
  ldifEntry,
  recoveryObjectDn,
  recoveryObjectLdif,
  type SeedComputer,
  type SeedRecoveryObject,
} from '../support/ad-ldif.js';
import { generateAdPassword, startSambaAd, type CreatedUser, type SambaAd } from '../support/samba-ad.js';
import { sambaAvailability } from '../support/samba-install.js';

const availability = await sambaAvailability();
if (!availability.ok) console.warn(availability.reason);

const COMPUTERS = 400;
const KEYS_PER_COMPUTER = 3;
const WITHOUT_KEYS = 7;
const LAPTOPS = 12;

function corrupt(password: string, kind: number): string {
  const groups = password.split('-');
  if (kind === 0) groups[4] = String((Number(groups[4]) + 1) % 1_000_000).padStart(6, '0'); // checksum
  if (kind === 1) groups.pop(); // 7 groups
  if (kind === 2) groups[0] = '720896'; // out of range, divisible by 11
  return groups.join('-');
}

async function readAll(options: ReadAdRecoveryKeysOptions) {
  const reader = readAdRecoveryKeys(options);
  const records: AdRecoveryRecord[] = [];
  for await (const record of reader) records.push(record);
  return { records, counts: reader.counts };
}

describe.skipIf(!availability.ok)('readAdRecoveryKeys against Samba AD', () => {
  let dc: SambaAd;
  let options: ReadAdRecoveryKeysOptions;
  const expected = new Map<string, SeedRecoveryObject & { computer: SeedComputer; invalid: boolean }>();
  let metadataReader: CreatedUser & { password: string };
  let delegatedReader: CreatedUser & { password: string };
  let laptopsOu: string;
  let manualGuid: string;
  let seedStats: { added: number; ms: number };

  beforeAll(async () => {
    dc = await startSambaAd();
    options = {
      url: dc.url,
      tlsCa: dc.caCertPem,
      bindDn: dc.adminUpn,
      bindPassword: dc.adminPassword,
      baseDn: dc.baseDn,
      pageSize: 150,
    };
    laptopsOu = `OU=Laptops,${dc.baseDn}`;
    const entries: string[] = [ldifEntry(laptopsOu, { objectClass: 'organizationalUnit' })];
    const computers: SeedComputer[] = [];
    for (let i = 0; i < COMPUTERS + WITHOUT_KEYS; i++) {
      computers.push({
        name: `WS-${String(i).padStart(4, '0')}`,
        parentDn: dc.computersDn,
        dnsHostName: `ws-${String(i).padStart(4, '0')}.${dc.realm.toLowerCase()}`,
        operatingSystem: i % 2 ? 'Windows 11 Pro' : 'Windows 10 Enterprise',
      });
    }
    for (let i = 0; i < LAPTOPS; i++) computers.push({ name: `LT-${i}`, parentDn: laptopsOu });
    entries.push(...computers.map(computerLdif));

    const base = Date.UTC(2023, 0, 1);
    let n = 0;
    const withKeys = computers.filter((_, i) => i < COMPUTERS || i >= COMPUTERS + WITHOUT_KEYS);
    for (const computer of withKeys) {
      // Two volumes per computer; the OS volume has had its password rotated once.
      const osVolume = randomUUID().toUpperCase();
      const dataVolume = n % 5 === 0 ? undefined : randomUUID().toUpperCase();
      for (let k = 0; k < KEYS_PER_COMPUTER; k++) {
        n++;
        const invalidKind = n % 199 === 0 ? n % 3 : -1;
        const password = generateRecoveryPassword();
        const object: SeedRecoveryObject = {
          computerDn: computerDn(computer),
          recoveryGuid: randomUUID().toUpperCase(),
          volumeGuid: k < 2 ? osVolume : dataVolume,
          recoveryPassword: invalidKind >= 0 ? corrupt(password, invalidKind) : password,
          keyPackage: n % 4 === 0 ? new Uint8Array(randomBytes(100 + (n % 200))) : undefined,
          createdAt: new Date(base + n * 3_600_000 + k * 60_000),
          utcOffsetMinutes: [-480, 0, 60, 330][n % 4]!,
        };
        expected.set(object.recoveryGuid, { ...object, computer, invalid: invalidKind >= 0 });
        entries.push(recoveryObjectLdif(object));
      }
    }
    // An object whose CN is not in Windows' form: the reader falls back to whenCreated.
    manualGuid = randomUUID().toUpperCase();
    const manual: SeedRecoveryObject = {
      computerDn: computerDn(withKeys[0]!),
      recoveryGuid: manualGuid,
      recoveryPassword: generateRecoveryPassword(),
      createdAt: new Date(),
      utcOffsetMinutes: 0,
    };
    const manualLdif = recoveryObjectLdif(manual).replace(
      recoveryObjectDn(manual),
      `CN=manual,${manual.computerDn}`,
    );
    entries.push(manualLdif);

    seedStats = await dc.seedLdif(ldifDocument(entries)); // one LDIF, one ldbadd call

    const metaPassword = generateAdPassword();
    metadataReader = { ...(await dc.createUser('svc-meta', metaPassword)), password: metaPassword };
    const keyPassword = generateAdPassword();
    delegatedReader = { ...(await dc.createUser('svc-keys', keyPassword)), password: keyPassword };
    for (const reader of [metadataReader, delegatedReader]) {
      await dc.grantRecoveryMetadataRead(reader.dn, dc.baseDn);
    }
    await dc.grantConfidentialRead(delegatedReader.dn, dc.baseDn);
  });

  afterAll(async () => {
    await dc?.stop();
  });

  it('seeded more than 1,000 recovery objects with one ldbadd call', () => {
    expect(expected.size).toBeGreaterThan(1000);
    expect(seedStats.added).toBe(1 + COMPUTERS + WITHOUT_KEYS + LAPTOPS + expected.size + 1);
    console.info(`ldbadd added ${seedStats.added} entries in ${seedStats.ms} ms`);
  });

  it('reads every recovery object back through paged search, exactly', async () => {
    const started = Date.now();
    const { records, counts } = await readAll(options);
    const elapsed = Date.now() - started;
    expect(counts).toEqual({
      computers: COMPUTERS + WITHOUT_KEYS + LAPTOPS + 1, // + the domain controller
      computersWithRecoveryInformation: COMPUTERS + LAPTOPS,
      recoveryObjects: expected.size + 1,
      passwordsReadable: expected.size + 1,
      passwordsNotReadable: 0,
      skipped: 0,
    });
    expect(records).toHaveLength(expected.size + 1);
    expect(new Set(records.map((r) => r.recoveryGuid)).size).toBe(records.length);
    for (const record of records) {
      if (record.recoveryGuid === manualGuid) continue;
      const seed = expected.get(record.recoveryGuid);
      expect(seed, record.recoveryGuid).toBeDefined();
      expect({
        computerDn: record.computerDn,
        computerName: record.computerName,
        dnsHostName: record.dnsHostName,
        operatingSystem: record.operatingSystem,
        recoveryObjectDn: record.recoveryObjectDn,
        volumeGuid: record.volumeGuid,
        recoveryPassword: record.recoveryPassword,
        keyPackage: record.keyPackage,
        createdAt: record.createdAt.toISOString(),
        createdAtSource: record.createdAtSource,
      }).toEqual({
        computerDn: seed!.computerDn,
        computerName: seed!.computer.name,
        dnsHostName: seed!.computer.dnsHostName,
        operatingSystem: seed!.computer.operatingSystem,
        recoveryObjectDn: recoveryObjectDn(seed!),
        volumeGuid: seed!.volumeGuid,
        recoveryPassword: seed!.recoveryPassword,
        keyPackage: seed!.keyPackage,
        createdAt: seed!.createdAt.toISOString(),
        createdAtSource: 'name',
      });
    }
    const manual = records.find((r) => r.recoveryGuid === manualGuid)!;
    expect(manual.createdAtSource).toBe('whenCreated');
    expect(Math.abs(manual.createdAt.getTime() - Date.now())).toBeLessThan(10 * 60_000);
    console.info(`read ${records.length} records from ${counts.computers} computers in ${elapsed} ms`);
  });

  it('validates each record: invalid passwords reported by group, never imported, no digits shown', async () => {
    const { records } = await readAll(options);
    const outcomes = records.map(validateAdRecoveryRecord);
    const invalid = outcomes.filter((o) => o.status === 'invalid-password');
    const invalidSeeds = [...expected.values()].filter((s) => s.invalid);
    expect(invalidSeeds.length).toBeGreaterThanOrEqual(3);
    expect(invalid.map((o) => o.metadata.recoveryGuid).sort()).toEqual(
      invalidSeeds.map((s) => s.recoveryGuid).sort(),
    );
    expect(outcomes.filter((o) => o.status === 'valid')).toHaveLength(records.length - invalidSeeds.length);
    for (const outcome of invalid) {
      if (outcome.status !== 'invalid-password') continue;
      expect(outcome.problems.length).toBeGreaterThan(0);
      const seed = expected.get(outcome.metadata.recoveryGuid)!;
      const text = JSON.stringify(outcome);
      for (const group of seed.recoveryPassword.split('-')) expect(text).not.toContain(group);
    }
    expect(
      new Set(
        invalid.flatMap((o) => (o.status === 'invalid-password' ? o.problems.map((p) => p.reason) : [])),
      ),
    ).toEqual(new Set(['checksum', 'group-count', 'out-of-range']));
  });

  it('a bind account without the confidential-attribute right reads metadata but no passwords', async () => {
    const { records, counts } = await readAll({
      ...options,
      bindDn: metadataReader.upn,
      bindPassword: metadataReader.password,
    });
    expect(counts.recoveryObjects).toBe(expected.size + 1);
    expect(counts.passwordsReadable).toBe(0);
    expect(counts.passwordsNotReadable).toBe(expected.size + 1);
    expect(records.every((r) => r.recoveryPassword === undefined && r.keyPackage === undefined)).toBe(true);
    expect(records.map(validateAdRecoveryRecord).every((o) => o.status === 'password-not-readable')).toBe(
      true,
    );
    for (const record of records) {
      if (record.recoveryGuid === manualGuid) continue;
      const seed = expected.get(record.recoveryGuid)!;
      expect(record.volumeGuid).toBe(seed.volumeGuid);
      expect(record.createdAt.getTime()).toBe(seed.createdAt.getTime());
      expect(record.computerName).toBe(seed.computer.name);
    }
  });

  it('the delegated account (Control Access on the confidential attributes) reads the passwords', async () => {
    const { records, counts } = await readAll({
      ...options,
      url: dc.startTlsUrl, // and over StartTLS this time
      bindDn: delegatedReader.dn,
      bindPassword: delegatedReader.password,
    });
    expect(counts.passwordsReadable).toBe(expected.size + 1);
    for (const record of records) {
      const seed = expected.get(record.recoveryGuid);
      if (!seed) continue;
      expect(record.recoveryPassword).toBe(seed.recoveryPassword);
      expect(record.keyPackage).toEqual(seed.keyPackage);
    }
  });

  it('limits the search to the base DN and finds one object by its binary recovery GUID', async () => {
    const { records, counts } = await readAll({ ...options, baseDn: laptopsOu });
    expect(counts.computers).toBe(LAPTOPS);
    expect(records).toHaveLength(LAPTOPS * KEYS_PER_COMPUTER);
    expect(records.every((r) => r.computerDn.endsWith(laptopsOu))).toBe(true);

    const seed = [...expected.values()][17]!;
    const found = await readAdRecoveryKeyByGuid(options, seed.recoveryGuid.toLowerCase());
    expect(found).toMatchObject({
      recoveryGuid: seed.recoveryGuid,
      recoveryPassword: seed.recoveryPassword,
      computerName: seed.computer.name,
    });
    expect(await readAdRecoveryKeyByGuid(options, randomUUID())).toBeUndefined();
  });

  it('can be stopped early, closing its connection, and is single-use', async () => {
    const reader = readAdRecoveryKeys(options);
    let seen = 0;
    for await (const _record of reader) if (++seen === 5) break;
    expect(seen).toBe(5);
    expect(reader.counts.recoveryObjects).toBeLessThan(expected.size);
    expect(() => reader[Symbol.asyncIterator]()).toThrow(DirectoryError);
  });

  it('refuses a wrong bind password and an untrusted certificate, with no secret in the error', async () => {
    const wrong = generateAdPassword();
    const error = await readAll({ ...options, bindPassword: wrong }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DirectoryError);
    expect((error as DirectoryError).code).toBe('DIRECTORY_BIND_FAILED');
    expect(String((error as Error).message)).not.toContain(wrong);

    const untrusted = await readAll({ ...options, tlsCa: undefined }).catch((e: unknown) => e);
    expect((untrusted as DirectoryError).code).toBe('DIRECTORY_UNAVAILABLE');

    const empty = await readAll({ ...options, bindPassword: '' }).catch((e: unknown) => e);
    expect((empty as DirectoryError).code).toBe('DIRECTORY_INVALID_OPTIONS');
  });
});
