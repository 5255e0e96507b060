/** `bdevault password check|generate`: recovery password validation and generation. */
import type { Command } from 'commander';
import { checkRecoveryPassword, generateRecoveryPassword, type RecoveryPasswordCheck } from '@bdevault/bde';
import { readSecret } from '../lib/read-secret.js';
import { CliError } from '../run-cli.js';

const REASONS: Record<string, string> = {
  length: 'must have exactly 6 digits',
  'not-a-number': 'must contain only digits',
  checksum: 'fails the checksum (not divisible by 11): a digit is wrong',
  'out-of-range': 'is too large (must be below 720896)',
  'group-count': 'a recovery password has 8 groups of 6 digits',
};

/** Human-readable report: one line per group, with "did you mean" for the bad ones. */
export function formatCheck(check: RecoveryPasswordCheck): string {
  const lines: string[] = [];
  const byGroup = new Map(check.problems.map((p) => [p.group, p]));
  const countProblem = byGroup.get(0);
  if (countProblem)
    lines.push(`Wrong number of groups: found ${check.groups.length}; ${REASONS['group-count']}.`);
  check.groups.forEach((group, i) => {
    const problem = byGroup.get(i + 1);
    if (!problem) {
      lines.push(`  group ${i + 1}: ok`);
      return;
    }
    let line = `  group ${i + 1}: ${REASONS[problem.reason] ?? problem.reason}`;
    if (problem.suggestions.length > 0) line += `; did you mean ${problem.suggestions.join(', ')}?`;
    lines.push(line);
  });
  lines.push(check.valid ? 'The recovery password is valid.' : 'The recovery password is not valid.');
  return lines.join('\n');
}

export function registerPasswordCommands(program: Command): void {
  const password = program.command('password').description('Check and generate BitLocker recovery passwords');

  password
    .command('check')
    .description(
      'Check a recovery password group by group and suggest corrections (exit 0 valid, 1 invalid). ' +
        'Without an argument, or with "-", it is read from standard input so it stays out of shell history.',
    )
    .argument('[password]', 'the 48-digit password; groups separated by dashes, spaces, dots or nothing')
    .option('--json', 'print the result as JSON')
    .action(async (input: string | undefined, opts: { json?: boolean }) => {
      const value = input === undefined || input === '-' ? await readSecret('Recovery password: ') : input;
      const check = checkRecoveryPassword(value);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(check, null, 2)}\n`);
      } else {
        process.stdout.write(`${formatCheck(check)}\n`);
      }
      if (!check.valid) process.exitCode = 1;
    });

  password
    .command('generate')
    .description('Generate random valid recovery passwords with the system CSPRNG')
    .option('-n, --count <n>', 'how many to generate', '1')
    .option('--json', 'print a JSON array')
    .action((opts: { count: string; json?: boolean }) => {
      const count = Number(opts.count);
      if (!Number.isInteger(count) || count < 1 || count > 10_000) {
        throw new CliError('--count must be a whole number from 1 to 10000');
      }
      const passwords = Array.from({ length: count }, () => generateRecoveryPassword());
      process.stdout.write(opts.json ? `${JSON.stringify(passwords)}\n` : `${passwords.join('\n')}\n`);
    });
}
