/** RSA PKCS#1 v1.5 (type 2) decryption done with BigInt, because Node 20 refuses it in privateDecrypt. */
import type { KeyObject } from 'node:crypto';

/*
 * Why our own RSA: Node 20.x (CVE-2023-46809 mitigation) throws on privateDecrypt with
 * RSA_PKCS1_PADDING unless the whole process runs with --security-revert. That CVE is the
 * Bleichenbacher / Marvin padding oracle: an attacker submits chosen ciphertexts to a server and
 * watches failures or timing. Here the ciphertext comes from the user's own volume and the key is
 * the user's own, decrypted once, offline, with no one observing the outcome, so there is no
 * oracle to exploit. We still keep the padding check free of early exits and report a single
 * generic failure (null), so this function stays safe if it is ever reused somewhere that matters.
 */

/** The private key components (JWK export): modulus, exponents and CRT values. */
interface RsaPrivateParts {
  n: bigint;
  e: bigint;
  d: bigint;
  p: bigint | null;
  q: bigint | null;
  dp: bigint | null;
  dq: bigint | null;
  qi: bigint | null;
  /** Modulus length in bytes. */
  k: number;
}

function bigintOf(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
}

/** I2OSP: the big-endian encoding of `x` in exactly `length` bytes (x < 256^length). */
function bytesOf(x: bigint, length: number): Uint8Array {
  const hex = x.toString(16).padStart(length * 2, '0');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

function b64(value: unknown): bigint | null {
  return typeof value === 'string' && value.length > 0 ? bigintOf(Buffer.from(value, 'base64url')) : null;
}

/** Left-to-right square-and-multiply; exponents here are private, but nobody is timing us (see above). */
function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  const b = base % modulus;
  const bits = exponent.toString(2);
  let result = 1n;
  for (let j = 0; j < bits.length; j++) {
    result = (result * result) % modulus;
    if (bits[j] === '1') result = (result * b) % modulus;
  }
  return result;
}

const partsCache = new WeakMap<KeyObject, RsaPrivateParts>();

/** The numeric parts of an RSA private KeyObject, or null for any other key. */
function partsOf(key: KeyObject): RsaPrivateParts | null {
  const cached = partsCache.get(key);
  if (cached) return cached;
  if (key.type !== 'private' || key.asymmetricKeyType !== 'rsa') return null;
  const jwk = key.export({ format: 'jwk' });
  const n = b64(jwk.n);
  const e = b64(jwk.e);
  const d = b64(jwk.d);
  if (n === null || e === null || d === null || n < 3n) return null;
  const parts: RsaPrivateParts = {
    n,
    e,
    d,
    p: b64(jwk.p),
    q: b64(jwk.q),
    dp: b64(jwk.dp),
    dq: b64(jwk.dq),
    qi: b64(jwk.qi),
    k: Math.ceil(n.toString(16).length / 2),
  };
  partsCache.set(key, parts);
  return parts;
}

/**
 * RSADP: m = c^d mod n, with the CRT when the key has its primes (about 3-4 times faster), and
 * checked by re-encrypting so a key with inconsistent CRT values cannot hand back garbage.
 */
function rsaPrivate(parts: RsaPrivateParts, c: bigint): bigint | null {
  const { n, e, d, p, q, dp, dq, qi } = parts;
  let m: bigint;
  if (p !== null && q !== null && dp !== null && dq !== null && qi !== null && p * q === n) {
    const m1 = modPow(c, dp, p);
    const m2 = modPow(c, dq, q);
    const h = (qi * (((m1 - m2) % p) + p)) % p;
    m = m2 + h * q;
  } else {
    m = modPow(c, d, n);
  }
  return modPow(m, e, n) === c ? m : null;
}

/**
 * Decrypts an RSAES-PKCS1-v1_5 ciphertext (RFC 8017 §7.2.2) with an RSA private KeyObject.
 * Returns the message, or null for every failure (wrong key, bad length, bad padding) alike.
 */
export function rsaDecryptPkcs1v15(key: KeyObject, ciphertext: Uint8Array): Uint8Array | null {
  const parts = partsOf(key);
  if (!parts || parts.k < 11 || ciphertext.length !== parts.k) return null;
  const c = bigintOf(ciphertext);
  if (c >= parts.n) return null;
  const m = rsaPrivate(parts, c);
  if (m === null) return null;
  return unpadPkcs1v15Type2(bytesOf(m, parts.k));
}

/**
 * Checks EM = 0x00 || 0x02 || PS (at least 8 non-zero bytes) || 0x00 || M and returns M, or null.
 * The scan visits every byte and folds the checks with arithmetic so that where the padding is
 * wrong does not change the path taken; only the final verdict branches.
 */
export function unpadPkcs1v15Type2(em: Uint8Array): Uint8Array | null {
  const k = em.length;
  if (k < 11) return null;
  let searching = 1; // 1 until the first zero byte after the type byte is seen
  let separator = 0; // index of that zero byte
  for (let i = 2; i < k; i++) {
    // isZero is 1 when em[i] === 0: (0 - 1) has the sign bit set, (1..255) - 1 does not.
    const isZero = ((em[i]! - 1) >>> 31) & 1;
    const take = searching & isZero;
    separator |= -take & i;
    searching &= isZero ^ 1;
  }
  // A separator index below 10 means fewer than 8 padding bytes (indexes 2..9).
  const shortPs = ((separator - 10) >>> 31) & 1;
  const bad = em[0]! | (em[1]! ^ 0x02) | searching | shortPs;
  return bad === 0 ? em.slice(separator + 1) : null;
}
