/** Starts due directory syncs on a timer; the timer is injected so tests (and embedders) drive time themselves. */
import type { DirectorySyncService } from './directory-sync.service.js';

/** A repeating timer: `every` calls `fn` each `ms` until cancelled. */
export interface SyncTimer {
  every(ms: number, fn: () => Promise<void>): { cancel(): void };
}

export const systemSyncTimer: SyncTimer = {
  every(ms, fn) {
    const handle = setInterval(() => void fn(), ms);
    // The scheduler must not keep a stopping process alive.
    handle.unref();
    return { cancel: () => clearInterval(handle) };
  },
};

export interface DirectorySyncSchedulerOptions {
  timer?: SyncTimer;
  /** How often due syncs are looked for (default one minute; intervals are in minutes). */
  tickMs?: number;
}

export interface DirectorySyncScheduler {
  /** Looks for due syncs once and starts them (runs continue in the background). */
  tick(): Promise<string[]>;
  /** Resolves when the runs this process started have ended. */
  idle(): Promise<void>;
  /** Cancels the timer and waits for running syncs to finish. */
  stop(): Promise<void>;
}

export function startDirectorySyncScheduler(
  service: DirectorySyncService,
  options: DirectorySyncSchedulerOptions = {},
): DirectorySyncScheduler {
  const timer = options.timer ?? systemSyncTimer;
  let ticking: Promise<string[]> | undefined;
  const tick = () => {
    // One look at a time: a slow database must not pile up overlapping ticks.
    ticking ??= service
      .startDue()
      .catch(() => [] as string[])
      .finally(() => (ticking = undefined));
    return ticking;
  };
  const handle = timer.every(options.tickMs ?? 60_000, async () => {
    await tick();
  });
  return {
    tick,
    idle: () => service.idle(),
    async stop() {
      handle.cancel();
      await ticking;
      await service.idle();
    },
  };
}
