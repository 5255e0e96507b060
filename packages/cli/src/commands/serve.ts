/** `bdevault serve`: runs the vault server; also the shared options of commands that open the vault. */
import { Option, type Command } from 'commander';
import type { Config, Vault } from '@bdevault/server';
import { loadServer } from '../lib/server.js';
import { CliError } from '../run-cli.js';

export interface VaultFlags {
  dataDir?: string;
  databaseUrl?: string;
}

/** Adds --data-dir and --database-url (flags win over BDEVAULT_DATA_DIR / DATABASE_URL). */
export function addVaultOptions(command: Command): Command {
  return command
    .option(
      '--data-dir <dir>',
      'data directory (KEK file, SQLite database) [env BDEVAULT_DATA_DIR, default ./data]',
    )
    .option(
      '--database-url <url>',
      'sqlite:<path> or postgres://… [env DATABASE_URL, default <data-dir>/bdevault.sqlite]',
    );
}

/** Flags of `serve` beyond the vault options; each has a BDEVAULT_* environment twin. */
export interface ServeFlags {
  host?: string;
  port?: string;
  logLevel?: string;
  tlsCert?: string;
  tlsKey?: string;
  trustProxy?: string;
}

export async function configFrom(flags: VaultFlags & ServeFlags): Promise<Config> {
  const { ConfigError, configInputFromEnv, loadConfig } = await loadServer();
  try {
    return loadConfig({ ...configInputFromEnv(process.env), ...definedOnly(flags) });
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError(err.message, 2);
    throw err;
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Opens the vault for an admin command; an empty database means the server never started. */
export async function withVault<T>(flags: VaultFlags, run: (vault: Vault) => Promise<T>): Promise<T> {
  const { openVault } = await loadServer();
  const vault = await openVault(await configFrom({ dataDir: flags.dataDir, databaseUrl: flags.databaseUrl }));
  try {
    return await run(vault);
  } finally {
    await vault.close();
  }
}

export function registerServeCommand(program: Command): void {
  const serve = program
    .command('serve')
    .description(
      'Run the vault server (first start creates the organization and prints the admin one-time password)',
    )
    .option('--host <host>', 'address to listen on [env BDEVAULT_HOST, default 127.0.0.1]')
    .option('--port <port>', 'port to listen on, 0 for any free port [env BDEVAULT_PORT, default 8080]')
    .option(
      '--tls-cert <file>',
      'PEM certificate chain: serve HTTPS, HTTP/2 and HTTP/1.1 [env BDEVAULT_TLS_CERT]',
    )
    .option('--tls-key <file>', 'PEM private key of --tls-cert [env BDEVAULT_TLS_KEY]')
    .option(
      '--trust-proxy <list>',
      'comma-separated proxy addresses/CIDRs whose X-Forwarded-For is believed [env BDEVAULT_TRUST_PROXY]',
    )
    .addOption(
      new Option('--log-level <level>', 'log level [env BDEVAULT_LOG_LEVEL, default info]').choices([
        'fatal',
        'error',
        'warn',
        'info',
        'debug',
        'trace',
        'silent',
      ]),
    );
  addVaultOptions(serve).action(async (flags: VaultFlags & ServeFlags) => {
    const config = await configFrom({
      host: flags.host,
      port: flags.port,
      logLevel: flags.logLevel,
      tlsCert: flags.tlsCert,
      tlsKey: flags.tlsKey,
      trustProxy: flags.trustProxy,
      dataDir: flags.dataDir,
      databaseUrl: flags.databaseUrl,
    });
    const { startServer } = await loadServer();
    const server = await startServer(config);
    if (server.firstAdmin) {
      // Printed once, to the console only: it is never written to the log.
      process.stdout.write(
        [
          '',
          'First start: created the organization and its administrator.',
          `  username:           ${server.firstAdmin.username}`,
          `  one-time password:  ${server.firstAdmin.oneTimePassword}`,
          'Sign in and change this password now; it is not shown again.',
          '',
        ].join('\n') + '\n',
      );
    }
    process.stdout.write(`bdevault listening on ${server.url}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void server.close().then(resolve, resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  });
}
