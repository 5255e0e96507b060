/** `bdevault admin migrate-store`: copy an embedded SQLite installation to PostgreSQL, then verify it. */
import type { Command } from 'commander';
import { loadServer } from '../lib/server.js';
import { CliError } from '../run-cli.js';

export function registerMigrateStoreCommand(admin: Command): void {
  admin
    .command('migrate-store')
    .description(
      'Copy an installation from SQLite to PostgreSQL (ciphertexts as they are), then verify row counts and the audit chain. Stop the servers first.',
    )
    .requiredOption('--from <sqlite path>', 'the SQLite database file (e.g. ./data/bdevault.sqlite)')
    .requiredOption('--to <postgres url>', 'postgres://… of an empty database (created beforehand)')
    .option('--force', 'replace whatever installation the target already holds')
    .option('--json', 'print JSON')
    .action(async (flags: { from: string; to: string; force?: boolean; json?: boolean }) => {
      const { isAppError, migrateStore } = await loadServer();
      try {
        const result = await migrateStore({
          fromSqlitePath: flags.from,
          toPostgresUrl: flags.to,
          force: flags.force === true,
        });
        if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else {
          for (const t of result.tables) process.stdout.write(`${t.name.padEnd(32)} ${t.rows}\n`);
          process.stdout.write(
            result.auditChain.ok
              ? `Audit chain verified on the target (${result.auditChain.rowsChecked} rows).\n`
              : `Audit chain check FAILED on the target: ${result.auditChain.firstProblem?.message}\n`,
          );
        }
        if (!result.auditChain.ok) throw new CliError('The copied audit chain does not verify', 1);
      } catch (err) {
        // Messages only: a connection URL may carry a password, and the server's errors never include it.
        if (isAppError(err)) throw new CliError(err.message, 1);
        throw err;
      }
    });
}
