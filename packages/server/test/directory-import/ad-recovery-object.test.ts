// Unit tests for AD recovery-object parsing and per-record validation (no directory needed).
import { generateRecoveryPassword, guidToBytes } from '@bdevault/bde';
import type { Entry } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { adGuidFilter, adGuidFromBytes } from '../../src/modules/directory-import/ad-guid.js';
import { parentDn } from '../../src/modules/directory-import/ad-reader.js';
import {
  computerFromEntry,
  parseGeneralizedTime,
  parseRecoveryObjectName,
  recordFromEntry,
} from '../../src/modules/directory-import/ad-recovery-object.js';
import { validateAdRecoveryRecord } from '../../src/modules/directory-import/ad-record-validation.js';

const GUID = '4290B6C0-B17A-497A-8552-272CC30E80D4';
const computer = {
  dn: 'CN=WS1,CN=Computers,DC=x',
  name: 'WS1',
  objectGuid: undefined,
  dnsHostName: undefined,
  operatingSystem: undefined,
};

describe('AD recovery objects', () => {
  it('reads the backup time and GUID from a Windows object name', () => {
    const parsed = parseRecoveryObjectName(`2024-01-15T10:20:30-08:00{${GUID.toLowerCase()}}`);
    expect(parsed.createdAt?.toISOString()).toBe('2024-01-15T18:20:30.000Z');
    expect(parsed.recoveryGuid).toBe(GUID);
    expect(
      parseRecoveryObjectName('2024-01-15T10:20:30.1234567Z{' + GUID + '}').createdAt?.toISOString(),
    ).toBe('2024-01-15T10:20:30.123Z');
    expect(parseRecoveryObjectName('not a windows name')).toEqual({});
  });

  it('parses GeneralizedTime', () => {
    expect(parseGeneralizedTime('20240115182030.0Z')?.toISOString()).toBe('2024-01-15T18:20:30.000Z');
    expect(parseGeneralizedTime('garbage')).toBeUndefined();
  });

  it('converts mixed-endian GUID bytes and builds binary filters', () => {
    expect(adGuidFromBytes(guidToBytes(GUID))).toBe(GUID);
    expect(adGuidFromBytes(new Uint8Array(15))).toBeUndefined();
    const filter = adGuidFilter('msFVE-RecoveryGuid', GUID);
    expect(Buffer.isBuffer(filter.value)).toBe(true);
    expect([...(filter.value as Buffer)]).toEqual([...guidToBytes(GUID)]);
  });

  it('names a computer by sAMAccountName without $, falling back to the CN', () => {
    expect(computerFromEntry({ dn: 'CN=a,DC=x', sAMAccountName: 'WS-7$', cn: 'a' }).name).toBe('WS-7');
    expect(computerFromEntry({ dn: 'CN=a,DC=x', sAMAccountName: [], cn: 'ws-8' }).name).toBe('ws-8');
  });

  it('prefers the GUID attribute, falls back to whenCreated, and skips objects with no GUID', () => {
    const entry: Entry = {
      dn: 'CN=manual,CN=WS1,CN=Computers,DC=x',
      cn: 'manual',
      whenCreated: '20240115182030.0Z',
      'msFVE-RecoveryGuid': Buffer.from(guidToBytes(GUID)),
      'msFVE-RecoveryPassword': [],
    };
    const result = recordFromEntry(computer, entry);
    expect('record' in result && result.record).toMatchObject({
      recoveryGuid: GUID,
      recoveryPassword: undefined,
      createdAtSource: 'whenCreated',
      createdAt: new Date('2024-01-15T18:20:30Z'),
    });
    expect(recordFromEntry(computer, { dn: 'CN=x', cn: 'x', whenCreated: '20240115182030.0Z' })).toEqual({
      skipped: 'missing-recovery-guid',
    });
  });

  it('splits DNs at the first unescaped comma', () => {
    expect(parentDn('CN=a\\,b,CN=c,DC=x')).toBe('CN=c,DC=x');
    expect(parentDn('DC=x')).toBe('');
  });
});

describe('validateAdRecoveryRecord', () => {
  const base = {
    computerDn: computer.dn,
    computerObjectGuid: undefined,
    computerName: 'WS1',
    dnsHostName: undefined,
    operatingSystem: undefined,
    recoveryObjectDn: 'CN=o',
    recoveryGuid: GUID,
    volumeGuid: undefined,
    keyPackage: undefined,
    createdAt: new Date(0),
    createdAtSource: 'name' as const,
  };

  it('accepts a valid password in canonical form', () => {
    const password = generateRecoveryPassword();
    const outcome = validateAdRecoveryRecord({ ...base, recoveryPassword: password.replaceAll('-', ' ') });
    expect(outcome).toMatchObject({ status: 'valid', recoveryPassword: password });
  });

  it('reports invalid groups by position and reason without a single digit of the password', () => {
    const groups = generateRecoveryPassword().split('-');
    const bad = String((Number(groups[2]) + 1) % 1_000_000).padStart(6, '0');
    groups[2] = bad;
    const outcome = validateAdRecoveryRecord({ ...base, recoveryPassword: groups.join('-') });
    expect(outcome.status).toBe('invalid-password');
    if (outcome.status !== 'invalid-password') return;
    expect(outcome.problems).toEqual([{ group: 3, reason: expect.stringMatching(/checksum|out-of-range/) }]);
    const text = JSON.stringify(outcome);
    for (const group of groups) expect(text).not.toContain(group);
    expect(outcome.metadata).not.toHaveProperty('recoveryPassword');
  });

  it('says when the password was not readable', () => {
    expect(validateAdRecoveryRecord({ ...base, recoveryPassword: undefined }).status).toBe(
      'password-not-readable',
    );
  });
});
