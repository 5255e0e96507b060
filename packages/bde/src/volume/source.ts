/** Random-access byte sources for volumes: a file or block device, or memory (tests, packages). */
import { open, type FileHandle } from 'node:fs/promises';
import { BdeError } from '../errors.js';

/**
 * What the volume code reads from. `read` returns exactly `length` bytes or throws
 * ERR_BDE_TRUNCATED when the range passes `size`.
 */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

function checkRange(source: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'Invalid read range');
  }
  if (offset + length > source.size) {
    throw new BdeError(
      'ERR_BDE_TRUNCATED',
      `Read past the end of the volume (offset ${offset}, length ${length})`,
    );
  }
}

/**
 * A source over bytes in memory (the buffer is used, not copied).
 *
 * @example
 * const volume = await openVolume(memorySource(imageBytes));
 */
export function memorySource(bytes: Uint8Array): ByteSource {
  const source: ByteSource = {
    size: bytes.length,
    async read(offset, length) {
      checkRange(source, offset, length);
      return bytes.slice(offset, offset + length);
    },
  };
  return source;
}

/** A file or block-device source; `close()` closes the handle. */
export interface FileSource extends ByteSource {
  readonly handle: FileHandle;
  close(): Promise<void>;
}

async function readAt(handle: FileHandle, offset: number, length: number): Promise<number> {
  const probe = new Uint8Array(length);
  const { bytesRead } = await handle.read(probe, 0, length, offset);
  return bytesRead;
}

/**
 * The size of a block device, whose fstat size is 0: the largest readable offset found by a
 * doubling then binary search of one-byte reads (portable; no ioctl from Node).
 */
async function probeSize(handle: FileHandle): Promise<number> {
  if ((await readAt(handle, 0, 1)) === 0) return 0;
  let low = 0; // readable
  let high = 512;
  while ((await readAt(handle, high, 1)) === 1) {
    low = high;
    high *= 2;
    if (high > Number.MAX_SAFE_INTEGER / 2) break;
  }
  while (high - low > 1) {
    const mid = low + Math.floor((high - low) / 2);
    if ((await readAt(handle, mid, 1)) === 1) low = mid;
    else high = mid;
  }
  return low + 1;
}

/**
 * Opens a file or block device read-only. Memory stays constant: data is read on demand.
 *
 * @example
 * const source = await openFileSource('/dev/sdb1');
 * try { const volume = await openVolume(source); } finally { await source.close(); }
 */
export async function openFileSource(path: string): Promise<FileSource> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    throw new BdeError('ERR_BDE_IO', `Cannot open ${path}`, { cause });
  }
  try {
    const stat = await handle.stat();
    const size = stat.isFile() ? stat.size : stat.size > 0 ? stat.size : await probeSize(handle);
    return fileSourceFromHandle(handle, size);
  } catch (cause) {
    await handle.close();
    if (cause instanceof BdeError) throw cause;
    throw new BdeError('ERR_BDE_IO', `Cannot read ${path}`, { cause });
  }
}

/** A source over an already opened handle with a known size. */
export function fileSourceFromHandle(handle: FileHandle, size: number): FileSource {
  const source: FileSource = {
    handle,
    size,
    async read(offset, length) {
      checkRange(source, offset, length);
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
    },
    close: () => handle.close(),
  };
  return source;
}

/** A patch over a source: `bytes` replace the source's content at `offset`. */
export interface SourcePatch {
  offset: number;
  bytes: Uint8Array;
}

/**
 * A source whose reads see `patches` over `base` (used to read a volume through a metadata
 * package when its on-disk metadata is destroyed). The base is never written.
 */
export function overlaySource(base: ByteSource, patches: readonly SourcePatch[]): ByteSource {
  const sorted = [...patches].sort((a, b) => a.offset - b.offset);
  const source: ByteSource = {
    size: base.size,
    async read(offset, length) {
      checkRange(source, offset, length);
      const out = await base.read(offset, length);
      const end = offset + length;
      for (const p of sorted) {
        const pEnd = p.offset + p.bytes.length;
        if (pEnd <= offset || p.offset >= end) continue;
        const from = Math.max(offset, p.offset);
        const to = Math.min(end, pEnd);
        out.set(p.bytes.subarray(from - p.offset, to - p.offset), from - offset);
      }
      return out;
    },
  };
  if (base.close) source.close = () => base.close!();
  return source;
}
