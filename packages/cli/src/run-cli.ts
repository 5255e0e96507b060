/** Runs a commander program and turns errors into one clear line and a non-zero exit. */
import type { Command } from 'commander';

/** An error whose message is meant for the person at the terminal, with the exit code to use. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

export async function runCli(program: Command, argv: string[]): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`bdevault: ${typeof code === 'string' ? `${code}: ` : ''}${message}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : 2;
  }
}
