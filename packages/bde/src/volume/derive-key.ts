/** Initial hashes of the recovery password and the user password, before the stretch (§3.5). */
import { createHash } from 'node:crypto';
import { recoveryPasswordToKey } from '../recovery-password.js';

const sha256 = (data: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(data).digest());

/** SHA-256 of the 16-byte recovery key; throws ERR_BDE_INVALID_PASSWORD_FORMAT on a malformed password. */
export function recoveryPasswordInitialHash(recoveryPassword: string): Uint8Array {
  return sha256(recoveryPasswordToKey(recoveryPassword));
}

/**
 * SHA-256(SHA-256(UTF-16LE(password))), no terminating NUL. JS strings are UTF-16 already, so
 * characters outside the BMP become their surrogate pairs, as Windows stores them.
 */
export function passwordInitialHash(password: string): Uint8Array {
  return sha256(sha256(Buffer.from(password, 'utf16le')));
}
