/** Who a CLI command acts as, and on which organization, when it works on the vault directly. */
import { userInfo } from 'node:os';
import type { Vault } from '@bdevault/server';
import { CliError } from '../run-cli.js';

/** The audit actor of a CLI command: the operating-system user running it. */
export function operator(): { type: 'cli'; id: string | null } {
  try {
    return { type: 'cli', id: userInfo().username };
  } catch {
    return { type: 'cli', id: null };
  }
}

/** The organization to act on: the one given, or the only one there is. */
export async function resolveOrganization(vault: Vault, requested: string | undefined): Promise<string> {
  const organizations = await vault.services.organizations.list();
  if (requested !== undefined) {
    if (!organizations.some((o) => o.id === requested)) throw new CliError(`No organization ${requested}`);
    return requested;
  }
  if (organizations.length === 0)
    throw new CliError('No organization yet: start the server once with `bdevault serve`');
  if (organizations.length > 1) {
    throw new CliError(
      `Several organizations exist; choose one with --organization (${organizations.map((o) => o.id).join(', ')})`,
    );
  }
  return organizations[0]!.id;
}
