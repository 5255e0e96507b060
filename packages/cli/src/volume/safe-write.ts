/**
 * Writing an output file so that nothing that looks complete exists until it is: a temporary file
 * beside the output, synced and renamed at the end, removed on error or on SIGINT / SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { link, lstat, open, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CliError } from '../run-cli.js';

export interface SafeWriteOptions {
  /** Replace an existing regular file. */
  force?: boolean;
  /** Permissions of the new file (before umask); default 0600: outputs here are plaintext or keys. */
  mode?: number;
}

/** Lets a long writer stop between chunks once a signal asked it to. */
export interface WriteControl {
  /** Throws when SIGINT / SIGTERM arrived; call it between chunks. */
  checkInterrupted(): void;
}

async function existing(path: string) {
  try {
    return await lstat(path);
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * Refuses an existing output unless forced, and anything that is not a regular file even then
 * (renaming over a device node or a directory would never be what was meant). Call it before
 * the slow work so the refusal comes first.
 */
export async function checkOutput(path: string, force = false): Promise<void> {
  const stat = await existing(path);
  if (!stat) return;
  if (!stat.isFile()) throw new CliError(`${path} exists and is not a regular file; refusing to replace it`);
  if (!force) throw new CliError(`${path} already exists; add --force to overwrite it`);
}

const SIGNAL_EXIT: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Runs `write` against a fresh temporary file in the output's folder, then syncs and renames it
 * to `output`. Without `force`, the final step is a hard link, so an output created meanwhile is
 * still not overwritten.
 */
export async function writeSafely<T>(
  output: string,
  options: SafeWriteOptions,
  write: (handle: FileHandle, control: WriteControl) => Promise<T>,
): Promise<T> {
  await checkOutput(output, options.force);
  const temp = join(dirname(output), `.${basename(output)}.${randomBytes(6).toString('hex')}.partial`);
  let signal: string | null = null;
  const onSignal = (name: string) => {
    if (signal !== null) {
      // A second signal: the writer is stuck in one call; clean up and leave now.
      rmSync(temp, { force: true });
      process.exit(SIGNAL_EXIT[name] ?? 1);
    }
    signal = name;
  };
  const control: WriteControl = {
    checkInterrupted() {
      if (signal !== null)
        throw new CliError('Interrupted; the partial output was removed', SIGNAL_EXIT[signal]);
    },
  };
  let handle: FileHandle | undefined;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    try {
      handle = await open(temp, 'wx', options.mode ?? 0o600);
    } catch (err) {
      const reason = (err as { code?: string }).code ?? 'error';
      throw new CliError(`Cannot create a file in ${dirname(output)} (${reason})`);
    }
    const result = await write(handle, control);
    control.checkInterrupted();
    await handle.sync();
    await handle.close();
    handle = undefined;
    control.checkInterrupted();
    await publish(temp, output, options.force ?? false);
    return result;
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true });
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Moves the finished temporary file into place. */
async function publish(temp: string, output: string, force: boolean): Promise<void> {
  if (force) {
    await checkOutput(output, true);
    await rename(temp, output);
    return;
  }
  try {
    await link(temp, output);
    await unlink(temp);
    return;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'EEXIST') throw new CliError(`${output} already exists; add --force to overwrite it`);
    // Some file systems (FAT, some network shares) have no hard links: check, then rename.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw err;
  }
  await checkOutput(output, false);
  await rename(temp, output);
}
