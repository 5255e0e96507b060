import { describe, expect, it } from 'vitest';
import { checkRecoveryPassword } from '@bdevault/bde';
import { runBdevault } from './run-bdevault.js';

const VALID = '235818-357951-253979-013365-241120-245575-342914-591910';

describe('bdevault password', () => {
  it('check: exits 0 for a valid password', async () => {
    const r = await runBdevault(['password', 'check', VALID]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('The recovery password is valid.');
  });

  it('check: exits 1 and names the bad group with suggestions', async () => {
    const r = await runBdevault(['password', 'check', VALID.replace('253979', '253978')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/group 3: fails the checksum.*did you mean .*253979/);
    expect(r.stdout).toContain('group 1: ok');
  });

  it('check --json: per-group problems as data', async () => {
    const r = await runBdevault(['password', 'check', '--json', VALID.replace('357951', '35795')]);
    expect(r.code).toBe(1);
    const json = JSON.parse(r.stdout) as ReturnType<typeof checkRecoveryPassword>;
    expect(json.valid).toBe(false);
    expect(json.problems).toEqual([
      { group: 2, reason: 'length', suggestions: expect.arrayContaining(['357951']) },
    ]);
  });

  it('check: reads the password from standard input when none is given', async () => {
    const r = await runBdevault(['password', 'check', '--json'], {
      input: `${VALID.replaceAll('-', ' ')}\n`,
    });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).password).toBe(VALID);
  });

  it('generate: prints valid, distinct passwords', async () => {
    const r = await runBdevault(['password', 'generate', '--count', '5', '--json']);
    expect(r.code).toBe(0);
    const list = JSON.parse(r.stdout) as string[];
    expect(list).toHaveLength(5);
    expect(new Set(list).size).toBe(5);
    for (const pw of list) expect(checkRecoveryPassword(pw).valid).toBe(true);
  });

  it('generate: refuses a bad count with a clear message', async () => {
    const r = await runBdevault(['password', 'generate', '--count', 'many']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('--count must be a whole number');
  });
});
