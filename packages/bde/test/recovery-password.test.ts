import { describe, expect, it } from 'vitest';
import {
  checkRecoveryPassword,
  generateRecoveryPassword,
  InvalidRecoveryPasswordError,
  isValidGroup,
  normalizeRecoveryPassword,
  recoveryPasswordFromKey,
  recoveryPasswordToKey,
  suggestGroups,
} from '../src/recovery-password.js';
import { bitlkFixtures } from './fixtures.js';

const VECTOR = '235818-357951-253979-013365-241120-245575-342914-591910';

describe('checkRecoveryPassword', () => {
  it.each([
    ['dashes', VECTOR],
    ['spaces', VECTOR.replaceAll('-', ' ')],
    ['dots', VECTOR.replaceAll('-', '.')],
    ['nothing', VECTOR.replaceAll('-', '')],
    ['surrounding whitespace and a newline', `  ${VECTOR}\n`],
    ['mixed separators', '235818 357951-253979.013365  241120-245575 342914-591910'],
    ['en dashes', VECTOR.replaceAll('-', '–')],
  ])('accepts groups separated by %s', (_name, input) => {
    const check = checkRecoveryPassword(input);
    expect(check.problems).toEqual([]);
    expect(check.valid).toBe(true);
    expect(check.password).toBe(VECTOR);
  });

  it('reports every bad group by position and reason', () => {
    const check = checkRecoveryPassword('235818-35795-253978-0133x5-741120-245575-342914-591910');
    expect(check.valid).toBe(false);
    expect(check.password).toBeUndefined();
    expect(check.problems.map((p) => [p.group, p.reason])).toEqual([
      [2, 'length'],
      [3, 'checksum'],
      [4, 'not-a-number'],
      [5, 'out-of-range'],
    ]);
  });

  it('reports a wrong number of groups', () => {
    const check = checkRecoveryPassword('235818-357951-253979-013365-241120-245575-342914');
    expect(check.valid).toBe(false);
    expect(check.problems).toEqual([{ group: 0, reason: 'group-count', suggestions: [] }]);
    expect(checkRecoveryPassword('').problems[0]?.reason).toBe('group-count');
    expect(checkRecoveryPassword(`${VECTOR}-000000`).problems[0]?.reason).toBe('group-count');
  });

  it('suggests the group a missing or an extra digit came from', () => {
    const missing = checkRecoveryPassword(VECTOR.replace('357951', '35791'));
    expect(missing.problems[0]?.suggestions).toContain('357951');
    const extra = checkRecoveryPassword(VECTOR.replace('357951', '3579511'));
    expect(extra.problems[0]?.suggestions).toContain('357951');
  });

  it('suggests the original for a swap of adjacent digits', () => {
    const check = checkRecoveryPassword(VECTOR.replace('253979', '259379'));
    expect(check.problems).toHaveLength(1);
    expect(check.problems[0]).toMatchObject({ group: 3, reason: 'checksum' });
    expect(check.problems[0]?.suggestions).toContain('253979');
  });

  it('only suggests valid groups', () => {
    for (const s of suggestGroups('123456')) expect(isValidGroup(s)).toBe(true);
    expect(suggestGroups('123456').length).toBeGreaterThan(0);
  });
});

describe('normalizeRecoveryPassword', () => {
  it('throws a typed error that names positions and reasons but no digits', () => {
    const input = '111112-357951-253979-013365-241120-245575-342914-591910';
    let caught: unknown;
    try {
      normalizeRecoveryPassword(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidRecoveryPasswordError);
    const err = caught as InvalidRecoveryPasswordError;
    expect(err.code).toBe('ERR_BDE_INVALID_PASSWORD_FORMAT');
    expect(err.problems[0]).toMatchObject({ group: 1, reason: 'checksum' });
    expect(err.message).not.toMatch(/\d{3}/);
  });
});

describe('recovery password keys', () => {
  it('converts the bde-format.md vector to its 16-byte key and back', () => {
    const key = recoveryPasswordToKey(VECTOR);
    expect(Buffer.from(key).toString('hex')).toBe('be531d7f315abf04a0553557c67932d2');
    expect(recoveryPasswordFromKey(key)).toBe(VECTOR);
  });

  it('generates distinct valid passwords that round-trip', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const pw = generateRecoveryPassword();
      expect(checkRecoveryPassword(pw).valid).toBe(true);
      expect(recoveryPasswordFromKey(recoveryPasswordToKey(pw))).toBe(pw);
      seen.add(pw);
    }
    expect(seen.size).toBe(200);
  });

  it('refuses a key of the wrong size', () => {
    expect(() => recoveryPasswordFromKey(new Uint8Array(15))).toThrow(/16 bytes/);
  });
});

const fx = bitlkFixtures();

describe.skipIf(!fx)('the recovery passwords of the real images (skipped without ../shared fixtures)', () => {
  const images = fx?.images ?? [];

  it('has the 16 images of images.conf', () => {
    expect(images.filter((i) => i.rp)).toHaveLength(16);
  });

  it.each(images.filter((i) => i.rp).map((i) => [i.name, i.rp!]))(
    '%s: validates, and every one-digit change is caught and undone',
    (_name, rp) => {
      expect(checkRecoveryPassword(rp).valid).toBe(true);
      const groups = rp.split('-');
      groups.forEach((group, g) => {
        for (let pos = 0; pos < 6; pos++) {
          for (let d = 0; d <= 9; d++) {
            const digit = String(d);
            if (group[pos] === digit) continue;
            const typo = group.slice(0, pos) + digit + group.slice(pos + 1);
            const mutated = [...groups];
            mutated[g] = typo;
            const check = checkRecoveryPassword(mutated.join('-'));
            expect(check.valid).toBe(false);
            expect(check.problems).toHaveLength(1);
            expect(check.problems[0]?.group).toBe(g + 1);
            expect(check.problems[0]?.suggestions).toContain(group);
          }
        }
      });
    },
  );
});
