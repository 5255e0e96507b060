/** Runs the overdue-rotation sweep on an injected timer, like the directory-sync scheduler. */
import { systemSyncTimer, type SyncTimer } from '../directory-import/directory-sync.scheduler.js';
import type { RotationService } from './rotation.service.js';

export interface RotationSweepOptions {
  timer?: SyncTimer;
  /** How often overdue rotations are looked for (default 5 minutes; deadlines are in days). */
  tickMs?: number;
}

export interface RotationSweep {
  /** Sweeps once now; resolves with the ids marked overdue. */
  tick(): Promise<string[]>;
  /** Cancels the timer and waits for a running sweep. */
  stop(): Promise<void>;
}

export function startRotationSweep(
  service: Pick<RotationService, 'sweepOverdue'>,
  options: RotationSweepOptions = {},
): RotationSweep {
  const timer = options.timer ?? systemSyncTimer;
  let running: Promise<string[]> | undefined;
  const tick = () => {
    // One sweep at a time; a failed sweep (database away) is retried at the next tick.
    running ??= service
      .sweepOverdue()
      .catch(() => [] as string[])
      .finally(() => (running = undefined));
    return running;
  };
  const handle = timer.every(options.tickMs ?? 300_000, async () => {
    await tick();
  });
  return {
    tick,
    async stop() {
      handle.cancel();
      await running;
    },
  };
}
