/**
 * Envelope encryption of secrets at rest: each record gets its own AES-256-GCM data key, wrapped
 * by the KEK with AES-256-GCM. Both layers bind organization id, record id and purpose as AAD, so
 * a ciphertext copied to another row, organization or column does not decrypt.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { AppError } from './errors.js';
import type { Kek, KekRing } from './kek.js';
import type { RandomSource } from './random.js';

const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const DATA_KEY_LENGTH = 32;
const FORMAT_VERSION = 1;

/** What a ciphertext belongs to; every field is part of the AAD. */
export interface SecretBinding {
  organizationId: string;
  recordId: string;
  purpose:
    | 'recovery-password'
    | 'key-package'
    | 'directory-bind-password'
    | 'totp-secret'
    | 'oidc-client-secret'
    | 'ldap-bind-password'
    | 'smtp-password'
    | 'webhook-secret';
}

/** The three stored columns of an encrypted secret. */
export interface SealedSecret {
  /** base64(version || nonce || ciphertext || tag) under the data key. */
  ciphertext: string;
  /** base64(version || nonce || wrapped data key || tag) under the KEK. */
  wrappedKey: string;
  kekId: string;
}

function aad(label: string, binding: SecretBinding, kekId?: string): Buffer {
  // JSON of a fixed-order array: unambiguous, whatever characters the ids contain.
  return Buffer.from(
    JSON.stringify([
      label,
      FORMAT_VERSION,
      binding.purpose,
      binding.organizationId,
      binding.recordId,
      kekId ?? null,
    ]),
  );
}

function seal(key: Buffer, plaintext: Buffer, additional: Buffer, random: RandomSource): string {
  const nonce = random.bytes(NONCE_LENGTH);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(additional);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(FORMAT_VERSION), nonce, body, cipher.getAuthTag()]).toString('base64');
}

function open(key: Buffer, sealed: string, additional: Buffer): Buffer {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < 1 + NONCE_LENGTH + TAG_LENGTH || raw[0] !== FORMAT_VERSION) throw decryptionFailed();
  const nonce = raw.subarray(1, 1 + NONCE_LENGTH);
  const tag = raw.subarray(raw.length - TAG_LENGTH);
  const body = raw.subarray(1 + NONCE_LENGTH, raw.length - TAG_LENGTH);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(additional);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]);
  } catch {
    throw decryptionFailed();
  }
}

function decryptionFailed(): AppError {
  // Deliberately generic: which layer failed tells an attacker nothing useful and an operator little.
  return new AppError('DECRYPTION_FAILED', 'A stored secret could not be decrypted');
}

export interface Envelope {
  seal(binding: SecretBinding, plaintext: string): SealedSecret;
  open(binding: SecretBinding, sealed: SealedSecret): string;
  /** Re-wraps the data key under `to` without touching the ciphertext (KEK rotation). */
  rewrap(binding: SecretBinding, sealed: SealedSecret, to: Kek): SealedSecret;
}

export function createEnvelope(deps: { kekRing: KekRing; random: RandomSource }): Envelope {
  const { kekRing, random } = deps;
  const unwrap = (binding: SecretBinding, sealed: SealedSecret): Buffer =>
    open(kekRing.resolve(sealed.kekId).key, sealed.wrappedKey, aad('data-key', binding, sealed.kekId));
  const wrap = (binding: SecretBinding, dataKey: Buffer, kek: Kek): string =>
    seal(kek.key, dataKey, aad('data-key', binding, kek.id), random);

  return {
    seal(binding, plaintext) {
      const dataKey = random.bytes(DATA_KEY_LENGTH);
      try {
        const kek = kekRing.current;
        const ciphertext = seal(dataKey, Buffer.from(plaintext, 'utf8'), aad('secret', binding), random);
        return { ciphertext, wrappedKey: wrap(binding, dataKey, kek), kekId: kek.id };
      } finally {
        dataKey.fill(0);
      }
    },
    open(binding, sealed) {
      const dataKey = unwrap(binding, sealed);
      try {
        return open(dataKey, sealed.ciphertext, aad('secret', binding)).toString('utf8');
      } finally {
        dataKey.fill(0);
      }
    },
    rewrap(binding, sealed, to) {
      const dataKey = unwrap(binding, sealed);
      try {
        return { ciphertext: sealed.ciphertext, wrappedKey: wrap(binding, dataKey, to), kekId: to.id };
      } finally {
        dataKey.fill(0);
      }
    },
  };
}
