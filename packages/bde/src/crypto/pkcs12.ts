/** PKCS#12 (.pfx / .p12) reading on node:crypto alone: MAC check, PBES2 and legacy PBE, key and cert bags. */
import {
  type KeyObject,
  X509Certificate,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  pbkdf2Sync,
  timingSafeEqual,
} from 'node:crypto';
import { BdeError, type BdeErrorCode, isBdeError } from '../errors.js';
import {
  type DerNode,
  TAG,
  childrenOf,
  decodeDer,
  expectTag,
  octets,
  oid as readOid,
  sequence as readSequence,
  smallInteger,
  tryDecodeDer,
} from './asn1.js';

const PFX: BdeErrorCode = 'ERR_BDE_BAD_PFX';

/*
 * Iteration ceilings: real files use 2,000 (Windows) to 2,048 (OpenSSL) and rarely more than
 * 100,000; a hostile file must not be able to pin the CPU for minutes. The PKCS#12 KDF runs its
 * loop in JavaScript, so its ceiling is lower than PBKDF2's (native).
 */
const MAX_PKCS12_KDF_ITERATIONS = 2_000_000;
const MAX_PBKDF2_ITERATIONS = 10_000_000;

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  safeContentsBag: '1.2.840.113549.1.12.10.1.6',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  friendlyName: '1.2.840.113549.1.9.20',
  localKeyId: '1.2.840.113549.1.9.21',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
} as const;

export interface Pkcs12Digest {
  name: string;
  /** Output size u and block size v (RFC 7292 B.2). */
  size: number;
  block: number;
}

const DIGESTS: Record<string, Pkcs12Digest> = {
  '1.3.14.3.2.26': { name: 'sha1', size: 20, block: 64 },
  '2.16.840.1.101.3.4.2.4': { name: 'sha224', size: 28, block: 64 },
  '2.16.840.1.101.3.4.2.1': { name: 'sha256', size: 32, block: 64 },
  '2.16.840.1.101.3.4.2.2': { name: 'sha384', size: 48, block: 128 },
  '2.16.840.1.101.3.4.2.3': { name: 'sha512', size: 64, block: 128 },
};
const SHA1 = DIGESTS['1.3.14.3.2.26']!;

/** PBKDF2 PRFs (RFC 8018 B.1.2). */
const HMAC_PRFS: Record<string, string> = {
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.8': 'sha224',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
};

interface Cipher {
  name: string;
  keyLength: number;
  ivLength: number;
}

/** PBES2 encryption schemes. */
const PBES2_CIPHERS: Record<string, Cipher> = {
  '2.16.840.1.101.3.4.1.2': { name: 'aes-128-cbc', keyLength: 16, ivLength: 16 },
  '2.16.840.1.101.3.4.1.22': { name: 'aes-192-cbc', keyLength: 24, ivLength: 16 },
  '2.16.840.1.101.3.4.1.42': { name: 'aes-256-cbc', keyLength: 32, ivLength: 16 },
  '1.2.840.113549.3.7': { name: 'des-ede3-cbc', keyLength: 24, ivLength: 8 },
};

/**
 * The PKCS#12 PBE schemes (RFC 7292 appendix C), all with SHA-1. RC2 and RC4 live in OpenSSL's
 * legacy provider, which Node does not load: those decrypt only where the runtime offers them.
 */
const PKCS12_PBE: Record<string, Cipher> = {
  '1.2.840.113549.1.12.1.1': { name: 'rc4', keyLength: 16, ivLength: 0 },
  '1.2.840.113549.1.12.1.2': { name: 'rc4-40', keyLength: 5, ivLength: 0 },
  '1.2.840.113549.1.12.1.3': { name: 'des-ede3-cbc', keyLength: 24, ivLength: 8 },
  '1.2.840.113549.1.12.1.4': { name: 'des-ede-cbc', keyLength: 16, ivLength: 8 },
  '1.2.840.113549.1.12.1.5': { name: 'rc2-cbc', keyLength: 16, ivLength: 8 },
  '1.2.840.113549.1.12.1.6': { name: 'rc2-40-cbc', keyLength: 5, ivLength: 8 },
};

/** A certificate found in a certBag. */
export interface Pkcs12Certificate {
  /** The DER certificate. */
  readonly der: Uint8Array;
  /** SHA-1 of the DER certificate, lower-case hex: what BitLocker stores as the thumbprint. */
  readonly thumbprint: string;
  /** The localKeyId attribute (hex) that ties it to a key bag, when present. */
  readonly localKeyId: string | null;
  readonly friendlyName: string | null;
  /** The subject public key, when node:crypto can parse the certificate. */
  readonly publicKey: KeyObject | null;
}

/** A private key found in a keyBag or pkcs8ShroudedKeyBag. */
export interface Pkcs12Key {
  readonly key: KeyObject;
  readonly localKeyId: string | null;
  readonly friendlyName: string | null;
  /** The certificate of this key (same public key, else same localKeyId), when the file has it. */
  readonly certificate: Pkcs12Certificate | null;
}

export interface Pkcs12Contents {
  readonly keys: Pkcs12Key[];
  readonly certificates: Pkcs12Certificate[];
  /**
   * Parts not read because their cipher is missing from this runtime (typically certificates under
   * RC2-40, OpenSSL's old default) or of a kind we do not read (CRLs, secrets, public-key privacy).
   */
  readonly skipped: string[];
  /** False when the file carries no MAC (integrity not checked; allowed by the format). */
  readonly macVerified: boolean;
}

function bad(what: string): never {
  throw new BdeError(PFX, `Malformed PKCS#12 file: ${what}`);
}

function wrongPassword(): BdeError {
  return new BdeError(
    'ERR_BDE_BAD_PFX_PASSWORD',
    'Wrong PFX password (or the file was altered): the PKCS#12 integrity check failed',
  );
}

// Navigation helpers bound to this module's error code.
const seq = (node: DerNode | undefined, what: string, min = 0) => readSequence(node, what, min, PFX);
const oid = (node: DerNode | undefined, what: string) => readOid(node, what, PFX);
const tagged = (node: DerNode | undefined, tag: number, what: string) => expectTag(node, tag, what, PFX);
const int = (node: DerNode | undefined, what: string) => smallInteger(node, what, PFX);
/** An OCTET STRING, primitive or BER constructed. */
const octetString = (node: DerNode | undefined, what: string) => octets(tagged(node, TAG.OCTET_STRING, what));
/** The single child of an [0] EXPLICIT wrapper. */
function explicit0(node: DerNode | undefined, what: string): DerNode {
  const inner = childrenOf(tagged(node, TAG.CONTEXT_0, what));
  if (inner.length !== 1) bad(`${what}: [0] must hold one element`);
  return inner[0]!;
}

/** A password in the two encodings PKCS#12 uses. */
interface Password {
  /** BMPString (UTF-16BE) with a terminating NUL: the PKCS#12 KDF's input (RFC 7292 B.1). */
  bmp: Uint8Array;
  /** UTF-8, PBES2's input (what OpenSSL and Windows pass to PBKDF2). */
  utf8: Uint8Array;
}

/**
 * The encodings to try. An empty password is ambiguous: OpenSSL writes it as a lone NUL
 * (00 00), some writers (Windows, "no password") as zero bytes; the MAC tells which.
 */
function passwordCandidates(password: string): Password[] {
  const utf16 = Buffer.from(password, 'utf16le');
  utf16.swap16();
  const bmp = new Uint8Array(Buffer.concat([utf16, Buffer.alloc(2)]));
  const utf8 = new Uint8Array(Buffer.from(password, 'utf8'));
  return password === ''
    ? [
        { bmp, utf8 },
        { bmp: new Uint8Array(0), utf8 },
      ]
    : [{ bmp, utf8 }];
}

/** Repeats `src` to fill a multiple of `v` bytes (empty stays empty), per RFC 7292 B.2 steps 2-3. */
function stretchToBlocks(src: Uint8Array, v: number): Buffer {
  if (src.length === 0) return Buffer.alloc(0);
  const out = Buffer.alloc(v * Math.ceil(src.length / v));
  for (let i = 0; i < out.length; i++) out[i] = src[i % src.length]!;
  return out;
}

/**
 * The PKCS#12 v1.0 key derivation (RFC 7292 appendix B.2). `id` is 1 for a cipher key, 2 for an
 * IV and 3 for a MAC key.
 */
export function pkcs12Kdf(
  digest: Pkcs12Digest,
  password: Uint8Array,
  salt: Uint8Array,
  id: 1 | 2 | 3,
  iterations: number,
  length: number,
): Buffer {
  const { name, size: u, block: v } = digest;
  if (!Number.isSafeInteger(iterations) || iterations < 1 || iterations > MAX_PKCS12_KDF_ITERATIONS) {
    bad(`iteration count ${iterations} out of range`);
  }
  const diversifier = Buffer.alloc(v, id);
  const input = Buffer.concat([stretchToBlocks(salt, v), stretchToBlocks(password, v)]);
  const blocks = Math.ceil(length / u);
  const out = Buffer.alloc(blocks * u);
  for (let i = 0; i < blocks; i++) {
    let a = createHash(name).update(diversifier).update(input).digest();
    for (let r = 1; r < iterations; r++) a = createHash(name).update(a).digest();
    a.copy(out, i * u);
    if (i + 1 === blocks) break;
    // Each v-byte block of I becomes (I_j + B + 1) mod 2^(8v), B being A repeated to v bytes.
    for (let off = 0; off < input.length; off += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = input[off + k]! + a[k % u]! + carry;
        input[off + k] = sum & 0xff;
        carry = sum >>> 8;
      }
    }
  }
  return out.subarray(0, length);
}

/** Runs a CBC/stream decipher: 'unsupported' when this runtime lacks the cipher, null on bad padding. */
function runCipher(
  cipher: Cipher,
  key: Uint8Array,
  iv: Uint8Array,
  data: Uint8Array,
): Buffer | null | 'unsupported' {
  let decipher;
  try {
    decipher = createDecipheriv(cipher.name, key, cipher.ivLength === 0 ? null : iv);
  } catch {
    return 'unsupported';
  }
  try {
    return Buffer.concat([decipher.update(data), decipher.final()]);
  } catch {
    return null;
  }
}

/**
 * Decrypts `data` under an AlgorithmIdentifier (PBES2 or PKCS#12 PBE) with each password
 * candidate; returns those whose padding checked (empty: wrong password), or 'unsupported'.
 */
function pbeDecrypt(
  algorithm: DerNode | undefined,
  data: Uint8Array,
  passwords: Password[],
): { plain: Buffer; password: Password }[] | 'unsupported' {
  const [algOid, params] = seq(algorithm, 'encryption AlgorithmIdentifier', 1);
  const scheme = oid(algOid, 'encryption algorithm');
  const results: { plain: Buffer; password: Password }[] = [];
  const legacy = PKCS12_PBE[scheme];
  if (legacy) {
    const [saltNode, iterNode] = seq(params, 'PKCS#12 PBE parameters', 2);
    const salt = octetString(saltNode, 'PBE salt');
    const iterations = int(iterNode, 'PBE iterations');
    for (const password of passwords) {
      const key = pkcs12Kdf(SHA1, password.bmp, salt, 1, iterations, legacy.keyLength);
      const iv = legacy.ivLength
        ? pkcs12Kdf(SHA1, password.bmp, salt, 2, iterations, legacy.ivLength)
        : Buffer.alloc(0);
      const plain = runCipher(legacy, key, iv, data);
      if (plain === 'unsupported') return plain;
      if (plain) results.push({ plain, password });
    }
    return results;
  }
  if (scheme !== OID.pbes2) return 'unsupported';
  const [kdf, encryption] = seq(params, 'PBES2 parameters', 2);
  const [kdfOid, kdfParams] = seq(kdf, 'PBES2 key derivation', 1);
  if (oid(kdfOid, 'PBES2 key derivation') !== OID.pbkdf2) return 'unsupported';
  const kdfItems = seq(kdfParams, 'PBKDF2 parameters', 2);
  const salt = octetString(kdfItems[0], 'PBKDF2 salt');
  const iterations = int(kdfItems[1], 'PBKDF2 iterations');
  if (iterations < 1 || iterations > MAX_PBKDF2_ITERATIONS)
    bad(`PBKDF2 iteration count ${iterations} out of range`);
  let keyLength: number | null = null;
  let prf = 'sha1';
  for (const item of kdfItems.slice(2)) {
    if (item.tag === TAG.INTEGER) {
      keyLength = int(item, 'PBKDF2 key length');
    } else {
      const found = HMAC_PRFS[oid(seq(item, 'PBKDF2 PRF', 1)[0], 'PBKDF2 PRF')];
      if (!found) return 'unsupported';
      prf = found;
    }
  }
  const [cipherOid, ivNode] = seq(encryption, 'PBES2 encryption scheme', 2);
  const cipher = PBES2_CIPHERS[oid(cipherOid, 'PBES2 cipher')];
  if (!cipher) return 'unsupported';
  const iv = octetString(ivNode, 'PBES2 IV');
  if (iv.length !== cipher.ivLength) bad('PBES2 IV length');
  if (keyLength !== null && keyLength !== cipher.keyLength) bad('PBKDF2 key length does not fit the cipher');
  // PBKDF2 takes the same bytes whichever empty-password form the MAC used: derive once.
  const seen = new Set<string>();
  for (const password of passwords) {
    const tag = Buffer.from(password.utf8).toString('hex');
    if (seen.has(tag)) continue;
    seen.add(tag);
    const key = pbkdf2Sync(password.utf8, salt, iterations, cipher.keyLength, prf);
    const plain = runCipher(cipher, key, iv, data);
    if (plain === 'unsupported') return plain;
    if (plain) results.push({ plain, password });
  }
  return results;
}

/**
 * Checks the MacData (RFC 7292 §4) over the authSafe content and returns the password encodings
 * that pass: an empty list means wrong password (or altered file).
 */
function verifyMac(macData: DerNode, authSafe: Uint8Array, passwords: Password[]): Password[] {
  const [digestInfo, saltNode, iterNode] = seq(macData, 'MacData', 2);
  const [algorithm, digestNode] = seq(digestInfo, 'MAC DigestInfo', 2);
  const macOid = oid(seq(algorithm, 'MAC algorithm', 1)[0], 'MAC algorithm');
  const digest = DIGESTS[macOid];
  if (!digest) {
    throw new BdeError(PFX, `Unsupported PKCS#12 MAC algorithm ${macOid} (PBMAC1 and others are not read)`);
  }
  const expected = octetString(digestNode, 'MAC digest');
  const salt = octetString(saltNode, 'MAC salt');
  const iterations = iterNode ? int(iterNode, 'MAC iterations') : 1;
  if (expected.length !== digest.size) bad('MAC length');
  return passwords.filter((password) => {
    const key = pkcs12Kdf(digest, password.bmp, salt, 3, iterations, digest.size);
    const mac = createHmac(digest.name, key).update(authSafe).digest();
    return timingSafeEqual(mac, expected);
  });
}

/** A SafeBag's attributes we use: localKeyId (hex) and friendlyName. */
function attributesOf(node: DerNode | undefined): { localKeyId: string | null; friendlyName: string | null } {
  let localKeyId: string | null = null;
  let friendlyName: string | null = null;
  if (!node) return { localKeyId, friendlyName };
  for (const attribute of childrenOf(tagged(node, TAG.SET, 'bag attributes'))) {
    const [typeNode, values] = seq(attribute, 'attribute', 2);
    const type = oid(typeNode, 'attribute type');
    const first = childrenOf(tagged(values, TAG.SET, 'attribute values'))[0];
    if (!first) continue;
    if (type === OID.localKeyId && first.tag === TAG.OCTET_STRING) {
      localKeyId = Buffer.from(octets(first)).toString('hex');
    } else if (type === OID.friendlyName && first.tag === TAG.BMP_STRING && first.content.length % 2 === 0) {
      const le = Buffer.from(first.content);
      le.swap16();
      friendlyName = le.toString('utf16le');
    }
  }
  return { localKeyId, friendlyName };
}

interface RawKey {
  key: KeyObject;
  localKeyId: string | null;
  friendlyName: string | null;
}

/** The state of one read: what was found, and the password encodings still in play. */
interface Reader {
  passwords: Password[];
  macVerified: boolean;
  keys: RawKey[];
  certificates: Pkcs12Certificate[];
  skipped: string[];
}

function pkcs8Key(der: Uint8Array): KeyObject | null {
  try {
    return createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
  } catch {
    return null;
  }
}

function certificateOf(der: Uint8Array, attrs: ReturnType<typeof attributesOf>): Pkcs12Certificate {
  let publicKey: KeyObject | null = null;
  try {
    publicKey = new X509Certificate(Buffer.from(der)).publicKey;
  } catch {
    // Still usable by thumbprint.
  }
  return {
    der: new Uint8Array(der),
    thumbprint: createHash('sha1').update(der).digest('hex'),
    localKeyId: attrs.localKeyId,
    friendlyName: attrs.friendlyName,
    publicKey,
  };
}

/** Reads a SafeContents (SEQUENCE OF SafeBag). */
function readSafeContents(node: DerNode, reader: Reader): void {
  for (const bag of seq(node, 'SafeContents')) {
    const [idNode, valueNode, attrNode] = seq(bag, 'SafeBag', 2);
    const bagId = oid(idNode, 'bag type');
    const value = explicit0(valueNode, 'bag value');
    const attrs = attributesOf(attrNode);
    switch (bagId) {
      case OID.keyBag: {
        const key = pkcs8Key(value.raw);
        if (!key) bad('keyBag is not a PKCS#8 private key');
        reader.keys.push({ key, ...attrs });
        break;
      }
      case OID.shroudedKeyBag: {
        const [algorithm, dataNode] = seq(value, 'EncryptedPrivateKeyInfo', 2);
        const decrypted = pbeDecrypt(algorithm, octetString(dataNode, 'encrypted key'), reader.passwords);
        if (decrypted === 'unsupported') {
          throw new BdeError(
            PFX,
            'The PFX private key is encrypted with a scheme this Node.js cannot decrypt',
          );
        }
        const found = decrypted.map((d) => ({ key: pkcs8Key(d.plain), password: d.password }));
        // The KeyObject holds its own copy: do not leave the decrypted PKCS#8 lying in memory.
        for (const d of decrypted) d.plain.fill(0);
        const hit = found.find((f) => f.key !== null);
        if (!hit?.key) {
          // Without a MAC this is the only password check there is.
          if (!reader.macVerified) throw wrongPassword();
          bad('the private key does not decrypt although the MAC matched');
        }
        reader.passwords = [hit.password];
        reader.keys.push({ key: hit.key, ...attrs });
        break;
      }
      case OID.certBag: {
        const [typeNode, certValue] = seq(value, 'CertBag', 2);
        if (oid(typeNode, 'certificate type') !== OID.x509Certificate) {
          reader.skipped.push('a non-X.509 certificate');
          break;
        }
        reader.certificates.push(
          certificateOf(octetString(explicit0(certValue, 'certificate'), 'certificate'), attrs),
        );
        break;
      }
      case OID.safeContentsBag:
        readSafeContents(value, reader);
        break;
      default:
        reader.skipped.push(`a bag of type ${bagId}`);
    }
  }
}

/** Reads one ContentInfo of the AuthenticatedSafe: data, or password-encrypted data. */
function readContentInfo(node: DerNode, reader: Reader): void {
  const [typeNode, contentNode] = seq(node, 'ContentInfo', 1);
  const type = oid(typeNode, 'content type');
  if (type === OID.data) {
    const bytes = octetString(explicit0(contentNode, 'data content'), 'data content');
    readSafeContents(decodeDer(bytes, PFX, node.depth + 1), reader);
    return;
  }
  if (type !== OID.encryptedData) {
    reader.skipped.push(`content of type ${type} (public-key privacy mode is not read)`);
    return;
  }
  const [, encryptedContentInfo] = seq(explicit0(contentNode, 'encryptedData'), 'EncryptedData', 2);
  const [, algorithm, encrypted] = seq(encryptedContentInfo, 'EncryptedContentInfo', 2);
  if (!encrypted) return;
  if (encrypted.tag !== TAG.CONTEXT_0_PRIMITIVE && encrypted.tag !== TAG.CONTEXT_0)
    bad('encryptedContent tag');
  const decrypted = pbeDecrypt(algorithm, octets(encrypted), reader.passwords);
  if (decrypted === 'unsupported') {
    // OpenSSL's historic default puts certificates under RC2-40, absent from Node's OpenSSL 3
    // default provider. The key bag is separate, so the key can still be read.
    const name = PKCS12_PBE[readOid(seq(algorithm, 'algorithm', 1)[0])]?.name ?? 'an unsupported cipher';
    reader.skipped.push(`an encrypted part under ${name} (usually the certificates)`);
    return;
  }
  for (const { plain, password } of decrypted) {
    const inner = tryDecodeDer(plain, PFX);
    if (!inner || inner.tag !== TAG.SEQUENCE) continue;
    reader.passwords = [password];
    try {
      readSafeContents(decodeDer(plain, PFX, node.depth + 1), reader);
    } finally {
      // Everything kept from it (keys, certificates) was copied; a plain key bag may sit in here.
      for (const d of decrypted) d.plain.fill(0);
    }
    return;
  }
  if (!reader.macVerified) throw wrongPassword();
  bad('an encrypted part does not decrypt although the MAC matched');
}

/** SPKI DER of a key, for comparing a private key with a certificate's public key. */
function spkiOf(key: KeyObject): string | null {
  try {
    return createPublicKey(key).export({ format: 'der', type: 'spki' }).toString('hex');
  } catch {
    return null;
  }
}

/** Pairs each key with its certificate: same public key first, else the same localKeyId. */
function pair(keys: RawKey[], certificates: Pkcs12Certificate[]): Pkcs12Key[] {
  const certSpki = certificates.map((c) => (c.publicKey ? spkiOf(c.publicKey) : null));
  return keys.map((k) => {
    const spki = spkiOf(k.key);
    const byKey = spki === null ? -1 : certSpki.findIndex((s) => s === spki);
    const byId = k.localKeyId === null ? -1 : certificates.findIndex((c) => c.localKeyId === k.localKeyId);
    const index = byKey >= 0 ? byKey : byId;
    return { ...k, certificate: index >= 0 ? certificates[index]! : null };
  });
}

/**
 * True when `bytes` has the shape of a PFX: SEQUENCE { INTEGER 3, ContentInfo (PKCS#7 OID), ... }.
 * Never throws, so it can pick the reader for an unknown credential file.
 */
export function looksLikePkcs12(bytes: Uint8Array): boolean {
  try {
    const top = tryDecodeDer(bytes, PFX);
    if (!top || top.tag !== TAG.SEQUENCE) return false;
    const [version, authSafe] = childrenOf(top);
    if (version?.tag !== TAG.INTEGER || authSafe?.tag !== TAG.SEQUENCE) return false;
    const type = childrenOf(authSafe)[0];
    return type !== undefined && oid(type, 'content type').startsWith('1.2.840.113549.1.7.');
  } catch {
    return false;
  }
}

function readPfx(bytes: Uint8Array, password: string): Pkcs12Contents {
  const [versionNode, authSafe, macData] = seq(decodeDer(bytes, PFX), 'PFX', 2);
  if (int(versionNode, 'PFX version') !== 3) bad('PFX version is not 3');
  const [typeNode, contentNode] = seq(authSafe, 'authSafe', 2);
  if (oid(typeNode, 'authSafe type') !== OID.data) {
    throw new BdeError(PFX, 'PFX files in public-key integrity mode (signedData) are not supported');
  }
  const authSafeBytes = octetString(explicit0(contentNode, 'authSafe content'), 'authSafe content');
  let passwords = passwordCandidates(password);
  let macVerified = false;
  if (macData) {
    passwords = verifyMac(macData, authSafeBytes, passwords);
    if (passwords.length === 0) throw wrongPassword();
    macVerified = true;
  }
  const reader: Reader = { passwords, macVerified, keys: [], certificates: [], skipped: [] };
  for (const info of seq(decodeDer(authSafeBytes, PFX, (authSafe?.depth ?? 0) + 1), 'AuthenticatedSafe')) {
    readContentInfo(info, reader);
  }
  return {
    keys: pair(reader.keys, reader.certificates),
    certificates: reader.certificates,
    skipped: reader.skipped,
    macVerified,
  };
}

/**
 * Reads a PKCS#12 file: verifies its MAC with `password` (empty by default), decrypts the key
 * bags (PBES2 with PBKDF2 + AES/3DES, or the PKCS#12 PBE with 3DES) and collects the certificates
 * with their SHA-1 thumbprints. Throws ERR_BDE_BAD_PFX_PASSWORD for a wrong password and
 * ERR_BDE_BAD_PFX for anything malformed or unsupported; never any other kind of error.
 */
export function readPkcs12(bytes: Uint8Array, password = ''): Pkcs12Contents {
  try {
    return readPfx(bytes, password);
  } catch (err) {
    if (isBdeError(err)) {
      // The ASN.1 reader reports a missing element with the generic code: it is still a bad file.
      if (err.code === 'ERR_BDE_INVALID_ARGUMENT') throw new BdeError(PFX, err.message, { cause: err });
      throw err;
    }
    // Anything else (a node:crypto refusal we did not foresee) is still reported as a bad file.
    throw new BdeError(PFX, 'Malformed or unsupported PKCS#12 file', { cause: err });
  }
}
