/** Recognises a BitLocker volume from its first sector and finds the FVE metadata blocks (§3.1). */
import { BdeError } from '../errors.js';
import { guidFromBytes } from '../key-id.js';

/** Identifier GUID of a normal BitLocker volume. */
export const BITLOCKER_GUID = '4967D63B-2E29-4AD8-8399-F6A339E3D001';
/** Identifier GUID of an encrypt-on-write ("used space only") volume. */
export const BITLOCKER_EOW_GUID = '92A84D3B-DD80-4D0E-9E4E-B1E3284EAED8';

/** `windows7` covers Windows 7 to 11 fixed volumes; `to-go` removable FAT volumes; `vista` version 1. */
export type VolumeKind = 'windows7' | 'to-go' | 'vista';

export interface BootSector {
  kind: VolumeKind;
  sectorSize: number;
  sectorsPerCluster: number;
  /** True when the identifier is the encrypt-on-write GUID. */
  eow: boolean;
  /** Byte offsets of the FVE blocks listed in the boot sector (Vista: only the first is known). */
  fveOffsets: number[];
}

const ascii = (b: Uint8Array, off: number, len: number): string =>
  String.fromCharCode(...b.subarray(off, off + len));

function u64(view: DataView, off: number): number {
  const value = view.getUint32(off, true) + view.getUint32(off + 4, true) * 0x100000000;
  if (!Number.isSafeInteger(value)) throw new BdeError('ERR_BDE_CORRUPT_METADATA', 'Offset out of range');
  return value;
}

/** Parses sector 0; throws ERR_BDE_NOT_BITLOCKER when it is not a BitLocker volume. */
export function parseBootSector(sector: Uint8Array): BootSector {
  if (sector.length < 512) throw new BdeError('ERR_BDE_NOT_BITLOCKER', 'Not a BitLocker volume (too small)');
  const view = new DataView(sector.buffer, sector.byteOffset, sector.byteLength);
  const oem = ascii(sector, 3, 8);
  const rawSectorSize = view.getUint16(11, true);
  const sectorSize = rawSectorSize === 0 ? 512 : rawSectorSize;
  const sectorsPerCluster = sector[13]!;
  let kind: VolumeKind;
  let guidAt: number;
  let offsetsAt: number;
  if (oem === '-FVE-FS-') {
    kind = view.getUint32(56, true) !== 0 || view.getUint32(60, true) !== 0 ? 'vista' : 'windows7';
    guidAt = 160;
    offsetsAt = 176;
  } else if (oem === 'MSWIN4.1') {
    kind = 'to-go';
    guidAt = 424;
    offsetsAt = 440;
  } else {
    throw new BdeError('ERR_BDE_NOT_BITLOCKER', 'Not a BitLocker volume (no BitLocker signature)');
  }
  const guid = guidFromBytes(sector.subarray(guidAt, guidAt + 16));
  if (kind !== 'vista' && guid !== BITLOCKER_GUID && guid !== BITLOCKER_EOW_GUID) {
    throw new BdeError('ERR_BDE_NOT_BITLOCKER', 'Not a BitLocker volume (unknown identifier)');
  }
  if (sectorSize !== 512 && sectorSize !== 4096) {
    throw new BdeError('ERR_BDE_UNSUPPORTED_VERSION', `Unsupported sector size ${sectorSize}`);
  }
  let fveOffsets: number[];
  if (kind === 'vista') {
    // Vista stores the LCN of metadata block 1; blocks 2 and 3 come from that block's header.
    const lcn = u64(view, 56);
    const offset = lcn * Math.max(1, sectorsPerCluster) * sectorSize;
    if (!Number.isSafeInteger(offset)) throw new BdeError('ERR_BDE_CORRUPT_METADATA', 'Offset out of range');
    fveOffsets = [offset];
  } else {
    fveOffsets = [u64(view, offsetsAt), u64(view, offsetsAt + 8), u64(view, offsetsAt + 16)];
  }
  return { kind, sectorSize, sectorsPerCluster, eow: guid === BITLOCKER_EOW_GUID, fveOffsets };
}
