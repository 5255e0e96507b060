// Builds LDIF for seeding Active Directory computers and BitLocker recovery objects as Windows writes them.
import { guidToBytes } from '@bdevault/bde';

export type LdifValue = string | Uint8Array;

// RFC 2849 SAFE-STRING, narrowed to printable ASCII; anything else is base64-encoded.
const SAFE_STRING = /^[!-9;=-~][ -~]*$/;

function line(name: string, value: LdifValue): string {
  if (typeof value === 'string' && (value === '' || SAFE_STRING.test(value)) && !value.endsWith(' ')) {
    return `${name}: ${value}`;
  }
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
  return `${name}:: ${bytes.toString('base64')}`;
}

/** One LDIF add record; attribute values may be text or bytes. */
export function ldifEntry(
  dn: string,
  attributes: Record<string, LdifValue | LdifValue[] | undefined>,
): string {
  const lines = [line('dn', dn)];
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) lines.push(line(name, v));
  }
  return `${lines.join('\n')}\n`;
}

/** Joins records into one LDIF document. */
export function ldifDocument(entries: readonly string[]): string {
  return entries.join('\n');
}

/** Escapes an RDN value (RFC 4514): `+` in a `+05:30` offset would otherwise start a second RDN. */
export function escapeRdnValue(value: string): string {
  return value
    .replace(/[\\,+"<>;=]/g, (c) => `\\${c}`)
    .replace(/^[ #]/, (c) => `\\${c}`)
    .replace(/ $/, '\\ ');
}

export interface SeedComputer {
  name: string;
  /** Container DN, e.g. `CN=Computers,DC=example,DC=test`. */
  parentDn: string;
  dnsHostName?: string;
  operatingSystem?: string;
}

export function computerDn(computer: Pick<SeedComputer, 'name' | 'parentDn'>): string {
  return `CN=${escapeRdnValue(computer.name)},${computer.parentDn}`;
}

/** A workstation account as a domain join creates it (userAccountControl WORKSTATION_TRUST_ACCOUNT). */
export function computerLdif(computer: SeedComputer): string {
  return ldifEntry(computerDn(computer), {
    objectClass: 'computer',
    sAMAccountName: `${computer.name}$`,
    userAccountControl: '4096',
    dNSHostName: computer.dnsHostName,
    operatingSystem: computer.operatingSystem,
  });
}

/** `2024-01-15T10:20:30-08:00`: local time of the writing machine with its UTC offset, as Windows names it. */
export function formatAdRecoveryTime(date: Date, utcOffsetMinutes: number): string {
  const local = new Date(Math.floor(date.getTime() / 1000) * 1000 + utcOffsetMinutes * 60_000);
  const sign = utcOffsetMinutes < 0 ? '-' : '+';
  const abs = Math.abs(utcOffsetMinutes);
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${local.toISOString().slice(0, 19)}${offset}`;
}

export interface SeedRecoveryObject {
  computerDn: string;
  recoveryGuid: string;
  volumeGuid?: string;
  recoveryPassword: string;
  keyPackage?: Uint8Array;
  createdAt: Date;
  utcOffsetMinutes: number;
}

/** The CN Windows gives a recovery object: `<ISO time with offset>{<RECOVERY GUID>}`. */
export function recoveryObjectName(
  object: Pick<SeedRecoveryObject, 'createdAt' | 'utcOffsetMinutes' | 'recoveryGuid'>,
): string {
  return `${formatAdRecoveryTime(object.createdAt, object.utcOffsetMinutes)}{${object.recoveryGuid.toUpperCase()}}`;
}

export function recoveryObjectDn(object: SeedRecoveryObject): string {
  return `CN=${escapeRdnValue(recoveryObjectName(object))},${object.computerDn}`;
}

/** An msFVE-RecoveryInformation child with its GUIDs in Windows mixed-endian byte order. */
export function recoveryObjectLdif(object: SeedRecoveryObject): string {
  return ldifEntry(recoveryObjectDn(object), {
    objectClass: 'msFVE-RecoveryInformation',
    'msFVE-RecoveryGuid': guidToBytes(object.recoveryGuid),
    'msFVE-VolumeGuid': object.volumeGuid === undefined ? undefined : guidToBytes(object.volumeGuid),
    'msFVE-RecoveryPassword': object.recoveryPassword,
    'msFVE-KeyPackage': object.keyPackage,
  });
}
