// RSA PKCS#1 v1.5 decryption with BigInt, checked against Node's (still allowed) public encryption.
import {
  type KeyObject,
  constants,
  generateKeyPairSync,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rsaDecryptPkcs1v15, unpadPkcs1v15Type2 } from '../../src/crypto/rsa-pkcs1.js';

/** Raw RSA (no padding) of a k-byte block: lets a test build any EM, valid or not. */
function rawEncrypt(publicKey: KeyObject, em: Uint8Array): Buffer {
  return publicEncrypt({ key: publicKey, padding: constants.RSA_NO_PADDING }, em);
}

/** A well-formed EM with `psLength` random non-zero padding bytes before `message`. */
function encodedMessage(k: number, message: Uint8Array): Buffer {
  const em = Buffer.alloc(k);
  em[1] = 2;
  const psLength = k - 3 - message.length;
  for (let i = 0; i < psLength; i++) em[2 + i] = 1 + (randomBytes(1)[0]! % 255);
  em.set(message, 3 + psLength);
  return em;
}

describe('rsaDecryptPkcs1v15', () => {
  for (const bits of [2048, 3072, 4096]) {
    it(`decrypts publicEncrypt(RSA_PKCS1_PADDING) output for ${bits}-bit keys`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
      const k = bits / 8;
      for (const length of [0, 1, 16, 32, 48, 100, k - 11]) {
        const message = randomBytes(length);
        const ct = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, message);
        expect(Buffer.from(rsaDecryptPkcs1v15(privateKey, ct)!).equals(message)).toBe(true);
      }
      // OAEP decryption of the same key still goes through node:crypto; ours refuses OAEP blobs.
      const intermediate = randomBytes(32);
      const oaep = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, intermediate);
      expect(privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING }, oaep)).toEqual(
        intermediate,
      );
      expect(rsaDecryptPkcs1v15(privateKey, oaep)).toBeNull();
    });
  }

  it('agrees with Node wherever Node still performs PKCS#1 v1.5 decryption', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const message = randomBytes(32);
    const ct = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, message);
    let nodeResult: Buffer | null = null;
    try {
      nodeResult = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_PADDING }, ct);
    } catch (err) {
      // Node 20 (CVE-2023-46809 mitigation) refuses unless run with --security-revert.
      expect((err as { code?: string }).code).toBe('ERR_INVALID_ARG_VALUE');
    }
    const ours = rsaDecryptPkcs1v15(privateKey, ct);
    expect(Buffer.from(ours!).equals(message)).toBe(true);
    if (nodeResult) expect(nodeResult.equals(message)).toBe(true);
  });

  it('rejects malformed paddings with one generic null', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const k = 256;
    const message = randomBytes(32);
    const good = encodedMessage(k, message);
    expect(Buffer.from(rsaDecryptPkcs1v15(privateKey, rawEncrypt(publicKey, good))!).equals(message)).toBe(
      true,
    );

    const cases: Record<string, (em: Buffer) => void> = {
      'first byte not zero': (em) => (em[0] = 1),
      'block type 1 (signature)': (em) => (em[1] = 1),
      'block type 0': (em) => (em[1] = 0),
      'block type 3': (em) => (em[1] = 3),
      'zero inside the first 8 padding bytes': (em) => (em[2 + 5] = 0),
      'zero right after the type byte': (em) => (em[2] = 0),
      'no zero separator': (em) => em.fill(0x5a, 2),
    };
    for (const [name, mutate] of Object.entries(cases)) {
      const em = Buffer.from(good);
      mutate(em);
      expect(rsaDecryptPkcs1v15(privateKey, rawEncrypt(publicKey, em)), name).toBeNull();
      expect(unpadPkcs1v15Type2(em), name).toBeNull();
    }
    // Exactly 8 padding bytes is the minimum that passes; 7 does not.
    const eight = Buffer.alloc(k, 0x11);
    eight[0] = 0;
    eight[1] = 2;
    eight[10] = 0;
    expect(unpadPkcs1v15Type2(eight)).toHaveLength(k - 11);
    const seven = Buffer.from(eight);
    seven[10] = 0x11;
    seven[9] = 0;
    expect(unpadPkcs1v15Type2(seven)).toBeNull();
    // An empty message (separator last) is valid.
    const empty = Buffer.alloc(k, 0x22);
    empty[0] = 0;
    empty[1] = 2;
    empty[k - 1] = 0;
    expect(unpadPkcs1v15Type2(empty)).toHaveLength(0);
  });

  it('rejects wrong lengths, out-of-range ciphertexts, a wrong key and non-RSA keys', () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const ct = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_PADDING }, randomBytes(32));
    expect(rsaDecryptPkcs1v15(privateKey, ct.subarray(1))).toBeNull();
    expect(rsaDecryptPkcs1v15(privateKey, Buffer.concat([ct, Buffer.alloc(1)]))).toBeNull();
    expect(rsaDecryptPkcs1v15(privateKey, Buffer.alloc(256, 0xff))).toBeNull();
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    expect(rsaDecryptPkcs1v15(other, ct)).toBeNull();
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    expect(rsaDecryptPkcs1v15(ec, ct)).toBeNull();
  });
});
