/** AES-256-CCM unwrapping of BitLocker's AES_CCM datums, whose plaintext is a KEY datum (§3.6). */
import { createCipheriv, createDecipheriv } from 'node:crypto';

/** A KEY datum recovered from an AES_CCM datum: its method and key bytes. */
export interface UnwrappedKey {
  method: number;
  key: Uint8Array;
}

/**
 * Decrypts and authenticates `ciphertext` under a 32-byte key with the stored 12-byte nonce and
 * 16-byte MAC. Returns null on any failure (wrong key, tampered data, malformed plaintext): callers
 * treat null as "try the next protector", so the reason is deliberately not kept.
 */
export function ccmUnwrap(
  key: Uint8Array,
  nonce: Uint8Array,
  mac: Uint8Array,
  ciphertext: Uint8Array,
): UnwrappedKey | null {
  if (key.length !== 32 || nonce.length !== 12 || mac.length !== 16 || ciphertext.length < 12) return null;
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-ccm', key, nonce, { authTagLength: 16 });
    decipher.setAuthTag(mac);
    plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    return null;
  }
  const size = plain.readUInt16LE(0);
  const valueType = plain.readUInt16LE(4);
  // The plaintext is a KEY datum whose size must equal the ciphertext length.
  if (size !== plain.length || valueType !== 1) return null;
  return { method: plain.readUInt16LE(8), key: new Uint8Array(plain.subarray(12)) };
}

/**
 * The inverse of ccmUnwrap: wraps a KEY datum (entry type 0, value type KEY) for tests and for
 * writers of metadata. Returns the MAC and ciphertext for the given nonce.
 */
export function ccmWrapKey(
  key: Uint8Array,
  nonce: Uint8Array,
  method: number,
  payload: Uint8Array,
): { mac: Uint8Array; ciphertext: Uint8Array } {
  const plain = Buffer.alloc(12 + payload.length);
  plain.writeUInt16LE(plain.length, 0);
  plain.writeUInt16LE(0, 2);
  plain.writeUInt16LE(1, 4);
  plain.writeUInt16LE(1, 6);
  plain.writeUInt16LE(method, 8);
  plain.set(payload, 12);
  const cipher = createCipheriv('aes-256-ccm', key, nonce, { authTagLength: 16 });
  const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
  return { mac: new Uint8Array(cipher.getAuthTag()), ciphertext: new Uint8Array(ciphertext) };
}
