/** The database side of a benchmark phase's cost, read from /proc (Linux, local server only). */
import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU seconds of every `postgres` process on this machine (server, backends, WAL writer), from
 * /proc; undefined when there is none or /proc is absent. With a local server this is the database
 * side of a phase's cost. Backends that have exited count too: the postmaster reaps them, and the
 * kernel adds their time to its children's time (cutime, cstime).
 */
export function postgresCpuSeconds(): number | undefined {
  let total = 0;
  let found = false;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  for (const pid of entries) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (!stat.includes('(postgres)')) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime, stime, cutime, cstime in clock ticks (USER_HZ 100)
      total += (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100;
      found = true;
    } catch {
      // the process ended between readdir and read
    }
  }
  return found ? total : undefined;
}
