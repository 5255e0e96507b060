// A cross-process lock file, for test resources that only one process can hold at a time (fixed ports).
import { open, readFile, unlink } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface FileLock {
  release(): Promise<void>;
  /** Synchronous release, for `process.on('exit')`. */
  releaseSync(): void;
}

/** True while a process with this PID exists. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM means the process exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the lock at `path`, waiting while another live process holds it. A lock left behind by a
 * process that died is taken over (its PID is written in the file).
 */
export async function acquireFileLock(
  path: string,
  { timeoutMs, what }: { timeoutMs: number; what: string },
): Promise<FileLock> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o644);
      await handle.writeFile(String(process.pid));
      await handle.close();
      let held = true;
      return {
        async release() {
          if (!held) return;
          held = false;
          await unlink(path).catch(() => undefined);
        },
        releaseSync() {
          if (!held) return;
          held = false;
          try {
            unlinkSync(path);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number((await readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isInteger(owner) && owner > 0 && !isProcessAlive(owner)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${what} (lock ${path} held by PID ${owner})`,
      );
    }
    await sleep(250);
  }
}
