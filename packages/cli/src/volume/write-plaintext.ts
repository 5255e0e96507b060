/** Streams an unlocked volume's plaintext into a file: sparse (all-zero chunks are skipped), hashed on request. */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { decryptVolumeStream, type UnlockedVolume } from '@bdevault/bde';
import type { Progress } from './progress.js';
import type { WriteControl } from './safe-write.js';

const CHUNK = 4 * 1024 * 1024;

export interface PlaintextSummary {
  bytes: number;
  /** Bytes actually written; the rest were all-zero chunks left as holes. */
  bytesWritten: number;
  seconds: number;
  sha256?: string;
}

/**
 * Refuses, before any file is created, what the library cannot decrypt (EOW volumes, some
 * conversion states): the first plaintext read runs that check.
 */
export async function checkDecryptable(unlocked: UnlockedVolume): Promise<void> {
  await unlocked.readPlaintext(0, Math.min(unlocked.info.sectorSize, unlocked.info.volumeSize));
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Writes the whole plaintext at its own offsets. Volumes are mostly empty, so all-zero chunks are
 * skipped by position and the file is truncated to size at the end: the holes read as zeros and
 * take no space where the file system supports it.
 */
export async function writePlaintext(
  unlocked: UnlockedVolume,
  handle: FileHandle,
  control: WriteControl,
  options: { sha256: boolean; progress: Progress },
): Promise<PlaintextSummary> {
  const started = process.hrtime.bigint();
  const total = unlocked.info.volumeSize;
  const hash = options.sha256 ? createHash('sha256') : null;
  const zeros = Buffer.alloc(CHUNK);
  let at = 0;
  let written = 0;
  // The library picks worker threads for the modes and sizes where they pay (XTS, Elephant).
  for await (const chunk of decryptVolumeStream(unlocked, { chunkSize: CHUNK })) {
    const view = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    hash?.update(view);
    if (!view.equals(zeros.subarray(0, view.length))) {
      await writeAll(handle, view, at);
      written += view.length;
    }
    at += view.length;
    options.progress.update(at);
    control.checkInterrupted();
  }
  await handle.truncate(total);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    bytes: at,
    bytesWritten: written,
    seconds: Math.round(seconds * 1000) / 1000,
    ...(hash ? { sha256: hash.digest('hex') } : {}),
  };
}
