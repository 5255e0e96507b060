/**
 * Graph `deviceId` for a bdevault device: the 128 random bits of its record id (`dev_<base32>`)
 * written as a lowercase GUID. It is stable for the device's life and maps back without a lookup
 * table, so no column or backfill is needed and every device has one, imported or enrolled.
 */
import { base32, ID_PREFIXES } from '../../lib/ids.js';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const DEVICE_PREFIX = `${ID_PREFIXES.device}_`;
const GUID = /^\{?([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})\}?$/i;

function base32Decode(text: string): Uint8Array | undefined {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const char of text) {
    const digit = ALPHABET.indexOf(char);
    if (digit < 0) return undefined;
    value = ((value << 5) | digit) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  // Leftover bits must be the zero padding the encoder wrote, or two texts would map to one GUID.
  if ((value & ((1 << bits) - 1)) !== 0) return undefined;
  return Uint8Array.from(out);
}

/** The Graph `deviceId` of a device record id; undefined for an id not made by the id generator. */
export function graphDeviceIdOf(deviceRecordId: string): string | undefined {
  if (!deviceRecordId.startsWith(DEVICE_PREFIX)) return undefined;
  const bytes = base32Decode(deviceRecordId.slice(DEVICE_PREFIX.length));
  if (bytes?.length !== 16) return undefined;
  const hex = Buffer.from(bytes).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The device record id a Graph `deviceId` names; undefined when the text is not a GUID. */
export function deviceRecordIdOf(graphDeviceId: string): string | undefined {
  const match = GUID.exec(graphDeviceId);
  if (!match) return undefined;
  return `${DEVICE_PREFIX}${base32(Buffer.from(match.slice(1).join(''), 'hex'))}`;
}

/** A GUID in Graph's form (lowercase, no braces); undefined when the text is not a GUID. */
export function normalizeGuid(text: string): string | undefined {
  const match = GUID.exec(text);
  return match ? match.slice(1).join('-').toLowerCase() : undefined;
}
