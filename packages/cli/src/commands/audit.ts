/** `bdevault audit verify|export`: checks the audit hash chain and exports the log. */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { Option, type Command } from 'commander';
import type { AuditExportFormat } from '@bdevault/server';
import { CliError } from '../run-cli.js';
import { addVaultOptions, withVault, type VaultFlags } from './serve.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('The append-only, hash-chained audit log');

  addVaultOptions(
    audit
      .command('verify')
      .description('Verify the hash chain; exit 1 at the first edited, missing or reordered row')
      .option('--json', 'print JSON'),
  ).action(async (flags: VaultFlags & { json?: boolean }) => {
    const verdict = await withVault(flags, (vault) => vault.services.audit.verifyChain());
    if (flags.json) process.stdout.write(`${JSON.stringify(verdict)}\n`);
    else if (verdict.ok)
      process.stdout.write(`Audit chain intact: ${verdict.rowsChecked} row(s) verified.\n`);
    else
      process.stdout.write(
        `Audit chain BROKEN: ${verdict.firstProblem?.message} (${verdict.firstProblem?.problem}).\n`,
      );
    if (!verdict.ok) process.exitCode = 1;
  });

  addVaultOptions(
    audit
      .command('export')
      .description('Export the audit log as JSON lines or CSV')
      .addOption(new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'))
      .option('--output <file>', 'write to this file (default: standard output)')
      .option('--organization <id>', 'only this organization'),
  ).action(
    async (flags: VaultFlags & { format: AuditExportFormat; output?: string; organization?: string }) => {
      const out =
        flags.output === undefined
          ? process.stdout
          : createWriteStream(flags.output, { flags: 'wx', mode: 0o600 });
      if (flags.output !== undefined) {
        await Promise.race([
          once(out, 'open'),
          once(out, 'error').then(([err]) => {
            throw new CliError(`Cannot write ${flags.output}: ${(err as Error).message}`);
          }),
        ]);
      }
      const write = async (line: string) => {
        if (!out.write(`${line}\n`)) await once(out, 'drain');
      };
      const count = await withVault(flags, (vault) =>
        vault.services.audit.exportRows(flags.format, write, flags.organization),
      );
      if (flags.output !== undefined) {
        out.end();
        await once(out, 'finish');
        process.stderr.write(`Exported ${count} audit row(s) to ${flags.output}.\n`);
      }
    },
  );
}
