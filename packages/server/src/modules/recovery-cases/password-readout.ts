/**
 * Reading a recovery password to a person over the phone and checking what they typed back: the
 * eight groups, each spelled out digit by digit, and a per-group verdict that never says which
 * digits would have been right.
 */
import { isValidGroup, RECOVERY_PASSWORD_GROUPS } from '@bdevault/bde';
import { timingSafeEqual } from 'node:crypto';

const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

export interface PasswordReadout {
  groups: string[];
  /** One entry per group: "two three five eight one eight". */
  readAloud: string[];
}

export function readoutOf(password: string): PasswordReadout {
  const groups = password.split('-');
  return {
    groups,
    readAloud: groups.map((g) => [...g].map((d) => DIGIT_WORDS[Number(d)]).join(' ')),
  };
}

/**
 * `ok`: the group is right. `checksum`: not a valid group at all (a typo the checksum catches: not 6
 * digits, not divisible by 11, out of range). `mismatch`: a valid group, but not this password's.
 * `missing`: the person typed fewer than eight groups.
 */
export type GroupVerdict = 'ok' | 'checksum' | 'mismatch' | 'missing';

export interface ReadBackResult {
  ok: boolean;
  groups: { group: number; verdict: GroupVerdict }[];
  /** More than eight groups were typed. */
  extraGroups: boolean;
}

/** Splits on anything that is not a digit; one long run of digits is cut into 6-digit groups. */
function splitTyped(typed: string): string[] {
  const parts = typed.split(/[^0-9]+/).filter((p) => p !== '');
  if (parts.length === 1 && parts[0]!.length > 6) return parts[0]!.match(/\d{1,6}/g) ?? [];
  return parts;
}

function sameGroup(a: string, b: string): boolean {
  const x = Buffer.from(a.padEnd(8, ' '));
  const y = Buffer.from(b.padEnd(8, ' '));
  return x.length === y.length && timingSafeEqual(x, y);
}

export function checkReadBack(typed: string, password: string): ReadBackResult {
  const typedGroups = splitTyped(typed);
  const real = password.split('-');
  const groups = real.map((right, i) => {
    const given = typedGroups[i];
    let verdict: GroupVerdict;
    if (given === undefined) verdict = 'missing';
    else if (!isValidGroup(given)) verdict = 'checksum';
    else verdict = sameGroup(given, right) ? 'ok' : 'mismatch';
    return { group: i + 1, verdict };
  });
  const extraGroups = typedGroups.length > RECOVERY_PASSWORD_GROUPS;
  return { ok: !extraGroups && groups.every((g) => g.verdict === 'ok'), groups, extraGroups };
}
