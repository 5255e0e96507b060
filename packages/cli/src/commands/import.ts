/** `bdevault import ad|csv|json` and `bdevault export keys`: bulk key movement, acting on the vault directly. */
import { open, readFile, rm } from 'node:fs/promises';
import type { Command } from 'commander';
import type { ImportReport, RowReport } from '@bdevault/server';
import { loadServer } from '../lib/server.js';
import { readSecret } from '../lib/read-secret.js';
import { CliError } from '../run-cli.js';
import { operator, resolveOrganization } from '../lib/vault-context.js';
import { addVaultOptions, withVault, type VaultFlags } from './serve.js';

/** The bind password: a file, then BDEVAULT_AD_BIND_PASSWORD, then a prompt (never a flag value). */
async function bindPassword(file: string | undefined): Promise<string> {
  if (file !== undefined) {
    const text = await readFile(file, 'utf8').catch(() => {
      throw new CliError(`Cannot read the bind password file ${file}`, 2);
    });
    return text.replace(/\r?\n$/, '');
  }
  const fromEnv = process.env.BDEVAULT_AD_BIND_PASSWORD;
  if (fromEnv) return fromEnv;
  return readSecret('Bind password: ');
}

function countsText(report: ImportReport): string {
  const c = report.counts;
  const lines = [
    `${report.dryRun ? 'Dry run (nothing written): ' : ''}${c.records} record(s) from ${report.source}`,
    `  devices:  ${c.devices.created} created, ${c.devices.updated} updated, ${c.devices.unchanged} unchanged`,
    `  volumes:  ${c.volumes.created} created, ${c.volumes.updated} updated, ${c.volumes.unchanged} unchanged`,
    `  keys:     ${c.keys.created} created, ${c.keys.updated} updated, ${c.keys.unchanged} unchanged`,
    `  conflicts: ${c.keys.conflicts}`,
    `  invalid passwords: ${c.keys.invalid}`,
  ];
  if (c.keys.notReadable > 0) {
    lines.push(
      `  passwords not readable: ${c.keys.notReadable} (the bind account lacks Control Access on msFVE-RecoveryPassword; see docs/active-directory-import.md)`,
    );
  }
  for (const p of report.invalidPasswords) {
    lines.push(`  invalid: ${p.deviceName} ${p.keyId}${p.row ? ` (row ${p.row})` : ''}: ${p.reason}`);
  }
  for (const p of report.conflicts) {
    lines.push(
      `  conflict: ${p.deviceName} ${p.keyId}${p.row ? ` (row ${p.row})` : ''}: stored with a different password, not overwritten`,
    );
  }
  if (report.listsTruncated) lines.push('  (lists cut at 1000 entries; the counts are complete)');
  return `${lines.join('\n')}\n`;
}

function rowsText(rows: RowReport[]): string {
  return rows
    .map(
      (r) =>
        `row ${r.row}: ${r.outcome}${r.keyId ? ` ${r.keyId}` : ''}${r.deviceName ? ` (${r.deviceName})` : ''}${r.reason ? `: ${r.reason}` : ''}`,
    )
    .join('\n');
}

/** Exit code 3 when some records were not imported (invalid or conflicting), so scripts notice. */
function exitCodeFor(report: ImportReport): void {
  if (report.counts.keys.invalid > 0 || report.counts.keys.conflicts > 0) process.exitCode = 3;
}

export function registerImportCommands(program: Command): void {
  const importCommand = program
    .command('import')
    .description('Import recovery keys into the vault (Active Directory, CSV, JSON)');

  addVaultOptions(
    importCommand
      .command('ad')
      .description(
        'Read BitLocker recovery information from Active Directory and import it (bind password from --bind-password-file, BDEVAULT_AD_BIND_PASSWORD or a prompt)',
      )
      .requiredOption('--url <url>', 'ldaps://dc.example.com (or ldap://… for StartTLS)')
      .requiredOption('--bind-dn <dn>', 'service account: DN, UPN or DOMAIN\\user')
      .requiredOption('--base-dn <dn>', 'where to look for computers, e.g. OU=Workstations,DC=example,DC=com')
      .option('--ca-file <path>', 'PEM CA certificate(s) of the domain controller (default: system store)')
      .option('--bind-password-file <path>', 'read the bind password from this file')
      .option('--organization <id>', 'organization id (default: the only one)')
      .option('--dry-run', 'report what would change without writing anything')
      .option('--json', 'print the report as JSON'),
  ).action(
    async (
      flags: VaultFlags & {
        url: string;
        bindDn: string;
        baseDn: string;
        caFile?: string;
        bindPasswordFile?: string;
        organization?: string;
        dryRun?: boolean;
        json?: boolean;
      },
    ) => {
      if (!/^ldaps?:\/\//i.test(flags.url))
        throw new CliError('--url must start with ldaps:// or ldap://', 2);
      const tlsCa =
        flags.caFile === undefined
          ? undefined
          : await readFile(flags.caFile, 'utf8').catch(() => {
              throw new CliError(`Cannot read the CA file ${flags.caFile}`, 2);
            });
      const password = await bindPassword(flags.bindPasswordFile);
      if (!password) throw new CliError('A bind password is required', 2);
      const showProgress = process.stderr.isTTY === true && !flags.json;
      const report = await withVault(flags, async (vault) =>
        vault.services.directoryImport.importFromAd({
          organizationId: await resolveOrganization(vault, flags.organization),
          directory: {
            url: flags.url,
            ...(tlsCa === undefined ? {} : { tlsCa }),
            bindDn: flags.bindDn,
            bindPassword: password,
            baseDn: flags.baseDn,
          },
          dryRun: flags.dryRun === true,
          actor: operator(),
          trigger: 'cli',
          onProgress: showProgress
            ? (p) =>
                process.stderr.write(
                  `\rimported ${p.records} record(s): ${p.counts.keys.created} new key(s), ${p.counts.devices.created} new device(s)`,
                )
            : undefined,
        }),
      );
      if (showProgress) process.stderr.write('\n');
      if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
      else {
        const d = report.directory;
        if (d) {
          process.stdout.write(
            `Read ${d.computers} computer(s), ${d.recoveryObjects} recovery object(s); passwords readable: ${d.passwordsReadable}, not readable: ${d.passwordsNotReadable}\n`,
          );
        }
        process.stdout.write(countsText(report));
      }
      exitCodeFor(report);
    },
  );

  for (const format of ['csv', 'json'] as const) {
    addVaultOptions(
      importCommand
        .command(`${format} <file>`)
        .description(
          format === 'csv'
            ? 'Import a CSV file (header: deviceName,keyId,recoveryPassword,volumeGuid,volumeType,createdAt); valid rows are imported, invalid rows reported'
            : 'Import a JSON array of rows with the CSV column names as keys',
        )
        .option('--organization <id>', 'organization id (default: the only one)')
        .option('--dry-run', 'report what would change without writing anything')
        .option('--json', 'print the report as JSON'),
    ).action(
      async (
        file: string,
        flags: VaultFlags & { organization?: string; dryRun?: boolean; json?: boolean },
      ) => {
        const text = await readFile(file, 'utf8').catch(() => {
          throw new CliError(`Cannot read ${file}`, 2);
        });
        const { itemsFromRows, rowsFromCsv, rowsFromJson } = await loadServer();
        let parsed: { rows: ReturnType<typeof rowsFromJson>; ignoredColumns: string[] };
        if (format === 'csv') parsed = rowsFromCsv(text);
        else {
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch {
            throw new CliError(`${file} is not valid JSON`, 2);
          }
          parsed = { rows: rowsFromJson(value), ignoredColumns: [] };
        }
        const report = await withVault(flags, async (vault) => {
          const { items, rejected } = itemsFromRows(parsed.rows, new Date().toISOString());
          return vault.services.directoryImport.importItems({
            organizationId: await resolveOrganization(vault, flags.organization),
            source: format,
            items,
            rejected,
            dryRun: flags.dryRun === true,
            actor: operator(),
          });
        });
        if (flags.json)
          process.stdout.write(`${JSON.stringify({ ...report, ignoredColumns: parsed.ignoredColumns })}\n`);
        else {
          if (parsed.ignoredColumns.length > 0) {
            process.stdout.write(`Ignored column(s): ${parsed.ignoredColumns.join(', ')}\n`);
          }
          process.stdout.write(`${rowsText(report.rows)}\n${countsText(report)}`);
        }
        exitCodeFor(report);
      },
    );
  }

  const exportCommand = program.command('export').description('Export from the vault');
  addVaultOptions(
    exportCommand
      .command('keys')
      .description(
        'Write every recovery key of the organization, as CSV encrypted to an age recipient, for an offline break-glass copy',
      )
      .requiredOption('--recipient <age1…>', 'age X25519 public key (from `age-keygen`)')
      .requiredOption('--output <file>', 'where to write the encrypted file (must not exist)')
      .option('--organization <id>', 'organization id (default: the only one)'),
  ).action(async (flags: VaultFlags & { recipient: string; output: string; organization?: string }) => {
    const { parseAgeRecipient } = await loadServer();
    try {
      parseAgeRecipient(flags.recipient);
    } catch {
      throw new CliError('--recipient must be an age X25519 public key (age1…)', 2);
    }
    // Created first with `wx` (never overwrite: it may be the only other copy), so a bad path fails
    // before anything is exported and audited.
    const file = await open(flags.output, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
      throw new CliError(
        err.code === 'EEXIST'
          ? `${flags.output} exists; choose another --output`
          : `Cannot create ${flags.output}`,
      );
    });
    let result: { count: number };
    try {
      result = await withVault(flags, async (vault) => {
        const exported = await vault.services.keyExport.exportRecoveryKeys({
          organizationId: await resolveOrganization(vault, flags.organization),
          recipient: flags.recipient,
          actor: operator(),
        });
        await file.writeFile(exported.data);
        return exported;
      });
      await file.close();
    } catch (err) {
      await file.close().catch(() => undefined);
      await rm(flags.output, { force: true });
      throw err;
    }
    process.stdout.write(
      `Exported ${result.count} recovery key(s) to ${flags.output} (age-encrypted; decrypt with \`age -d -i IDENTITY\`)\n`,
    );
  });
}
