/** Bounded parser for FVE metadata entries ("datums", bde-format §3.3) and their typed values. */
import { BdeError } from '../errors.js';
import { guidFromBytes } from '../key-id.js';

/** Value types that matter here (§3.3). */
export const VALUE = {
  ERASED: 0x0,
  KEY: 0x1,
  UNICODE: 0x2,
  STRETCH_KEY: 0x3,
  USE_KEY: 0x4,
  AES_CCM: 0x5,
  TPM_ENCODED: 0x6,
  VALIDATION: 0x7,
  VMK: 0x8,
  EXTERNAL_KEY: 0x9,
  UPDATE: 0xa,
  ERROR: 0xb,
  ASYM_ENC: 0xc,
  EXPORTED_KEY: 0xd,
  PUBLIC_KEY: 0xe,
  OFFSET_SIZE: 0xf,
  GUID: 0x17,
} as const;

/** Entry types (roles) that matter here. */
export const ENTRY = {
  PROPERTY: 0x0000,
  VMK: 0x0002,
  FVEK: 0x0003,
  VALIDATION: 0x0004,
  STARTUP_KEY: 0x0006,
  DESCRIPTION: 0x0007,
  VOLUME_HEADER: 0x000f,
  RECOVERY_KEY: 0x0012,
  STRETCHED_KEY: 0x0013,
  VOLUME_GUID: 0x0019,
} as const;

/** Header size of each value type, 8-byte entry header included; unknown types use 8. */
const HEADER_SIZE: Readonly<Record<number, number>> = {
  [VALUE.KEY]: 12,
  [VALUE.STRETCH_KEY]: 28,
  [VALUE.USE_KEY]: 12,
  [VALUE.AES_CCM]: 36,
  [VALUE.TPM_ENCODED]: 12,
  [VALUE.VMK]: 36,
  [VALUE.EXTERNAL_KEY]: 32,
  [VALUE.OFFSET_SIZE]: 24,
  [VALUE.GUID]: 24,
};

/** Value types whose value is followed by nested datums. */
const CONTAINERS = new Set<number>([VALUE.STRETCH_KEY, VALUE.USE_KEY, VALUE.VMK, VALUE.EXTERNAL_KEY]);

/** Real metadata nests at most 3 deep (VMK > STRETCH_KEY > AES_CCM); anything deeper is hostile. */
export const MAX_DEPTH = 4;
/** A 64 KiB block cannot hold more entries than this; the bound keeps parsing linear. */
const MAX_ENTRIES = 4096;

/** One parsed entry. `bytes` is the whole entry (header included), a view into the metadata. */
export interface Datum {
  entryType: number;
  valueType: number;
  version: number;
  bytes: Uint8Array;
  nested: Datum[];
}

function corrupt(message: string): BdeError {
  return new BdeError('ERR_BDE_CORRUPT_METADATA', message);
}

/**
 * Parses a list of datums from `buf` (all of it). A size of 0 ends the list; every size is
 * checked against the buffer and nesting is depth-limited, so hostile input only yields BdeError.
 */
export function parseDatums(buf: Uint8Array, depth = 0): Datum[] {
  if (depth > MAX_DEPTH) throw corrupt('Metadata entries nest too deeply');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Datum[] = [];
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const size = view.getUint16(pos, true);
    if (size === 0) break;
    if (size < 8 || pos + size > buf.length) throw corrupt('Metadata entry size out of bounds');
    if (out.length >= MAX_ENTRIES) throw corrupt('Too many metadata entries');
    const valueType = view.getUint16(pos + 4, true);
    const headerSize = HEADER_SIZE[valueType] ?? 8;
    if (size < headerSize) throw corrupt('Metadata entry shorter than its header');
    const bytes = buf.subarray(pos, pos + size);
    out.push({
      entryType: view.getUint16(pos + 2, true),
      valueType,
      version: view.getUint16(pos + 6, true),
      bytes,
      nested: CONTAINERS.has(valueType) ? parseDatums(bytes.subarray(headerSize), depth + 1) : [],
    });
    pos += size;
  }
  return out;
}

const u16 = (b: Uint8Array, off: number): number => b[off]! | (b[off + 1]! << 8);

function u64(b: Uint8Array, off: number): number {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const value = view.getUint32(off, true) + view.getUint32(off + 4, true) * 0x100000000;
  if (!Number.isSafeInteger(value)) throw corrupt('64-bit value out of range');
  return value;
}

function expect(d: Datum, valueType: number): void {
  if (d.valueType !== valueType) throw corrupt(`Expected value type ${valueType}, found ${d.valueType}`);
}

/** KEY datum: method and key bytes. */
export function keyValue(d: Datum): { method: number; key: Uint8Array } {
  expect(d, VALUE.KEY);
  return { method: u16(d.bytes, 8), key: d.bytes.subarray(12) };
}

/** AES_CCM datum: nonce (12), MAC (16) and ciphertext. */
export function ccmValue(d: Datum): { nonce: Uint8Array; mac: Uint8Array; ciphertext: Uint8Array } {
  expect(d, VALUE.AES_CCM);
  return { nonce: d.bytes.subarray(8, 20), mac: d.bytes.subarray(20, 36), ciphertext: d.bytes.subarray(36) };
}

/** STRETCH_KEY datum: method (0x1000 recovery, 0x1001 password) and 16-byte salt. */
export function stretchValue(d: Datum): { method: number; salt: Uint8Array } {
  expect(d, VALUE.STRETCH_KEY);
  return { method: u16(d.bytes, 8), salt: d.bytes.subarray(12, 28) };
}

/** USE_KEY datum: method. */
export function useKeyMethod(d: Datum): number {
  expect(d, VALUE.USE_KEY);
  return u16(d.bytes, 8);
}

/** VMK datum: protector GUID, modified FILETIME, protection type. */
export function vmkValue(d: Datum): { guid: string; modified: Date | null; protection: number } {
  expect(d, VALUE.VMK);
  return {
    guid: guidFromBytes(d.bytes.subarray(8, 24)),
    modified: filetime(d.bytes, 24),
    protection: u16(d.bytes, 34),
  };
}

/** EXTERNAL_KEY datum: GUID and FILETIME. */
export function externalKeyValue(d: Datum): { guid: string; modified: Date | null } {
  expect(d, VALUE.EXTERNAL_KEY);
  return { guid: guidFromBytes(d.bytes.subarray(8, 24)), modified: filetime(d.bytes, 24) };
}

/** OFFSET_SIZE datum: offset and size (the extended Win8+ tail is ignored). */
export function offsetSizeValue(d: Datum): { offset: number; size: number } {
  expect(d, VALUE.OFFSET_SIZE);
  return { offset: u64(d.bytes, 8), size: u64(d.bytes, 16) };
}

/** UNICODE datum: UTF-16LE text without the terminating NUL. */
export function unicodeValue(d: Datum): string {
  expect(d, VALUE.UNICODE);
  const body = d.bytes.subarray(8, 8 + ((d.bytes.length - 8) & ~1));
  return Buffer.from(body).toString('utf16le').replace(/\0+$/, '');
}

/** GUID datum. */
export function guidValue(d: Datum): string {
  expect(d, VALUE.GUID);
  return guidFromBytes(d.bytes.subarray(8, 24));
}

/** The value bytes after the 8-byte entry header (ASYM_ENC, EXPORTED_KEY, PUBLIC_KEY, …). */
export function rawValue(d: Datum): Uint8Array {
  return d.bytes.subarray(8);
}

/** A FILETIME (100 ns since 1601) at `off` as a Date, or null when zero or out of range. */
export function filetime(b: Uint8Array, off: number): Date | null {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const ticks = view.getUint32(off, true) + view.getUint32(off + 4, true) * 0x100000000;
  if (ticks === 0) return null;
  const ms = ticks / 10_000 - 11_644_473_600_000;
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? null : date;
}

/** First nested (or top-level) datum matching the predicate. */
export function find(list: readonly Datum[], valueType: number, entryType?: number): Datum | undefined {
  return list.find(
    (d) => d.valueType === valueType && (entryType === undefined || d.entryType === entryType),
  );
}
