/** Shared test helpers for the volume suites: open images, hash plaintext, rebuild metadata. */
import { type KeyObject, createHash, randomBytes } from 'node:crypto';
import { ccmWrapKey } from '../../src/crypto/aes-ccm.js';
import { crc32 } from '../../src/crypto/crc32.js';
import { guidToBytes } from '../../src/key-id.js';
import { parseDatums } from '../../src/volume/datum.js';
import type { BitLockerVolume } from '../../src/volume/open-volume.js';
import { openVolume } from '../../src/volume/open-volume.js';
import { type ByteSource, type FileSource, openFileSource, overlaySource } from '../../src/volume/source.js';
import type { UnlockedVolume } from '../../src/volume/unlock.js';
import { bitlkFixtures, type BitlkImage } from '../fixtures.js';

export const fx = bitlkFixtures();
export const skipMessage = 'bitlk image archive not found: real-image volume tests skipped';

const opened: FileSource[] = [];

/** Opens an image file as a source; closed by `closeAll` in afterAll. */
export async function openImageSource(image: BitlkImage): Promise<FileSource> {
  const source = await openFileSource(image.path);
  opened.push(source);
  return source;
}

export async function openImage(
  name: string,
): Promise<{ image: BitlkImage; source: FileSource; volume: BitLockerVolume }> {
  const image = fx!.image(name);
  const source = await openImageSource(image);
  return { image, source, volume: await openVolume(source) };
}

export async function closeAll(): Promise<void> {
  await Promise.all(opened.splice(0).map((s) => s.close()));
}

/** Streaming SHA-256 of the whole plaintext view. */
export async function plaintextSha256(unlocked: UnlockedVolume): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of unlocked.plaintextChunks()) hash.update(chunk);
  return hash.digest('hex');
}

/** Builds one datum: u16 size | u16 entry type | u16 value type | u16 version | body. */
export function datum(entryType: number, valueType: number, body: Uint8Array, version = 1): Buffer {
  const out = Buffer.alloc(8 + body.length);
  out.writeUInt16LE(out.length, 0);
  out.writeUInt16LE(entryType, 2);
  out.writeUInt16LE(valueType, 4);
  out.writeUInt16LE(version, 6);
  out.set(body, 8);
  return out;
}

let nonceCounter = 0x1000;
/** An AES_CCM datum wrapping a KEY datum (method, payload) under `key`. */
export function ccmDatum(entryType: number, key: Uint8Array, method: number, payload: Uint8Array): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32LE(0x12345678, 0);
  nonce.writeUInt32LE(nonceCounter++, 8);
  const { mac, ciphertext } = ccmWrapKey(key, nonce, method, payload);
  return datum(entryType, 5, Buffer.concat([nonce, mac, ciphertext]));
}

/** A VMK entry (entry 2, value 8) for a protector GUID, protection code and nested datums. */
export function vmkEntry(guid: string, protection: number, nested: Buffer[], version = 1): Buffer {
  const head = Buffer.alloc(28);
  head.set(guidToBytes(guid), 0);
  head.writeUInt16LE(protection, 26);
  return datum(2, 8, Buffer.concat([head, ...nested]), version);
}

/** A KEY datum body. */
export function keyDatum(entryType: number, method: number, key: Uint8Array): Buffer {
  const body = Buffer.alloc(4 + key.length);
  body.writeUInt16LE(method, 0);
  body.set(key, 4);
  return datum(entryType, 1, body);
}

/** A STRETCH_KEY datum with nested datums. */
export function stretchDatum(method: number, salt: Uint8Array, nested: Buffer[]): Buffer {
  const head = Buffer.alloc(20);
  head.writeUInt16LE(method, 0);
  head.set(salt, 4);
  return datum(0, 3, Buffer.concat([head, ...nested]));
}

export const randomGuid = (): string => {
  const h = randomBytes(16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`.toUpperCase();
};

/** The raw 64 KiB of the volume's chosen FVE block and its top-level entries as raw buffers. */
export async function blockEntries(volume: BitLockerVolume): Promise<{ raw: Buffer; entries: Buffer[] }> {
  const raw = Buffer.from(await volume.source.read(volume.block.offset, 0x10000));
  const metadataSize = raw.readUInt32LE(64);
  const entries = parseDatums(raw.subarray(112, 64 + metadataSize)).map((d) => Buffer.from(d.bytes));
  return { raw, entries };
}

/**
 * Rebuilds a 64 KiB FVE block around new entries: sizes, CRC-32 and the SHA-256 validation datum
 * (wrapped with `vmk`) are recomputed, so the block is as valid as one Windows wrote.
 */
export function rebuildBlock(raw: Buffer, entries: Buffer[], vmk: Uint8Array): Buffer {
  const body = Buffer.concat(entries);
  const metadataSize = 48 + body.length;
  const fveSize = Math.ceil((64 + metadataSize) / 16) * 16;
  const out = Buffer.alloc(0x10000);
  raw.copy(out, 0, 0, 112);
  body.copy(out, 112);
  out.writeUInt16LE(fveSize / 16, 8);
  out.writeUInt32LE(metadataSize, 64);
  out.writeUInt32LE(metadataSize, 76);
  const digest = createHash('sha256').update(out.subarray(0, fveSize)).digest();
  const validation = ccmDatum(0, vmk, 0x2005, digest);
  out.writeUInt16LE(0x10000 - fveSize, fveSize);
  out.writeUInt16LE(2, fveSize + 2);
  out.writeUInt32LE(crc32(out.subarray(0, fveSize)), fveSize + 4);
  validation.copy(out, fveSize + 8);
  return out;
}

/** The volume's source with `block` written over all three metadata offsets. */
export function withBlock(
  volume: BitLockerVolume,
  block: Uint8Array,
  base: ByteSource = volume.source,
): ByteSource {
  return overlaySource(
    base,
    volume.info.metadataOffsets.map((offset) => ({ offset, bytes: block })),
  );
}

/**
 * A public-key (certificate) VMK entry (§3.13): ASYM_ENC `asym` (the RSA-encrypted intermediate
 * key, padded and ordered as the caller chose), the CNG RSA1 public blob, the "gsin" thumbprint
 * record, USE_KEY and the VMK wrapped by `intermediate`.
 */
export function publicKeyEntry(
  guid: string,
  vmk: Uint8Array,
  options: {
    publicKey: KeyObject;
    asym: Uint8Array;
    intermediate: Uint8Array;
    thumbprint: Uint8Array;
    certType: number;
  },
): Buffer {
  const jwk = options.publicKey.export({ format: 'jwk' });
  const n = Buffer.from(jwk.n!, 'base64url');
  const e = Buffer.from(jwk.e!, 'base64url');
  const blob = Buffer.alloc(24 + e.length + n.length);
  blob.write('RSA1', 0, 'latin1');
  blob.writeUInt32LE(n.length * 8, 4);
  blob.writeUInt32LE(e.length, 8);
  blob.writeUInt32LE(n.length, 12);
  e.copy(blob, 24);
  n.copy(blob, 24 + e.length);
  const gsin = Buffer.alloc(37);
  gsin.write('gsin', 0, 'latin1');
  gsin.writeUInt32LE(37, 4);
  gsin.writeUInt32LE(options.certType, 8);
  gsin.writeUInt32LE(20, 12);
  gsin.set(options.thumbprint, 16);
  const useKey = Buffer.concat([
    Buffer.from([0x06, 0x20, 0, 0]),
    ccmDatum(0, vmk, 0x2006, options.intermediate),
  ]);
  return vmkEntry(guid, 0x1000, [
    datum(0, 0xc, options.asym),
    datum(0xc, 0xd, blob),
    datum(0, 0xe, gsin),
    datum(0, 0x4, useKey),
    ccmDatum(0, options.intermediate, 0x2003, vmk),
  ]);
}
