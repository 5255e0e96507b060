/** Key protectors (VMK entries, §3.4, §3.13) described with manage-bde's names. */
import { type Datum, ENTRY, VALUE, find, rawValue, unicodeValue, vmkValue } from './datum.js';

/** Protection codes of VMK entries. */
export const PROTECTION = {
  CLEAR_KEY: 0x0000,
  TPM: 0x0100,
  STARTUP_KEY: 0x0200,
  TPM_AND_STARTUP_KEY: 0x0300,
  TPM_AND_PIN: 0x0500,
  TPM_AND_PIN_AND_STARTUP_KEY: 0x0700,
  RECOVERY_PASSWORD: 0x0800,
  PUBLIC_KEY: 0x1000,
  PASSWORD: 0x2000,
} as const;

export type ProtectorType =
  | 'clear-key'
  | 'tpm'
  | 'startup-key'
  | 'tpm-and-startup-key'
  | 'tpm-and-pin'
  | 'tpm-and-pin-and-startup-key'
  | 'recovery-password'
  | 'public-key'
  | 'password'
  | 'unknown';

const TYPES: Readonly<Record<number, [ProtectorType, string]>> = {
  [PROTECTION.CLEAR_KEY]: ['clear-key', 'Clear Key'],
  [PROTECTION.TPM]: ['tpm', 'TPM'],
  [PROTECTION.STARTUP_KEY]: ['startup-key', 'External Key'],
  [PROTECTION.TPM_AND_STARTUP_KEY]: ['tpm-and-startup-key', 'TPM And Startup Key'],
  [PROTECTION.TPM_AND_PIN]: ['tpm-and-pin', 'TPM And PIN'],
  [PROTECTION.TPM_AND_PIN_AND_STARTUP_KEY]: ['tpm-and-pin-and-startup-key', 'TPM And PIN And Startup Key'],
  [PROTECTION.RECOVERY_PASSWORD]: ['recovery-password', 'Numerical Password'],
  [PROTECTION.PUBLIC_KEY]: ['public-key', 'Public Key'],
  [PROTECTION.PASSWORD]: ['password', 'Password'],
};

/** Certificate reference of a public-key protector (the PUBLIC_KEY datum). */
export interface ProtectorCertificate {
  /** SHA-1 thumbprint of the DER certificate, lower-case hex. */
  thumbprint: string;
  /** WMI CertType: 1 = Data Recovery Agent, 2 = user certificate (smart card). */
  certType: number;
}

/** A key protector as `openVolume` reports it; GUIDs are upper case without braces. */
export interface ProtectorInfo {
  /** Protector GUID: the "key id" / recovery key ID. */
  id: string;
  type: ProtectorType;
  /** manage-bde's name: "Numerical Password", "Password", "External Key", "TPM", … */
  typeName: string;
  protection: number;
  modified: Date | null;
  /** Entry version (1; 3 on the Windows 11 clear key). */
  entryVersion: number;
  /** The nested UNICODE name ("DiskPassword", "ExternalKey"), if any. */
  label: string | null;
  certificate?: ProtectorCertificate;
}

/** A VMK entry with its description, kept with the datum for unlocking. */
export interface Protector {
  info: ProtectorInfo;
  datum: Datum;
}

/**
 * Reads the "gsin" certificate record: magic, u32 size, u32 cert type, u32 hash size, hash.
 * Returns undefined when the record does not have that shape.
 */
function certificateOf(datum: Datum): ProtectorCertificate | undefined {
  const pk = find(datum.nested, VALUE.PUBLIC_KEY);
  if (!pk) return undefined;
  const v = rawValue(pk);
  if (v.length < 16 || String.fromCharCode(...v.subarray(0, 4)) !== 'gsin') return undefined;
  const view = new DataView(v.buffer, v.byteOffset, v.byteLength);
  const certType = view.getUint32(8, true);
  const hashSize = view.getUint32(12, true);
  if (hashSize === 0 || hashSize > 64 || 16 + hashSize > v.length) return undefined;
  return { thumbprint: Buffer.from(v.subarray(16, 16 + hashSize)).toString('hex'), certType };
}

/** Every VMK entry of the metadata, in on-disk order. */
export function listProtectors(entries: readonly Datum[]): Protector[] {
  const out: Protector[] = [];
  for (const datum of entries) {
    if (datum.entryType !== ENTRY.VMK || datum.valueType !== VALUE.VMK) continue;
    const { guid, modified, protection } = vmkValue(datum);
    const [type, typeName] = TYPES[protection] ?? ['unknown', `Unknown (0x${protection.toString(16)})`];
    const unicode = find(datum.nested, VALUE.UNICODE);
    const info: ProtectorInfo = {
      id: guid,
      type,
      typeName,
      protection,
      modified,
      entryVersion: datum.version,
      label: unicode ? unicodeValue(unicode) : null,
    };
    if (type === 'public-key') {
      const certificate = certificateOf(datum);
      if (certificate) {
        info.certificate = certificate;
        if (certificate.certType === 1) info.typeName = 'Data Recovery Agent (Certificate Based)';
      }
    }
    out.push({ info, datum });
  }
  return out;
}
