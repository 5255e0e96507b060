/** Key ids and volume GUIDs: parse any common spelling, print as Windows does, match preboot prefixes. */
import { BdeError } from './errors.js';

const DASHED = /^\{?([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})\}?$/i;
const PLAIN = /^\{?([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})\}?$/i;

/**
 * Parses a key id (protector GUID) or volume GUID with or without braces and dashes, any case.
 * Returns the canonical form `XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX` (upper case, no braces).
 *
 * @example
 * parseKeyId('{4290b6c0-b17a-497a-8552-272cc30e80d4}') // '4290B6C0-B17A-497A-8552-272CC30E80D4'
 */
export function parseKeyId(input: string): string {
  const text = input.trim();
  const m = DASHED.exec(text) ?? PLAIN.exec(text);
  if (!m || text.startsWith('{') !== text.endsWith('}')) {
    throw new BdeError(
      'ERR_BDE_INVALID_KEY_ID',
      'Invalid key id: expected a GUID such as {4290B6C0-B17A-497A-8552-272CC30E80D4}',
    );
  }
  return m.slice(1, 6).join('-').toUpperCase();
}

/** True when `input` parses as a key id. */
export function isKeyId(input: string): boolean {
  try {
    parseKeyId(input);
    return true;
  } catch {
    return false;
  }
}

/** Prints a key id as Windows does: `{4290B6C0-B17A-497A-8552-272CC30E80D4}`. */
export function formatKeyId(keyId: string): string {
  return `{${parseKeyId(keyId)}}`;
}

/**
 * Parses the key id prefix shown at the preboot recovery screen: its first 8 hex digits
 * (an optional leading brace is allowed). A full key id gives its own prefix.
 */
export function parseKeyIdPrefix(input: string): string {
  const text = input.trim();
  const m = /^\{?([0-9a-f]{8})$/i.exec(text);
  if (m) return m[1]!.toUpperCase();
  if (isKeyId(text)) return parseKeyId(text).slice(0, 8);
  throw new BdeError(
    'ERR_BDE_INVALID_KEY_ID',
    'Invalid key id prefix: expected the first 8 hex digits of the key id',
  );
}

/** True when the key id starts with the 8-digit prefix from the preboot screen. */
export function keyIdMatchesPrefix(keyId: string, prefix: string): boolean {
  return parseKeyId(keyId).startsWith(parseKeyIdPrefix(prefix));
}

/** The 16 bytes of a GUID in Microsoft mixed-endian order (first three fields little-endian). */
export function guidToBytes(guid: string): Uint8Array {
  const hex = parseKeyId(guid).replaceAll('-', '');
  const bytes = Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
  bytes.subarray(0, 4).reverse();
  bytes.subarray(4, 6).reverse();
  bytes.subarray(6, 8).reverse();
  return bytes;
}

/** The canonical GUID string of 16 mixed-endian bytes (as stored on disk and in Active Directory). */
export function guidFromBytes(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'A GUID is 16 bytes');
  const copy = Uint8Array.from(bytes); // never reverse the caller's buffer in place
  copy.subarray(0, 4).reverse();
  copy.subarray(4, 6).reverse();
  copy.subarray(6, 8).reverse();
  const hex = Buffer.from(copy).toString('hex').toUpperCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
