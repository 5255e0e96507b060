/** Turns AD computer and msFVE-RecoveryInformation search entries into plain BitLocker recovery records. */
import type { Entry } from 'ldapts';
import { entryBuffer, entryText } from '../../lib/ldap-client.js';
import { adGuidFromBytes, adGuidFromText } from './ad-guid.js';

/** The computer attributes the reader asks for. */
export const COMPUTER_ATTRIBUTES = [
  'cn',
  'sAMAccountName',
  'dNSHostName',
  'operatingSystem',
  'objectGUID',
] as const;
/** objectGUID is binary: it must come back as bytes. */
export const COMPUTER_BUFFER_ATTRIBUTES = ['objectGUID'];

/** The recovery-object attributes the reader asks for; the binary ones must come back as bytes. */
export const RECOVERY_OBJECT_ATTRIBUTES = [
  'cn',
  'whenCreated',
  'msFVE-RecoveryGuid',
  'msFVE-VolumeGuid',
  'msFVE-RecoveryPassword',
  'msFVE-KeyPackage',
] as const;
export const RECOVERY_OBJECT_BUFFER_ATTRIBUTES = [
  'msFVE-RecoveryGuid',
  'msFVE-VolumeGuid',
  'msFVE-KeyPackage',
];

export interface AdComputer {
  dn: string;
  /** The computer's objectGUID (canonical text): stable across renames and moves, unlike the DN. */
  objectGuid: string | undefined;
  /** sAMAccountName without its trailing `$`, else the CN. */
  name: string;
  dnsHostName: string | undefined;
  operatingSystem: string | undefined;
}

/**
 * One BitLocker recovery password escrowed in Active Directory, with its computer. Holds the
 * password in clear: never log it or put it in an error; pass it to validation and then the vault.
 */
export interface AdRecoveryRecord {
  computerDn: string;
  computerObjectGuid: string | undefined;
  computerName: string;
  dnsHostName: string | undefined;
  operatingSystem: string | undefined;
  recoveryObjectDn: string;
  /** The key protector id (canonical upper-case GUID without braces). */
  recoveryGuid: string;
  volumeGuid: string | undefined;
  /** As stored in AD; undefined when the bind account may not read the confidential attribute. */
  recoveryPassword: string | undefined;
  keyPackage: Uint8Array | undefined;
  /** When Windows backed the key up (from the object name), else the object's whenCreated. */
  createdAt: Date;
  createdAtSource: 'name' | 'whenCreated';
}

/** Why a recovery object could not become a record. */
export type AdSkipReason = 'missing-recovery-guid' | 'missing-created-time';

// `2024-01-15T10:20:30-08:00{4290B6C0-B17A-497A-8552-272CC30E80D4}`; fractions and `Z` tolerated.
const OBJECT_NAME =
  /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?(?:Z|[+-]\d{2}:\d{2}))\{([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}$/;

/** The backup time and recovery GUID encoded in a recovery object's CN, when it has Windows' form. */
export function parseRecoveryObjectName(name: string): { createdAt?: Date; recoveryGuid?: string } {
  const m = OBJECT_NAME.exec(name.trim());
  if (!m) return {};
  const time = Date.parse(m[1]!);
  return {
    ...(Number.isNaN(time) ? {} : { createdAt: new Date(time) }),
    recoveryGuid: adGuidFromText(m[2]!),
  };
}

/** LDAP GeneralizedTime as AD writes it (`20240115182030.0Z`). */
export function parseGeneralizedTime(text: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:[.,](\d+))?Z$/.exec(text?.trim() ?? '');
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac] = m;
  const ms = frac ? Math.round(Number(`0.${frac}`) * 1000) : 0;
  const time = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s), ms);
  return Number.isNaN(time) ? undefined : new Date(time);
}

export function computerFromEntry(entry: Entry): AdComputer {
  const sam = entryText(entry, 'sAMAccountName');
  const cn = entryText(entry, 'cn');
  return {
    dn: entry.dn,
    objectGuid: adGuidFromBytes(entryBuffer(entry, 'objectGUID')),
    name: sam?.replace(/\$$/, '') || cn || entry.dn,
    dnsHostName: entryText(entry, 'dNSHostName'),
    operatingSystem: entryText(entry, 'operatingSystem'),
  };
}

/** A record from a recovery-object entry, or the reason it cannot be one. */
export function recordFromEntry(
  computer: AdComputer,
  entry: Entry,
): { record: AdRecoveryRecord } | { skipped: AdSkipReason } {
  const fromName = parseRecoveryObjectName(entryText(entry, 'cn') ?? '');
  const recoveryGuid = adGuidFromBytes(entryBuffer(entry, 'msFVE-RecoveryGuid')) ?? fromName.recoveryGuid;
  if (recoveryGuid === undefined) return { skipped: 'missing-recovery-guid' };
  const whenCreated = parseGeneralizedTime(entryText(entry, 'whenCreated'));
  const createdAt = fromName.createdAt ?? whenCreated;
  if (createdAt === undefined) return { skipped: 'missing-created-time' };
  const keyPackage = entryBuffer(entry, 'msFVE-KeyPackage');
  return {
    record: {
      computerDn: computer.dn,
      computerObjectGuid: computer.objectGuid,
      computerName: computer.name,
      dnsHostName: computer.dnsHostName,
      operatingSystem: computer.operatingSystem,
      recoveryObjectDn: entry.dn,
      recoveryGuid,
      volumeGuid: adGuidFromBytes(entryBuffer(entry, 'msFVE-VolumeGuid')),
      recoveryPassword: entryText(entry, 'msFVE-RecoveryPassword'),
      // A copy, so the record does not pin ldapts' receive buffer.
      keyPackage: keyPackage === undefined ? undefined : new Uint8Array(keyPackage),
      createdAt,
      createdAtSource: fromName.createdAt ? 'name' : 'whenCreated',
    },
  };
}
