/** `bdevault admin …`: enrollment tokens, API tokens and KEK rotation, acting on the database directly. */
import type { Command } from 'commander';
import { loadServer } from '../lib/server.js';
import { CliError } from '../run-cli.js';
import { operator, resolveOrganization } from '../lib/vault-context.js';
import { registerMigrateStoreCommand } from './migrate-store.js';
import { addVaultOptions, withVault, type VaultFlags } from './serve.js';

function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new CliError(`${name} must be a positive whole number`, 2);
    return n;
  };
}

export function registerAdminCommands(program: Command): void {
  const admin = program
    .command('admin')
    .description('Administer the vault directly (run on the server machine)');
  registerMigrateStoreCommand(admin);

  const enrollment = admin.command('enrollment-token').description('Tokens devices register with');
  addVaultOptions(
    enrollment
      .command('create')
      .description('Create an enrollment token (printed once)')
      .option('--organization <id>', 'organization id (default: the only one)')
      .option('--group <name>', 'put enrolled devices in this device group (created if absent)')
      .option('--description <text>', 'what the token is for', 'enrollment token')
      .option('--expires-in-hours <n>', 'lifetime in hours', positiveInt('--expires-in-hours'), 24)
      .option('--max-uses <n>', 'how many devices may register with it', positiveInt('--max-uses'), 1)
      .option('--json', 'print JSON'),
  ).action(
    async (
      flags: VaultFlags & {
        organization?: string;
        group?: string;
        description: string;
        expiresInHours: number;
        maxUses: number;
        json?: boolean;
      },
    ) => {
      const created = await withVault(flags, async (vault) =>
        vault.services.escrow.createEnrollmentToken({
          organizationId: await resolveOrganization(vault, flags.organization),
          description: flags.description,
          deviceGroupName: flags.group,
          expiresInHours: flags.expiresInHours,
          maxUses: flags.maxUses,
          actor: operator(),
        }),
      );
      if (flags.json) process.stdout.write(`${JSON.stringify(created)}\n`);
      else {
        process.stdout.write(
          `Enrollment token (shown once):\n  ${created.enrollmentToken}\nid ${created.id}, expires ${created.expiresAt}, ${created.maxUses} use(s)\n`,
        );
      }
    },
  );

  const apiToken = admin.command('api-token').description('Bearer tokens for scripts and integrations');
  addVaultOptions(
    apiToken
      .command('create')
      .description('Create an API token (printed once)')
      .requiredOption('--name <name>', 'what the token is for')
      .requiredOption(
        '--permissions <list>',
        'comma-separated permissions, e.g. keys:read-metadata,devices:read or *',
      )
      .option('--organization <id>', 'organization id (default: the only one)')
      .option(
        '--expires-in-days <n>',
        'lifetime in days (default: no expiry)',
        positiveInt('--expires-in-days'),
      )
      .option('--json', 'print JSON'),
  ).action(
    async (
      flags: VaultFlags & {
        name: string;
        permissions: string;
        organization?: string;
        expiresInDays?: number;
        json?: boolean;
      },
    ) => {
      const permissions = flags.permissions
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p.length > 0);
      const { isPermissionGrant } = await loadServer();
      const unknown = permissions.filter((p) => !isPermissionGrant(p));
      if (permissions.length === 0 || unknown.length > 0) {
        throw new CliError(`Unknown permission(s): ${unknown.join(', ') || '(none given)'}`, 2);
      }
      const created = await withVault(flags, async (vault) =>
        vault.services.apiTokens.createApiToken({
          organizationId: await resolveOrganization(vault, flags.organization),
          name: flags.name,
          permissions,
          expiresInDays: flags.expiresInDays,
          creatorPermissions: undefined,
          actor: operator(),
        }),
      );
      if (flags.json) process.stdout.write(`${JSON.stringify(created)}\n`);
      else {
        process.stdout.write(
          `API token (shown once):\n  ${created.token}\nid ${created.id}, permissions ${created.permissions.join(',')}, expires ${created.expiresAt ?? 'never'}\n`,
        );
      }
    },
  );

  addVaultOptions(
    admin
      .command('rotate-kek')
      .description('Make a new key-encryption key and re-wrap every data key under it (resumable)')
      .option('--json', 'print JSON'),
  ).action(async (flags: VaultFlags & { json?: boolean }) => {
    const result = await withVault(flags, (vault) => vault.services.rotateKek());
    if (flags.json) process.stdout.write(`${JSON.stringify(result)}\n`);
    else {
      process.stdout.write(
        `Re-wrapped ${result.rewrapped} data key(s) from ${result.previousKekId} to ${result.kekId}.\n` +
          'The previous KEK is kept beside the KEK file as a backup; restart running servers to wrap new keys with the new KEK.\n',
      );
    }
  });
}
