// One test run for every package; workspace imports resolve to sources so tests need no build.
// Two projects: `default` (every package; the server on SQLite) and `server-postgres` (the server's
// suites again, each test vault on a fresh PostgreSQL database), so one repository suite covers both
// dialects (docs/DESIGN.md). Test names carry the project name in reports: `|server-postgres| …`.
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { defineConfig } from 'vitest/config';

const src = (pkg: string) => fileURLToPath(new URL(`./packages/${pkg}/src/index.ts`, import.meta.url));

const PG_ADMIN_URL = process.env.BDEVAULT_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Server suites not repeated on PostgreSQL, each with why: they inspect SQLite files, spawn the CLI,
 * or test something above the database (TLS, config parsing, Samba provisioning) whose SQL is already
 * covered by the suites that do run here.
 */
const notOnPostgres: Record<string, string> = {
  'packages/server/test/config.test.ts': 'parses configuration only; opens no database',
  'packages/server/test/statement-batcher.test.ts': 'the batcher alone, with no database',
  'packages/server/test/dialects.test.ts': 'already runs its flow on both dialects itself',
  'packages/server/test/postgres/two-servers.test.ts':
    'PostgreSQL-only already (spawns two `bdevault serve` on one database); runs in the default project',
  'packages/server/test/postgres/audit-link-at-commit.test.ts':
    'PostgreSQL-only already (the chain trigger exists only there); runs in the default project',
  'packages/server/test/postgres/prepared-statements.test.ts':
    'PostgreSQL-only already (named statements exist only there); runs in the default project',
  'packages/server/test/postgres/one-statement-disclosure.test.ts':
    'PostgreSQL-only already (statement counts, the one-statement write); runs in the default project',
  'packages/server/test/postgres/disclosure-group-commit.test.ts':
    'PostgreSQL-only already (group commit exists only there); runs in the default project',
  'packages/server/test/postgres/counter-group-commit.test.ts':
    'PostgreSQL-only already (counter group commit exists only there); runs in the default project',
  'packages/server/test/postgres/token-lookup-batching.test.ts':
    'PostgreSQL-only already (token lookups are batched only there); runs in the default project',
  'packages/server/test/postgres/read-batching.test.ts':
    'PostgreSQL-only already (disclosure and routing reads are batched only there); runs in the default project',
  'packages/server/test/postgres/disclosure-plans.test.ts':
    'PostgreSQL-only already (plans of the batched statements, which exist only there); runs in the default project',
  'packages/server/test/tls/tls.test.ts': 'HTTPS/HTTP2 transport and proxy trust; nothing dialect-specific',
  'packages/server/test/graph-compat/graph-client.acceptance.test.ts':
    'spawns the Graph client over TLS against a server it starts itself; graph-compat.test.ts covers the same queries on PostgreSQL',
  'packages/server/test/support/samba-install.test.ts': 'installs Samba; opens no vault',
};

async function postgresReachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Only the postgres project needs the server; a run filtered to other projects should not wait on it. */
const postgresWanted = !process.argv.some((a, i) => {
  const value = a.startsWith('--project=') ? a.slice(10) : process.argv[i - 1] === '--project' ? a : '';
  return value !== '' && value !== 'server-postgres';
});
const pgUp = postgresWanted && (await postgresReachable());

const serverTestDir = fileURLToPath(new URL('./packages/server/test', import.meta.url));
const serverSuites = readdirSync(serverTestDir, { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => `packages/server/test/${f}`)
  .filter((f) => !(f in notOnPostgres))
  .sort();
if (postgresWanted && !pgUp) {
  // Skipped, not failed: a developer machine without PostgreSQL still gets a green SQLite run.
  console.warn(
    `[server-postgres] PostgreSQL not reachable at ${PG_ADMIN_URL}: ${serverSuites.length} suites skipped on PostgreSQL (they still run on SQLite):`,
  );
  for (const file of serverSuites) console.warn(`[server-postgres] skipped: ${file}`);
}

export default defineConfig({
  resolve: {
    alias: {
      '@bdevault/bde': src('bde'),
      '@bdevault/server': src('server'),
    },
  },
  test: {
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // With PostgreSQL down the postgres project has no files; that is a skip, not a failure.
    passWithNoTests: !pgUp,
    projects: [
      {
        extends: true,
        test: {
          name: 'default',
          globalSetup: ['./vitest.global-setup.ts'],
          include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'server-postgres',
          // Names every test `|server-postgres| …` in reports, the JSON one included.
          runner: './packages/server/test/support/project-runner.ts',
          include: pgUp ? ['packages/server/test/**/*.test.ts'] : [],
          exclude: ['**/node_modules/**', ...Object.keys(notOnPostgres)],
          // Read by test/support/postgres.ts: every test vault gets its own PostgreSQL database.
          env: { BDEVAULT_TEST_DIALECT: 'postgres', BDEVAULT_TEST_PG_URL: PG_ADMIN_URL },
        },
      },
    ],
  },
});
