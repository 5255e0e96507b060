/** One FVE metadata block (§3.2): block header, metadata header, entries and validation. */
import { crc32 } from '../crypto/crc32.js';
import { BdeError } from '../errors.js';
import { guidFromBytes } from '../key-id.js';
import { type Datum, VALUE, filetime, find, parseDatums } from './datum.js';

/** Every FVE block occupies 64 KiB on disk. */
export const FVE_BLOCK_SIZE = 0x10000;
const SIGNATURE = '-FVE-FS-';

export interface FveBlock {
  /** Where this copy was read. */
  offset: number;
  /** The block bytes `[0, fveSize)`: what the CRC-32 and the SHA-256 validation cover. */
  covered: Uint8Array;
  fveSize: number;
  version: number;
  currentState: number;
  nextState: number;
  encryptedSize: number;
  convertSize: number;
  headerSectors: number;
  blockOffsets: [number, number, number];
  /** Boot-sector backup offset (Vista: MFT-mirror cluster). */
  volumeHeaderOffset: number;
  volumeGuid: string;
  nonceCounter: number;
  method: number;
  createdAt: Date | null;
  entries: Datum[];
  /** The AES_CCM datum holding SHA-256(covered) under the VMK, when present. */
  validation: Datum | undefined;
  crcValid: boolean;
}

function corrupt(message: string): BdeError {
  return new BdeError('ERR_BDE_CORRUPT_METADATA', message);
}

function u64(view: DataView, off: number): number {
  const value = view.getUint32(off, true) + view.getUint32(off + 4, true) * 0x100000000;
  if (!Number.isSafeInteger(value)) throw corrupt('Offset out of range');
  return value;
}

/**
 * Parses one block read at `offset` (`bytes` up to 64 KiB). Throws ERR_BDE_CORRUPT_METADATA on any
 * structural problem; a CRC mismatch is reported in `crcValid` so the caller can pick another copy.
 */
export function parseFveBlock(bytes: Uint8Array, offset: number): FveBlock {
  if (bytes.length < 112 + 8) throw corrupt('FVE block truncated');
  if (String.fromCharCode(...bytes.subarray(0, 8)) !== SIGNATURE) throw corrupt('No FVE block signature');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fveSize = view.getUint16(8, true) * 16;
  const version = view.getUint16(10, true);
  if (version !== 1 && version !== 2) {
    throw new BdeError('ERR_BDE_UNSUPPORTED_VERSION', `Unsupported FVE block version ${version}`);
  }
  if (fveSize < 112 || fveSize + 8 > bytes.length) throw corrupt('FVE block size out of bounds');
  const metadataSize = view.getUint32(64, true);
  if (metadataSize < 48 || 64 + metadataSize > fveSize) throw corrupt('Metadata size out of bounds');
  const covered = bytes.subarray(0, fveSize);
  const crcValid = view.getUint32(fveSize + 4, true) === crc32(covered);
  const entries = parseDatums(bytes.subarray(112, 64 + metadataSize));
  // The validation structure runs from fveSize to the end of the 64 KiB block.
  const validationSize = Math.max(0, Math.min(view.getUint16(fveSize, true), bytes.length - fveSize));
  let validation: Datum | undefined;
  if (validationSize > 8) {
    try {
      validation = find(parseDatums(bytes.subarray(fveSize + 8, fveSize + validationSize)), VALUE.AES_CCM);
    } catch {
      validation = undefined; // a broken validation datum is reported when unlocking
    }
  }
  return {
    offset,
    covered,
    fveSize,
    version,
    currentState: view.getUint16(12, true),
    nextState: view.getUint16(14, true),
    encryptedSize: u64(view, 16),
    convertSize: view.getUint32(24, true),
    headerSectors: view.getUint32(28, true),
    blockOffsets: [u64(view, 32), u64(view, 40), u64(view, 48)],
    volumeHeaderOffset: u64(view, 56),
    volumeGuid: guidFromBytes(bytes.subarray(80, 96)),
    nonceCounter: view.getUint32(96, true),
    method: view.getUint16(100, true),
    createdAt: filetime(bytes, 104),
    entries,
    validation,
    crcValid,
  };
}
