/**
 * Encryption to an `age` X25519 recipient (age-encryption.org/v1), on node:crypto alone: the export
 * format, so a break-glass copy opens with the stock `age -d -i identity` and nothing of ours.
 */
import {
  createCipheriv,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  hkdfSync,
} from 'node:crypto';
import { AppError } from '../../lib/errors.js';
import type { RandomSource } from '../../lib/random.js';

const BECH32_CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const CHUNK_SIZE = 64 * 1024;
const X25519_INFO = 'age-encryption.org/v1/X25519';

/** `age1` + 58 bech32 characters: an X25519 public key as `age-keygen` prints it. */
export const AGE_RECIPIENT_PATTERN = /^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/;

function bech32Polymod(values: number[]): number {
  const generators = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= generators[i]!;
  }
  return chk >>> 0;
}

function hrpExpand(hrp: string): number[] {
  const out: number[] = [];
  for (const c of hrp) out.push(c.charCodeAt(0) >>> 5);
  out.push(0);
  for (const c of hrp) out.push(c.charCodeAt(0) & 31);
  return out;
}

/** The 32-byte X25519 public key of an `age1…` recipient; throws VALIDATION_FAILED otherwise. */
export function parseAgeRecipient(recipient: string): Buffer {
  const invalid = () =>
    new AppError('VALIDATION_FAILED', 'The recipient is not an age X25519 public key (age1…)');
  const text = recipient.trim().toLowerCase();
  if (!AGE_RECIPIENT_PATTERN.test(text)) throw invalid();
  const data = [...text.slice(4)].map((c) => BECH32_CHARSET.indexOf(c));
  // bech32 (not bech32m): the checksum constant is 1.
  if (bech32Polymod([...hrpExpand('age'), ...data]) !== 1) throw invalid();
  const words = data.slice(0, -6);
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const w of words) {
    acc = (acc << 5) | w;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((acc >>> bits) & 0xff);
    }
  }
  if (bytes.length !== 32 || bits >= 5 || (acc & ((1 << bits) - 1)) !== 0) throw invalid();
  return Buffer.from(bytes);
}

const b64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '');

function hkdf(ikm: Buffer, salt: Buffer, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));
}

function chacha(key: Buffer, nonce: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** The X25519 recipient stanza wrapping `fileKey` for `recipientKey`. */
function x25519Stanza(recipientKey: Buffer, fileKey: Buffer): string {
  const ephemeral = generateKeyPairSync('x25519');
  const ephemeralPublic = Buffer.from(ephemeral.publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const shared = diffieHellman({
    privateKey: ephemeral.privateKey,
    publicKey: createPublicKey({
      key: { kty: 'OKP', crv: 'X25519', x: recipientKey.toString('base64url') },
      format: 'jwk',
    }),
  });
  // A low-order recipient key gives an all-zero secret; age requires refusing it.
  if (shared.every((b) => b === 0)) {
    throw new AppError('VALIDATION_FAILED', 'The recipient is not a usable X25519 public key');
  }
  const wrapKey = hkdf(shared, Buffer.concat([ephemeralPublic, recipientKey]), X25519_INFO);
  const body = chacha(wrapKey, Buffer.alloc(12), fileKey);
  return `-> X25519 ${b64(ephemeralPublic)}\n${b64(body)}\n`;
}

/**
 * A streaming age encryptor: `header` first, then whatever `update` returns, then `final()`.
 * Plaintext is cut into 64 KiB chunks, each sealed with ChaCha20-Poly1305 under a counter nonce.
 */
export class AgeEncryptor {
  readonly header: Buffer;
  private readonly payloadKey: Buffer;
  private pending: Buffer = Buffer.alloc(0);
  private counter = 0n;
  private finished = false;

  constructor(recipients: readonly string[], random: RandomSource) {
    if (recipients.length === 0) throw new AppError('VALIDATION_FAILED', 'At least one recipient is needed');
    const fileKey = random.bytes(16);
    const stanzas = recipients.map((r) => x25519Stanza(parseAgeRecipient(r), fileKey)).join('');
    const headerText = `age-encryption.org/v1\n${stanzas}---`;
    const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header'))
      .update(headerText)
      .digest();
    const nonce = random.bytes(16);
    this.payloadKey = hkdf(fileKey, nonce, 'payload');
    fileKey.fill(0);
    this.header = Buffer.concat([Buffer.from(`${headerText} ${b64(mac)}\n`), nonce]);
  }

  private seal(chunk: Buffer, last: boolean): Buffer {
    const nonce = Buffer.alloc(12);
    // 11-byte big-endian chunk counter, then the last-chunk flag.
    let c = this.counter++;
    for (let i = 10; i >= 0; i--) {
      nonce[i] = Number(c & 0xffn);
      c >>= 8n;
    }
    nonce[11] = last ? 1 : 0;
    return chacha(this.payloadKey, nonce, chunk);
  }

  /** Encrypted chunks ready so far; the last (possibly full) chunk is held back for `final`. */
  update(data: Buffer | string): Buffer {
    if (this.finished) throw new Error('age encryptor already finished');
    this.pending = Buffer.concat([this.pending, typeof data === 'string' ? Buffer.from(data) : data]);
    const out: Buffer[] = [];
    while (this.pending.length > CHUNK_SIZE) {
      out.push(this.seal(this.pending.subarray(0, CHUNK_SIZE), false));
      this.pending = this.pending.subarray(CHUNK_SIZE);
    }
    return Buffer.concat(out);
  }

  final(): Buffer {
    if (this.finished) throw new Error('age encryptor already finished');
    this.finished = true;
    const last = this.seal(this.pending, true);
    this.pending = Buffer.alloc(0);
    this.payloadKey.fill(0);
    return last;
  }
}

/** Encrypts a whole buffer to the recipients as one age file. */
export function ageEncrypt(
  plaintext: Buffer | string,
  recipients: readonly string[],
  random: RandomSource,
): Buffer {
  const encryptor = new AgeEncryptor(recipients, random);
  return Buffer.concat([encryptor.header, encryptor.update(plaintext), encryptor.final()]);
}
