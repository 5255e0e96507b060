/**
 * The plaintext view of a volume exactly as §3.9 defines it: relocated boot sectors restored, FVE
 * metadata areas and the boot-sector backup area as zeros, sectors at or above the encrypted size
 * copied as is, every other sector decrypted in place. Memory stays bounded by the batch size.
 */
import {
  type SectorKeys,
  decryptSectors,
  decryptSectorsInPlace,
  decryptSectorsInto,
} from '../crypto/sector-cipher.js';
import { BdeError } from '../errors.js';
import { FVE_BLOCK_SIZE } from './fve-block.js';
import type { BitLockerVolume } from './open-volume.js';
import type { ByteSource, FileSource } from './source.js';

/** How many bytes of ciphertext one batch decrypts: large enough to amortise each cipher call. */
const BATCH = 4 * 1024 * 1024;

/** A run of the volume with one rule; `from` is where remapped ciphertext is read. */
interface Piece {
  kind: 'zero' | 'plain' | 'decrypt' | 'remap';
  start: number;
  end: number;
  from: number;
}

/** Splits [0, size) into pieces by the §3.9 rules (a handful of pieces per volume). */
export function layoutPieces(volume: BitLockerVolume): Piece[] {
  const { info, block, bootSector } = volume;
  const size = info.volumeSize;
  const vista = bootSector.kind === 'vista';
  const zeros: [number, number][] = [];
  const clusterSize = Math.max(1, bootSector.sectorsPerCluster) * bootSector.sectorSize;
  // Vista's areas are the cluster size rounded up to 16 KiB (libbde/dislocker; untested here).
  const areaSize = vista ? Math.ceil(clusterSize / 16384) * 16384 : FVE_BLOCK_SIZE;
  for (const offset of info.metadataOffsets) zeros.push([offset, offset + areaSize]);
  const vh = info.volumeHeader;
  let remapSize = 0;
  let plainHead = 0;
  if (vista) {
    plainHead = Math.min(16 * bootSector.sectorSize, size); // sector 0 patched, 1-15 plaintext
  } else {
    remapSize = Math.min(vh.size, size);
    zeros.push([vh.offset, vh.offset + vh.size]);
  }
  const encryptedEnd = Math.min(block.encryptedSize, size);
  const cuts = new Set<number>([0, size, encryptedEnd, remapSize, plainHead]);
  for (const [a, b] of zeros) {
    cuts.add(Math.min(a, size));
    cuts.add(Math.min(b, size));
  }
  const points = [...cuts].filter((p) => p >= 0 && p <= size).sort((a, b) => a - b);
  const pieces: Piece[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const start = points[i]!;
    const end = points[i + 1]!;
    if (start === end) continue;
    let piece: Piece;
    if (start < remapSize) piece = { kind: 'remap', start, end, from: vh.offset + start };
    else if (start < plainHead) piece = { kind: 'plain', start, end, from: start };
    else if (zeros.some(([a, b]) => start >= a && start < b))
      piece = { kind: 'zero', start, end, from: start };
    else if (start >= encryptedEnd) piece = { kind: 'plain', start, end, from: start };
    else piece = { kind: 'decrypt', start, end, from: start };
    const last = pieces[pieces.length - 1];
    const contiguous = last && last.kind === piece.kind && last.end === start;
    if (contiguous && last.from + (start - last.start) === piece.from) {
      last.end = end;
    } else {
      pieces.push(piece);
    }
  }
  return pieces;
}

/** Refuses volumes whose plaintext this library cannot produce correctly. */
export function checkDecryptable(volume: BitLockerVolume): void {
  const { info, block } = volume;
  if (info.encryptOnWrite || info.currentState === 3) {
    throw new BdeError(
      'ERR_BDE_UNSUPPORTED_EOW',
      'Used-space-only (encrypt-on-write) volumes cannot be decrypted yet: which regions are encrypted is not known',
    );
  }
  const { currentState: c, nextState: n } = info;
  const settled = (c === 4 && n === 4) || (c === 1 && n === 1) || c === 5;
  const convertingQuietly = c === 2 && block.convertSize === 0;
  if (!settled && !convertingQuietly) {
    throw new BdeError(
      'ERR_BDE_UNSUPPORTED_STATE',
      `Cannot decrypt a volume in conversion state ${c}/${n} (${info.conversionStatus})`,
    );
  }
}

/**
 * Decrypts a batch of whole sectors whose ciphertext buffer is handed over: the callee may
 * overwrite or transfer (detach) it, and returns the plaintext. The worker pool is one.
 */
export type BatchDecrypt = (
  keys: SectorKeys,
  ciphertext: Uint8Array,
  firstOffset: number,
) => Promise<Uint8Array>;

/**
 * Ciphertext in a buffer the caller owns outright (byteOffset 0, whole ArrayBuffer), so it can be
 * decrypted in place or transferred to a worker. A ByteSource's `read` gives no such promise (a
 * custom source may return a view of its cache), so a file source is read directly through its
 * handle, into a fresh buffer, and anything else is copied.
 */
export async function readOwned(source: ByteSource, offset: number, length: number): Promise<Uint8Array> {
  const handle = (source as Partial<FileSource>).handle;
  if (handle === undefined || typeof handle.read !== 'function' || offset + length > source.size) {
    return Uint8Array.from(await source.read(offset, length));
  }
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(out, done, length - done, offset + done));
    } catch (cause) {
      throw new BdeError('ERR_BDE_IO', 'Read error', { cause });
    }
    if (bytesRead === 0) throw new BdeError('ERR_BDE_TRUNCATED', 'Unexpected end of file');
    done += bytesRead;
  }
  return out;
}

/** Reads plaintext through the pieces of `layoutPieces`. */
export class PlaintextReader {
  readonly #volume: BitLockerVolume;
  readonly #keys: SectorKeys;
  readonly #pieces: Piece[];

  constructor(volume: BitLockerVolume, keys: SectorKeys) {
    this.#volume = volume;
    this.#keys = keys;
    this.#pieces = layoutPieces(volume);
  }

  get keys(): SectorKeys {
    return this.#keys;
  }

  /**
   * `length` plaintext bytes at `offset` (both within the volume). Sectors are decrypted on this
   * thread, or by `decrypt` (e.g. a worker pool) when given.
   */
  async read(offset: number, length: number, decrypt?: BatchDecrypt): Promise<Uint8Array> {
    const size = this.#volume.info.volumeSize;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'Invalid read range');
    }
    if (offset + length > size)
      throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'Read past the end of the volume');
    const end = offset + length;
    const vistaHead = this.#volume.bootSector.kind === 'vista' && offset < 512;
    const direct = vistaHead ? undefined : this.#alignedDecryptPiece(offset, end);
    if (direct !== undefined) {
      // The common streaming case: one run of whole sectors, so the decrypted batch IS the result.
      return this.#decryptRun(direct, length, decrypt);
    }
    const out = new Uint8Array(length);
    for (const piece of this.#pieces) {
      if (piece.end <= offset || piece.start >= end) continue;
      const a = Math.max(piece.start, offset);
      const b = Math.min(piece.end, end);
      if (piece.kind === 'zero') continue;
      if (piece.kind === 'plain') out.set(await this.#volume.source.read(a, b - a), a - offset);
      else await this.#decryptInto(out, a - offset, piece.from + (a - piece.start), b - a, decrypt);
    }
    if (vistaHead) this.#patchVistaBoot(out, offset);
    return out;
  }

  /** The ciphertext offset when [offset, end) lies in one decrypt piece as whole sectors, else undefined. */
  #alignedDecryptPiece(offset: number, end: number): number | undefined {
    const ss = this.#keys.sectorSize;
    for (const piece of this.#pieces) {
      if (piece.end <= offset || piece.start >= end) continue;
      if (piece.kind !== 'decrypt' || piece.start > offset || piece.end < end) return undefined;
      const from = piece.from + (offset - piece.start);
      const fits = from + (end - offset) <= this.#volume.source.size;
      return from % ss === 0 && (end - offset) % ss === 0 && fits ? from : undefined;
    }
    return undefined;
  }

  /** Decrypts `length` bytes of whole sectors at `from` (their IV position) into a new buffer. */
  async #decryptRun(from: number, length: number, decrypt?: BatchDecrypt): Promise<Uint8Array> {
    const source = this.#volume.source;
    if (decrypt) return decrypt(this.#keys, await readOwned(source, from, length), from);
    if ((source as Partial<FileSource>).handle !== undefined) {
      return decryptSectorsInPlace(this.#keys, await readOwned(source, from, length), from);
    }
    return decryptSectors(this.#keys, await source.read(from, length), from);
  }

  /** Decrypts `length` bytes whose ciphertext (and IV position) is at `from`, in bounded batches. */
  async #decryptInto(
    out: Uint8Array,
    at: number,
    from: number,
    length: number,
    decrypt?: BatchDecrypt,
  ): Promise<void> {
    const ss = this.#keys.sectorSize;
    const source = this.#volume.source;
    let done = 0;
    while (done < length) {
      const want = Math.min(length - done, BATCH);
      const pos = from + done;
      const first = Math.floor(pos / ss) * ss;
      let last = Math.ceil((pos + want) / ss) * ss;
      if (last > source.size) last = Math.floor(source.size / ss) * ss; // a partial tail sector
      if (last <= first) break;
      const take = Math.min(want, last - pos);
      if (!decrypt && pos === first && take === last - first) {
        // Whole sectors: decrypt straight into the output, no intermediate buffer.
        decryptSectorsInto(
          this.#keys,
          await source.read(first, take),
          out.subarray(at + done, at + done + take),
          first,
        );
      } else {
        const plain = decrypt
          ? await decrypt(this.#keys, await readOwned(source, first, last - first), first)
          : decryptSectors(this.#keys, await source.read(first, last - first), first);
        out.set(plain.subarray(pos - first, pos - first + take), at + done);
      }
      if (take <= 0) break;
      done += take;
    }
  }

  /** Vista keeps sector 0 in plaintext with the FVE signature: show it as NTFS again (§3.9). */
  #patchVistaBoot(out: Uint8Array, offset: number): void {
    const sector = new Uint8Array(512);
    const take = Math.min(512 - offset, out.length);
    sector.set(out.subarray(0, take), offset);
    sector.set(new TextEncoder().encode('NTFS    '), 3);
    new DataView(sector.buffer).setBigUint64(56, BigInt(this.#volume.block.volumeHeaderOffset), true);
    out.set(sector.subarray(offset, offset + take), 0);
  }
}
