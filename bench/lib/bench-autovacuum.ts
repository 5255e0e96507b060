/**
 * Autovacuum on, as every deployment runs it, for the length of one benchmark.
 *
 * Why: the PostgreSQL of the machines this project is built on is configured for CI with
 * `autovacuum = off` (/etc/postgresql/15/main/conf.d/90-ci.conf); no deployment runs that way.
 * Without it nothing refreshes the planner's statistics or removes dead row versions while a
 * benchmark runs, and the generic plans of prepared statements, made while a table such as
 * `rotation_requests` was still empty, are never made again: a disclosure's cost then climbs round
 * after round (bench/RESULTS.md, 2026-12-05). A benchmark also compresses minutes of a server's
 * life into seconds, so the nap between autovacuum runs is shortened to match (5 s by default
 * instead of 60 s); everything else is PostgreSQL's default.
 *
 * Both settings are reloadable: this uses ALTER SYSTEM and `pg_reload_conf()`, no restart, and
 * `restore` puts back what postgresql.auto.conf held for them before (normally nothing). Needs a
 * superuser admin URL.
 */
import { withClient as withAdmin } from './with-client.js';

export interface BenchAutovacuum {
  /** For the report: what the run had, e.g. "autovacuum on, naptime 5 s (set for this run)". */
  description: string;
  restore(): Promise<void>;
}

const SETTINGS = ['autovacuum', 'autovacuum_naptime'] as const;

interface Previous {
  name: (typeof SETTINGS)[number];
  /** The ALTER SYSTEM value before this run, or undefined when there was none. */
  altered: string | undefined;
}

/** Reloads the configuration and waits until a new session sees `autovacuum` as expected. */
async function reloadUntil(adminUrl: string, autovacuum: string): Promise<void> {
  await withAdmin(adminUrl, (c) => c.query('select pg_reload_conf()'));
  for (let attempt = 0; attempt < 50; attempt++) {
    const seen = await withAdmin(
      adminUrl,
      async (c) => (await c.query('show autovacuum')).rows[0].autovacuum,
    );
    if (seen === autovacuum) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`PostgreSQL did not reload autovacuum = ${autovacuum}`);
}

/** `naptimeSeconds` undefined: leave the server's settings alone and only report them. */
export async function benchAutovacuum(
  adminUrl: string,
  naptimeSeconds: number | undefined,
): Promise<BenchAutovacuum> {
  const current = await withAdmin(adminUrl, async (c) => {
    const { rows } = await c.query<{
      name: string;
      setting: string;
      unit: string | null;
      sourcefile: string | null;
    }>(`select name, setting, unit, sourcefile from pg_settings where name = any($1)`, [SETTINGS]);
    return new Map(rows.map((row) => [row.name, row]));
  });
  const shown = (name: string) => {
    const row = current.get(name);
    return row ? `${row.setting}${row.unit ?? ''}` : '?';
  };
  if (naptimeSeconds === undefined) {
    return {
      description: `autovacuum ${shown('autovacuum')}, naptime ${shown('autovacuum_naptime')} (the server's own settings)`,
      restore: async () => undefined,
    };
  }
  const previous: Previous[] = SETTINGS.map((name) => {
    const row = current.get(name);
    const fromAlterSystem = row?.sourcefile?.endsWith('postgresql.auto.conf') ?? false;
    return { name, altered: fromAlterSystem ? `${row!.setting}${row!.unit ?? ''}` : undefined };
  });
  await withAdmin(adminUrl, async (c) => {
    await c.query(`alter system set autovacuum = on`);
    await c.query(`alter system set autovacuum_naptime = '${naptimeSeconds}s'`);
  });
  await reloadUntil(adminUrl, 'on');
  return {
    description: `autovacuum on, naptime ${naptimeSeconds} s (set for this run; the server had autovacuum ${shown('autovacuum')}, naptime ${shown('autovacuum_naptime')})`,
    restore: async () => {
      await withAdmin(adminUrl, async (c) => {
        for (const { name, altered } of previous) {
          await c.query(
            altered === undefined ? `alter system reset ${name}` : `alter system set ${name} = '${altered}'`,
          );
        }
      });
      await reloadUntil(adminUrl, current.get('autovacuum')?.setting ?? 'on');
    },
  };
}
