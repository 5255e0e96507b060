/** dislocker's FVEK file (`dislocker -K`): u16 LE encryption method, then the key padded to 64 bytes. */
import { FVEK_LENGTH } from '../crypto/sector-cipher.js';
import { BdeError } from '../errors.js';

export const FVEK_FILE_SIZE = 66;

/**
 * The 66-byte FVEK file for dislocker (`export-fvek`). Secret: it decrypts the volume.
 *
 * @example
 * await writeFile('volume.fvek', fvekFile(unlocked.method, unlocked.fvek), { mode: 0o600 });
 */
export function fvekFile(method: number, fvek: Uint8Array): Uint8Array {
  const expected = FVEK_LENGTH[method];
  if (expected === undefined || fvek.length !== expected) {
    throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'FVEK length does not match the encryption method');
  }
  const out = new Uint8Array(FVEK_FILE_SIZE);
  out[0] = method & 0xff;
  out[1] = method >>> 8;
  out.set(fvek, 2);
  return out;
}

/** Reads a dislocker FVEK file back into method and key (trimmed to the method's length). */
export function parseFvekFile(bytes: Uint8Array): { method: number; fvek: Uint8Array } {
  if (bytes.length !== FVEK_FILE_SIZE)
    throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'An FVEK file is 66 bytes');
  const method = bytes[0]! | (bytes[1]! << 8);
  const length = FVEK_LENGTH[method];
  if (length === undefined) throw new BdeError('ERR_BDE_UNSUPPORTED_METHOD', 'Unknown method in FVEK file');
  return { method, fvek: bytes.slice(2, 2 + length) };
}
