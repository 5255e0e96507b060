/** The decryption progress bar on stderr (bytes, rate, time left); a no-op when not on a terminal. */
import { createRequire } from 'node:module';
import type CliProgress from 'cli-progress';

// Loaded only when a bar is shown: cli-progress and its dependencies are ~15 CommonJS modules that
// every other command would load at start-up for nothing.
const require = createRequire(import.meta.url);

export interface Progress {
  update(bytesDone: number): void;
  stop(): void;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 104857600 → "100.0 MiB". */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

const NONE: Progress = { update() {}, stop() {} };

/**
 * A bar only when stderr is a terminal and JSON was not asked for: in pipes and logs a bar is
 * noise (and its carriage returns garble files).
 */
export function createProgress(label: string, total: number, enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return NONE;
  const cliProgress = require('cli-progress') as typeof CliProgress;
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${label} [{bar}] {percentage}% | {doneText} / {totalText} | {rateText} | {eta_formatted} left`,
    barsize: 30,
    hideCursor: true,
    etaBuffer: 50,
    fps: 5,
  });
  const started = Date.now();
  const payload = (done: number) => {
    const seconds = (Date.now() - started) / 1000;
    return {
      doneText: formatBytes(done),
      totalText: formatBytes(total),
      rateText: seconds > 0 ? `${formatBytes(done / seconds)}/s` : '-',
    };
  };
  bar.start(total, 0, payload(0));
  return {
    update: (done) => bar.update(done, payload(done)),
    stop: () => bar.stop(),
  };
}
