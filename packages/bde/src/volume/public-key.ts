/** Public-key (smart card / DRA) protectors (§3.13): match a private key, RSA-decrypt the blob. */
import { type KeyObject, constants, createPrivateKey, createPublicKey, privateDecrypt } from 'node:crypto';
import { looksLikePkcs12, readPkcs12 } from '../crypto/pkcs12.js';
import { rsaDecryptPkcs1v15 } from '../crypto/rsa-pkcs1.js';
import { BdeError } from '../errors.js';
import { VALUE, find, rawValue } from './datum.js';
import type { Protector } from './protectors.js';

/** One RSA private key of a credential, its modulus, and the thumbprints of its certificates. */
/** One RSA private key of a certificate credential, with the thumbprints of its certificates. */
export interface CandidateKey {
  key: KeyObject;
  modulus: Buffer;
  thumbprints: string[];
}

/** The RSA modulus of a private or public key (createPublicKey refuses a public KeyObject). */
function modulusOf(key: KeyObject): Buffer {
  const jwk = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'jwk' });
  return Buffer.from(String(jwk.n), 'base64url');
}

/** Every RSA key of a PFX, with the thumbprints of the certificates that go with it. */
function loadPkcs12(bytes: Uint8Array, passphrase: string | undefined): CandidateKey[] {
  const pfx = readPkcs12(bytes, passphrase ?? '');
  const keys = pfx.keys
    .filter((k) => k.key.asymmetricKeyType === 'rsa')
    .map((k) => {
      // A certificate matches its key by public key; localKeyId pairing may miss some.
      const modulus = modulusOf(k.key);
      const thumbprints = pfx.certificates
        .filter(
          (c) =>
            c === k.certificate ||
            (c.publicKey?.asymmetricKeyType === 'rsa' && modulusOf(c.publicKey).equals(modulus)),
        )
        .map((c) => c.thumbprint);
      return { key: k.key, modulus, thumbprints };
    });
  if (keys.length === 0) {
    const why = pfx.skipped.length > 0 ? ` (not read: ${pfx.skipped.join('; ')})` : '';
    throw new BdeError('ERR_BDE_INVALID_ARGUMENT', `The PFX file holds no RSA private key${why}`);
  }
  return keys;
}

/**
 * Loads the RSA private key(s) of a certificate credential: PKCS#12 (.pfx/.p12, recognised by its
 * ASN.1 shape, `passphrase` being the PFX password), PEM (any PKCS#1/PKCS#8 form, encrypted or
 * not) or DER; a PFX may give several keys. Throws ERR_BDE_BAD_PFX_PASSWORD for a wrong PFX
 * password, ERR_BDE_BAD_PFX for a damaged PFX, ERR_BDE_INVALID_ARGUMENT for anything else.
 */
export function loadPrivateKeys(privateKey: string | Uint8Array, passphrase?: string): CandidateKey[] {
  const text = typeof privateKey === 'string' ? privateKey : null;
  const isPem =
    text !== null || Buffer.from(privateKey).subarray(0, 64).toString('latin1').includes('-----BEGIN');
  if (typeof privateKey !== 'string' && !isPem && looksLikePkcs12(privateKey)) {
    return loadPkcs12(privateKey, passphrase);
  }
  const attempts: Parameters<typeof createPrivateKey>[0][] = isPem
    ? [{ key: text ?? Buffer.from(privateKey).toString('latin1'), format: 'pem', passphrase }]
    : [
        { key: Buffer.from(privateKey), format: 'der', type: 'pkcs8', passphrase },
        { key: Buffer.from(privateKey), format: 'der', type: 'pkcs1' },
      ];
  for (const attempt of attempts) {
    try {
      const key = createPrivateKey(attempt);
      if (key.asymmetricKeyType !== 'rsa') break;
      return [{ key, modulus: modulusOf(key), thumbprints: [] }];
    } catch {
      // try the next encoding
    }
  }
  throw new BdeError(
    'ERR_BDE_INVALID_ARGUMENT',
    'Cannot read the RSA private key (PFX, PEM, or DER PKCS#8/PKCS#1 expected)',
  );
}

/** The modulus of the CNG BCRYPT_RSAPUBLIC_BLOB in the EXPORTED_KEY datum, or null. */
function protectorModulus(protector: Protector): Buffer | null {
  const exported = find(protector.datum.nested, VALUE.EXPORTED_KEY);
  if (!exported) return null;
  const blob = rawValue(exported);
  if (blob.length < 24 || String.fromCharCode(...blob.subarray(0, 4)) !== 'RSA1') return null;
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const expLen = view.getUint32(8, true);
  const modLen = view.getUint32(12, true);
  if (expLen > 16 || modLen > 2048 || 24 + expLen + modLen > blob.length) return null;
  return Buffer.from(blob.subarray(24 + expLen, 24 + expLen + modLen));
}

/**
 * The credential's keys that may open `protector`, best first: a key whose certificate thumbprint
 * is the protector's, then any key with the stored modulus. When the protector's public-key blob
 * cannot be read every key is a candidate, so an odd blob never hides a protector.
 */
function keysFor(protector: Protector, keys: readonly CandidateKey[]): CandidateKey[] {
  const stored = protectorModulus(protector);
  const thumbprint = protector.info.certificate?.thumbprint;
  const usable = keys.filter((k) => stored === null || stored.equals(k.modulus));
  const byThumbprint = usable.filter((k) => thumbprint !== undefined && k.thumbprints.includes(thumbprint));
  return [...byThumbprint, ...usable.filter((k) => !byThumbprint.includes(k))];
}

/**
 * Public-key protectors this credential may open (see keysFor), those whose certificate
 * thumbprint is one of the credential's certificates first.
 */
export function matchingProtectors(
  protectors: readonly Protector[],
  keys: readonly CandidateKey[],
): Protector[] {
  const thumbprints = new Set(keys.flatMap((k) => k.thumbprints));
  const usable = protectors.filter((p) => keysFor(p, keys).length > 0);
  const named = usable.filter((p) => thumbprints.has(p.info.certificate?.thumbprint ?? ''));
  return [...named, ...usable.filter((p) => !named.includes(p))];
}

/**
 * RSA-decrypts the protector's ASYM_ENC blob with each of the credential's fitting keys: OAEP
 * (SHA-1, then SHA-256) through node:crypto, then PKCS#1 v1.5 with our own RSA (Node 20 refuses
 * that padding, see rsa-pkcs1.ts), each on the big-endian (CNG) and the reversed (CryptoAPI)
 * byte order. Returns every plaintext that decrypted; the caller tells the right one by the
 * AES-CCM unwrap of the VMK, so a padding false positive costs nothing.
 */
export function rsaDecryptCandidates(protector: Protector, keys: readonly CandidateKey[]): Uint8Array[] {
  const asym = find(protector.datum.nested, VALUE.ASYM_ENC);
  if (!asym) return [];
  const ciphertext = Buffer.from(rawValue(asym));
  const orders = [ciphertext, Buffer.from(ciphertext).reverse()];
  const out: Uint8Array[] = [];
  for (const { key: rsa } of keysFor(protector, keys)) {
    const before = out.length;
    for (const ct of orders) {
      for (const oaepHash of ['sha1', 'sha256']) {
        try {
          out.push(
            new Uint8Array(
              privateDecrypt({ key: rsa, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash }, ct),
            ),
          );
        } catch {
          // not this padding
        }
      }
    }
    // A ciphertext that passed OAEP's check is not a PKCS#1 v1.5 one: spare the BigInt work.
    if (out.length > before) continue;
    for (const ct of orders) {
      const plain = rsaDecryptPkcs1v15(rsa, ct);
      if (plain) out.push(plain);
    }
  }
  return out;
}

/** The intermediate key in an RSA plaintext: 32 raw bytes, or a KEY datum carrying them. */
export function intermediateKeyOf(plain: Uint8Array): Uint8Array | null {
  if (plain.length === 32) return plain;
  if (plain.length >= 44) {
    const size = plain[0]! | (plain[1]! << 8);
    const valueType = plain[4]! | (plain[5]! << 8);
    if (size === plain.length && valueType === VALUE.KEY && size - 12 === 32) return plain.subarray(12);
  }
  return null;
}
