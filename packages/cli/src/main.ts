#!/usr/bin/env node
/**
 * The bdevault command: each command group registers itself from its own file. Only the group
 * named first on the command line is loaded, so `bdevault volume unlock …` does not pay for the
 * server commands' modules at start-up; anything else (`--help`, `help`, `--version`, no command,
 * a typo) loads every group, so help and "did you mean" list them all.
 */
import { Command } from 'commander';
import { runCli } from './run-cli.js';
import { normalizeSecretOptions } from './volume/credential-argv.js';

type Register = (program: Command) => void;

/** Top-level command → its group's register function, in help order. */
const GROUPS: [names: string[], load: () => Promise<Register>][] = [
  [['serve'], async () => (await import('./commands/serve.js')).registerServeCommand],
  [['password'], async () => (await import('./commands/password.js')).registerPasswordCommands],
  [['volume'], async () => (await import('./commands/volume.js')).registerVolumeCommands],
  [['admin'], async () => (await import('./commands/admin.js')).registerAdminCommands],
  [['audit'], async () => (await import('./commands/audit.js')).registerAuditCommands],
  [['import', 'export'], async () => (await import('./commands/import.js')).registerImportCommands],
];

const program = new Command()
  .name('bdevault')
  .description('BitLocker recovery platform: key vault server, offline BitLocker toolkit')
  .version('0.1.0');

const argv = normalizeSecretOptions(process.argv);
const named = GROUPS.filter(([names]) => names.includes(argv[2] ?? ''));
for (const [, load] of named.length > 0 ? named : GROUPS) (await load())(program);

await runCli(program, argv);
