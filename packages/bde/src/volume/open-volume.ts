/** openVolume: reads the boot sector and the first valid FVE block, and describes the volume. */
import { BdeError } from '../errors.js';
import { type BootSector, type VolumeKind, parseBootSector } from './boot-sector.js';
import { ENTRY, VALUE, find, offsetSizeValue, unicodeValue } from './datum.js';
import { FVE_BLOCK_SIZE, type FveBlock, parseFveBlock } from './fve-block.js';
import { type Protector, type ProtectorInfo, listProtectors } from './protectors.js';
import type { ByteSource } from './source.js';

const METHOD_NAMES: Readonly<Record<number, string>> = {
  0x8000: 'AES 128 with Diffuser',
  0x8001: 'AES 256 with Diffuser',
  0x8002: 'AES 128',
  0x8003: 'AES 256',
  0x8004: 'XTS-AES 128',
  0x8005: 'XTS-AES 256',
};

const KIND_NAMES: Readonly<Record<VolumeKind, string>> = {
  windows7: 'BitLocker (Windows 7 or later)',
  'to-go': 'BitLocker To Go',
  vista: 'BitLocker (Windows Vista)',
};

/** What `bdevault volume info` shows; every GUID upper case without braces. */
export interface VolumeInfo {
  kind: VolumeKind;
  kindName: string;
  volumeGuid: string;
  /** FVEK method code (0x8000–0x8005) and manage-bde's name, e.g. "XTS-AES 128". */
  method: number;
  methodName: string;
  /** Encrypt-on-write ("used space only") identifier in the boot sector. */
  encryptOnWrite: boolean;
  currentState: number;
  nextState: number;
  /** manage-bde's conversion status, e.g. "Fully Encrypted", "Used Space Only Encrypted". */
  conversionStatus: string;
  /** Size of the device or image (the plaintext view is this long). */
  volumeSize: number;
  /** Bytes from the start that are encrypted; above it the volume is plaintext. */
  encryptedSize: number;
  sectorSize: number;
  createdAt: Date | null;
  description: string | null;
  protectors: ProtectorInfo[];
  /** "Off" when a clear-key protector exists: anyone holding the disk can decrypt it. */
  protectionStatus: 'On' | 'Off (suspended: clear key)';
  /** The three metadata block offsets and which copy was used (0-based). */
  metadataOffsets: number[];
  metadataBlockUsed: number;
  /** The relocated original boot sectors: where they are stored and how long the region is. */
  volumeHeader: { offset: number; size: number };
}

/** An opened (still locked) volume. Pass it to `unlock`. */
export interface BitLockerVolume {
  readonly info: VolumeInfo;
  readonly source: ByteSource;
  readonly bootSector: BootSector;
  /** The FVE block chosen by CRC-32. */
  readonly block: FveBlock;
  readonly protectors: readonly Protector[];
}

function conversionStatus(current: number, next: number, eow: boolean): string {
  if (current === 4 && next === 4) return eow ? 'Used Space Only Encrypted' : 'Fully Encrypted';
  if (current === 3) return 'Used Space Only Encrypted';
  if (current === 1 && next === 1) return 'Fully Decrypted';
  if (current === 2) return next === 1 ? 'Decryption in Progress' : 'Encryption in Progress';
  if (current === 5) return next === 1 ? 'Decryption Paused' : 'Encryption Paused';
  return `Unknown (state ${current}/${next})`;
}

async function readBlock(source: ByteSource, offset: number): Promise<FveBlock | null> {
  if (offset <= 0 || offset >= source.size) return null;
  const bytes = await source.read(offset, Math.min(FVE_BLOCK_SIZE, source.size - offset));
  try {
    return parseFveBlock(bytes, offset);
  } catch (err) {
    if (err instanceof BdeError) return null;
    throw err;
  }
}

/** First block with a valid signature, expected version, CRC and its own offset listed (§3.2). */
async function chooseBlock(
  source: ByteSource,
  boot: BootSector,
): Promise<{ block: FveBlock; index: number; offsets: number[] }> {
  const expectedVersion = boot.kind === 'vista' ? 1 : 2;
  let offsets = boot.fveOffsets;
  const seen: (FveBlock | null)[] = [];
  for (let i = 0; i < 3; i++) {
    const offset = offsets[i];
    if (offset === undefined) break;
    const block = await readBlock(source, offset);
    seen.push(block);
    if (!block) continue;
    if (boot.kind === 'vista' && offsets.length === 1) offsets = [offset, ...block.blockOffsets.slice(1)];
    if (block.crcValid && block.version === expectedVersion && block.blockOffsets[i] === offset) {
      return { block, index: i, offsets };
    }
  }
  // Vista's validation layout is undocumented and untested: accept a structurally valid block.
  const fallback = boot.kind === 'vista' ? seen.findIndex((b) => b?.version === 1) : -1;
  if (fallback >= 0) return { block: seen[fallback]!, index: fallback, offsets };
  throw new BdeError('ERR_BDE_CORRUPT_METADATA', 'No valid FVE metadata block (all three copies damaged)');
}

/**
 * Opens a BitLocker volume: recognises it, picks the metadata block and lists its protectors.
 * Throws ERR_BDE_NOT_BITLOCKER, ERR_BDE_CORRUPT_METADATA, ERR_BDE_TRUNCATED, ERR_BDE_UNSUPPORTED_*.
 *
 * @example
 * const source = await openFileSource('disk.img');
 * const volume = await openVolume(source);
 * console.log(volume.info.methodName, volume.info.protectors.map((p) => p.typeName));
 */
export async function openVolume(source: ByteSource): Promise<BitLockerVolume> {
  if (source.size < 512) throw new BdeError('ERR_BDE_NOT_BITLOCKER', 'Not a BitLocker volume (too small)');
  const boot = parseBootSector(await source.read(0, 512));
  const { block, index, offsets } = await chooseBlock(source, boot);
  const protectors = listProtectors(block.entries);
  const header = find(block.entries, VALUE.OFFSET_SIZE, ENTRY.VOLUME_HEADER);
  // Newer Windows 10 volumes may omit the entry: fall back to the block header (§3.3).
  const volumeHeader = header
    ? offsetSizeValue(header)
    : { offset: block.volumeHeaderOffset, size: block.headerSectors * boot.sectorSize };
  if (boot.kind !== 'vista' && (volumeHeader.size > 64 * 1024 * 1024 || volumeHeader.offset >= source.size)) {
    throw new BdeError('ERR_BDE_CORRUPT_METADATA', 'Volume header location out of bounds');
  }
  const description = find(block.entries, VALUE.UNICODE, ENTRY.DESCRIPTION);
  const infos = protectors.map((p) => p.info);
  const info: VolumeInfo = {
    kind: boot.kind,
    kindName: KIND_NAMES[boot.kind],
    volumeGuid: block.volumeGuid,
    method: block.method,
    methodName: METHOD_NAMES[block.method] ?? `Unknown (0x${block.method.toString(16)})`,
    encryptOnWrite: boot.eow,
    currentState: block.currentState,
    nextState: block.nextState,
    conversionStatus: conversionStatus(block.currentState, block.nextState, boot.eow),
    volumeSize: source.size,
    encryptedSize: block.encryptedSize,
    sectorSize: boot.sectorSize,
    createdAt: block.createdAt,
    description: description ? unicodeValue(description) : null,
    protectors: infos,
    protectionStatus: infos.some((p) => p.type === 'clear-key') ? 'Off (suspended: clear key)' : 'On',
    metadataOffsets: offsets,
    metadataBlockUsed: index,
    volumeHeader,
  };
  return { info, source, bootSector: boot, block, protectors };
}
