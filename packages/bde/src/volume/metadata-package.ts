/**
 * bdevault metadata packages: the bytes needed to open a volume whose on-disk metadata is later
 * destroyed (an off-device repair-bde). They hold only what is on the disk anyway (wrapped keys),
 * so a package is no more secret than the volume itself; a credential is still needed.
 *
 * Layout (all integers little-endian):
 *
 * | off | size | field |
 * |---|---|---|
 * | 0 | 8 | magic `BDEVMETA` |
 * | 8 | 2 | format version (1) |
 * | 10 | 2 | header size (40) |
 * | 12 | 4 | CRC-32 (IEEE) of bytes [16, end) |
 * | 16 | 8 | volume size in bytes |
 * | 24 | 16 | volume GUID (mixed-endian, as on disk) |
 * | 40 | … | sections: u16 kind, u16 reserved, u32 length, u64 volume offset, `length` bytes |
 *
 * Section kinds: 1 first sector, 2 FVE block (64 KiB, once per metadata offset), 3 relocated boot
 * region (the encrypted original boot sectors at the volume-header offset).
 */
import { crc32 } from '../crypto/crc32.js';
import { BdeError } from '../errors.js';
import { guidFromBytes, guidToBytes } from '../key-id.js';
import { FVE_BLOCK_SIZE } from './fve-block.js';
import { type BitLockerVolume, openVolume } from './open-volume.js';
import { type ByteSource, type SourcePatch, overlaySource } from './source.js';

const MAGIC = 'BDEVMETA';
const VERSION = 1;
const HEADER_SIZE = 40;
const SECTION_HEADER = 16;
/** Larger than any real package (To Go's boot region is 5 MiB); bounds what a parser allocates. */
const MAX_PACKAGE = 64 * 1024 * 1024;
const MAX_SECTIONS = 16;

export const SECTION = { FIRST_SECTOR: 1, FVE_BLOCK: 2, BOOT_REGION: 3 } as const;

export interface MetadataPackage {
  volumeSize: number;
  volumeGuid: string;
  sections: { kind: number; offset: number; bytes: Uint8Array }[];
}

function bad(message: string): BdeError {
  return new BdeError('ERR_BDE_BAD_PACKAGE', `Invalid metadata package: ${message}`);
}

/**
 * Exports the first sector, the chosen (CRC-valid) FVE block written for all three metadata
 * offsets, and the relocated boot region into one small file.
 *
 * @example
 * await writeFile('volume.bdemeta', await exportMetadataPackage(volume));
 */
export async function exportMetadataPackage(volume: BitLockerVolume): Promise<Uint8Array> {
  const { source, info, block } = volume;
  const firstSector = await source.read(0, Math.min(info.sectorSize, source.size));
  const blockBytes = await source.read(block.offset, Math.min(FVE_BLOCK_SIZE, source.size - block.offset));
  const sections: MetadataPackage['sections'] = [
    { kind: SECTION.FIRST_SECTOR, offset: 0, bytes: firstSector },
  ];
  for (const offset of new Set(info.metadataOffsets)) {
    if (offset + blockBytes.length <= source.size)
      sections.push({ kind: SECTION.FVE_BLOCK, offset, bytes: blockBytes });
  }
  const vh = info.volumeHeader;
  if (volume.bootSector.kind !== 'vista' && vh.size > 0 && vh.offset + vh.size <= source.size) {
    sections.push({
      kind: SECTION.BOOT_REGION,
      offset: vh.offset,
      bytes: await source.read(vh.offset, vh.size),
    });
  }
  return serializeMetadataPackage({ volumeSize: info.volumeSize, volumeGuid: info.volumeGuid, sections });
}

/** Serialises a package (see the layout above). */
export function serializeMetadataPackage(pkg: MetadataPackage): Uint8Array {
  const total = HEADER_SIZE + pkg.sections.reduce((n, s) => n + SECTION_HEADER + s.bytes.length, 0);
  const out = Buffer.alloc(total);
  out.write(MAGIC, 0, 'latin1');
  out.writeUInt16LE(VERSION, 8);
  out.writeUInt16LE(HEADER_SIZE, 10);
  out.writeBigUInt64LE(BigInt(pkg.volumeSize), 16);
  out.set(guidToBytes(pkg.volumeGuid), 24);
  let p = HEADER_SIZE;
  for (const s of pkg.sections) {
    out.writeUInt16LE(s.kind, p);
    out.writeUInt32LE(s.bytes.length, p + 4);
    out.writeBigUInt64LE(BigInt(s.offset), p + 8);
    out.set(s.bytes, p + SECTION_HEADER);
    p += SECTION_HEADER + s.bytes.length;
  }
  out.writeUInt32LE(crc32(out.subarray(16)), 12);
  return new Uint8Array(out);
}

/** Parses and checks a package; throws ERR_BDE_BAD_PACKAGE on any inconsistency. */
export function parseMetadataPackage(bytes: Uint8Array): MetadataPackage {
  if (bytes.length < HEADER_SIZE || bytes.length > MAX_PACKAGE) throw bad('size');
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.toString('latin1', 0, 8) !== MAGIC) throw bad('not a bdevault metadata package');
  if (buf.readUInt16LE(8) !== VERSION) throw bad(`unsupported version ${buf.readUInt16LE(8)}`);
  if (buf.readUInt16LE(10) !== HEADER_SIZE) throw bad('header size');
  if (buf.readUInt32LE(12) !== crc32(buf.subarray(16))) throw bad('CRC-32 mismatch');
  const volumeSize = Number(buf.readBigUInt64LE(16));
  if (!Number.isSafeInteger(volumeSize)) throw bad('volume size');
  const sections: MetadataPackage['sections'] = [];
  let p = HEADER_SIZE;
  while (p < buf.length) {
    if (sections.length >= MAX_SECTIONS || p + SECTION_HEADER > buf.length) throw bad('sections');
    const length = buf.readUInt32LE(p + 4);
    const offset = Number(buf.readBigUInt64LE(p + 8));
    if (
      p + SECTION_HEADER + length > buf.length ||
      !Number.isSafeInteger(offset) ||
      offset + length > volumeSize
    ) {
      throw bad('section out of bounds');
    }
    const start = p + SECTION_HEADER;
    sections.push({
      kind: buf.readUInt16LE(p),
      offset,
      bytes: Uint8Array.from(buf.subarray(start, start + length)),
    });
    p = start + length;
  }
  if (!sections.some((s) => s.kind === SECTION.FVE_BLOCK)) throw bad('no FVE block');
  return { volumeSize, volumeGuid: guidFromBytes(buf.subarray(24, 40)), sections };
}

/**
 * Opens a volume through a metadata package: the package's sectors are laid over the device's,
 * so destroyed metadata (all three FVE blocks, the boot sector) is replaced. The device is never
 * written. Then `unlock` as usual.
 *
 * @example
 * const volume = await openVolumeWithPackage(source, await readFile('volume.bdemeta'));
 * const unlocked = await unlock(volume, { kind: 'recovery-password', recoveryPassword });
 */
export async function openVolumeWithPackage(
  source: ByteSource,
  packageBytes: Uint8Array,
): Promise<BitLockerVolume> {
  const pkg = parseMetadataPackage(packageBytes);
  if (source.size < pkg.volumeSize) {
    throw new BdeError(
      'ERR_BDE_TRUNCATED',
      `The device (${source.size} bytes) is smaller than the packaged volume`,
    );
  }
  const patches: SourcePatch[] = pkg.sections.map((s) => ({ offset: s.offset, bytes: s.bytes }));
  const volume = await openVolume(overlaySource(source, patches));
  if (volume.info.volumeGuid !== pkg.volumeGuid) throw bad('volume GUID differs from its FVE block');
  return volume;
}
