/** `.BEK` startup-key files (§3.5): parse the Windows 10 and 11 forms, and build one from a key. */
import { BdeError } from '../errors.js';
import { guidToBytes } from '../key-id.js';
import { ENTRY, VALUE, externalKeyValue, find, guidValue, keyValue, parseDatums } from './datum.js';

/** What a `.BEK` file holds. */
export interface StartupKeyFile {
  /** The external-key protector GUID (also the file name). */
  protectorId: string;
  /** The 32-byte key that unwraps that protector's VMK. */
  key: Uint8Array;
  /** Windows 11 files also name the volume. */
  volumeGuid: string | null;
}

const KEY_METHOD_BEK = 0x2002;
const HEADER = 48;

function invalid(): BdeError {
  return new BdeError('ERR_BDE_INVALID_ARGUMENT', 'Not a valid BitLocker startup key (.BEK) file');
}

/**
 * Parses a `.BEK` file (156 bytes from Windows 10, 180 from Windows 11).
 *
 * @example
 * const bek = parseStartupKeyFile(await readFile('4381F759-C4F8-4DE0-BB61-FC33A831BDA5.BEK'));
 */
export function parseStartupKeyFile(bytes: Uint8Array): StartupKeyFile {
  if (bytes.length < HEADER + 8 || bytes.length > 4096) throw invalid();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== bytes.length || view.getUint32(8, true) !== HEADER) throw invalid();
  let entries;
  try {
    entries = parseDatums(bytes.subarray(HEADER));
  } catch {
    throw invalid();
  }
  const external = find(entries, VALUE.EXTERNAL_KEY, ENTRY.STARTUP_KEY);
  const key = external && find(external.nested, VALUE.KEY);
  if (!external || !key) throw invalid();
  const { key: keyBytes } = keyValue(key);
  if (keyBytes.length !== 32) throw invalid();
  const volume = find(external.nested, VALUE.GUID, ENTRY.VOLUME_GUID);
  return {
    protectorId: externalKeyValue(external).guid,
    key: Uint8Array.from(keyBytes),
    volumeGuid: volume ? guidValue(volume) : null,
  };
}

function toFiletime(date: Date): [number, number] {
  const ticks = BigInt(date.getTime() + 11_644_473_600_000) * 10_000n;
  return [Number(ticks & 0xffffffffn), Number(ticks >> 32n)];
}

/**
 * Builds a `.BEK` file for an external-key protector: the Windows 11 form (180 bytes) when a
 * volume GUID is given, else the Windows 10 form (156 bytes). Save it as `{protectorId}.BEK`.
 */
export function buildStartupKeyFile(file: {
  protectorId: string;
  key: Uint8Array;
  volumeGuid?: string | null;
  createdAt?: Date;
}): Uint8Array {
  if (file.key.length !== 32) throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'A startup key is 32 bytes');
  const name = Buffer.from('ExternalKey\0', 'utf16le');
  const unicodeSize = 8 + name.length;
  const guidSize = file.volumeGuid ? 24 : 0;
  const keySize = 12 + 32;
  const externalSize = 32 + unicodeSize + guidSize + keySize;
  const total = HEADER + externalSize;
  const out = Buffer.alloc(total);
  const [lo, hi] = toFiletime(file.createdAt ?? new Date(0));
  const protector = guidToBytes(file.protectorId);
  out.writeUInt32LE(total, 0);
  out.writeUInt32LE(1, 4);
  out.writeUInt32LE(HEADER, 8);
  out.writeUInt32LE(total, 12);
  out.set(protector, 16);
  out.writeUInt32LE(1, 32);
  out.writeUInt32LE(lo, 40);
  out.writeUInt32LE(hi, 44);
  let p = HEADER;
  out.writeUInt16LE(externalSize, p);
  out.writeUInt16LE(ENTRY.STARTUP_KEY, p + 2);
  out.writeUInt16LE(VALUE.EXTERNAL_KEY, p + 4);
  out.writeUInt16LE(1, p + 6);
  out.set(protector, p + 8);
  out.writeUInt32LE(lo, p + 24);
  out.writeUInt32LE(hi, p + 28);
  p += 32;
  out.writeUInt16LE(unicodeSize, p);
  out.writeUInt16LE(VALUE.UNICODE, p + 4);
  out.writeUInt16LE(1, p + 6);
  out.set(name, p + 8);
  p += unicodeSize;
  if (file.volumeGuid) {
    out.writeUInt16LE(24, p);
    out.writeUInt16LE(ENTRY.VOLUME_GUID, p + 2);
    out.writeUInt16LE(VALUE.GUID, p + 4);
    out.writeUInt16LE(1, p + 6);
    out.set(guidToBytes(file.volumeGuid), p + 8);
    p += 24;
  }
  out.writeUInt16LE(keySize, p);
  out.writeUInt16LE(VALUE.KEY, p + 4);
  out.writeUInt16LE(1, p + 6);
  out.writeUInt16LE(KEY_METHOD_BEK, p + 8);
  out.set(file.key, p + 12);
  return new Uint8Array(out);
}
