/**
 * PostgreSQL on CPUs of its own, for a benchmark on one machine: what a deployment with the
 * database on its own host looks like, as near as one machine gets. The postmaster and every
 * process it has started are pinned with `taskset` (connections opened later are forked from the
 * postmaster and inherit it); `restore` puts back the affinity they had. Linux only; needs the
 * right to change PostgreSQL's processes (root, or the postgres user).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface PinnedPostgres {
  /** The CPUs PostgreSQL runs on, and the rest, for everything else (`taskset -c` lists). */
  postgresCpus: string;
  otherCpus: string;
  restore(): void;
}

function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}

function setAffinity(pids: number[], cpus: string): void {
  for (const pid of pids) {
    try {
      execFileSync('taskset', ['-pc', cpus, String(pid)], { stdio: 'ignore' });
    } catch {
      // A backend that exited meanwhile.
    }
  }
}

/** `dataDirectory` from `SHOW data_directory`; `cpuCount` from os.cpus(). PostgreSQL gets CPU 0. */
export function pinPostgres(dataDirectory: string, cpuCount: number): PinnedPostgres {
  if (cpuCount < 2) throw new Error('--pin-postgres needs at least 2 CPUs');
  const postmaster = Number(readFileSync(join(dataDirectory, 'postmaster.pid'), 'utf8').split('\n')[0]);
  if (!Number.isInteger(postmaster) || postmaster <= 0)
    throw new Error('no postmaster pid in postmaster.pid');
  const before = /list: (\S+)/.exec(
    execFileSync('taskset', ['-pc', String(postmaster)], { encoding: 'utf8' }),
  )?.[1];
  if (!before) throw new Error('could not read the postmaster CPU affinity');
  const all = () => [postmaster, ...childrenOf(postmaster)];
  const postgresCpus = '0';
  const otherCpus = cpuCount === 2 ? '1' : `1-${cpuCount - 1}`;
  setAffinity(all(), postgresCpus);
  return {
    postgresCpus,
    otherCpus,
    restore: () => setAffinity(all(), before),
  };
}
