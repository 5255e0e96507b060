/** Recovery passwords: parse what people type, validate each group, suggest fixes, convert to keys. */
import { randomBytes } from 'node:crypto';
import { BdeError } from './errors.js';

/** Number of 6-digit groups in a recovery password. */
export const RECOVERY_PASSWORD_GROUPS = 8;
/** A group is 11 × a 16-bit value, so it must be below 11 × 65536. */
export const GROUP_LIMIT = 720896;

export type GroupProblemReason = 'length' | 'not-a-number' | 'checksum' | 'out-of-range' | 'group-count';

export interface GroupProblem {
  /** 1-based position of the group; 0 when the problem is the number of groups. */
  group: number;
  reason: GroupProblemReason;
  /** Valid groups one typo away (one changed, missing, extra or swapped digit), in numeric order. */
  suggestions: string[];
}

export interface RecoveryPasswordCheck {
  valid: boolean;
  /** The canonical form `xxxxxx-xxxxxx-…` when valid. */
  password?: string;
  /** The groups as typed (after splitting), for per-group display. */
  groups: string[];
  problems: GroupProblem[];
}

const SEPARATORS = /[\s.\-‐‑‒–—]+/u;

/** Splits input on dashes, spaces or dots; a run of digits alone is cut into 6-digit groups. */
function splitGroups(input: string): string[] {
  const trimmed = input.trim();
  if (trimmed === '') return [];
  const parts = trimmed.split(SEPARATORS).filter((p) => p !== '');
  if (parts.length === 1 && /^\d+$/.test(parts[0]!) && parts[0]!.length > 6) {
    return parts[0]!.match(/\d{1,6}/g) ?? [];
  }
  return parts;
}

/** True when a 6-digit string is a valid group: divisible by 11 and below 720896. */
export function isValidGroup(group: string): boolean {
  if (!/^\d{6}$/.test(group)) return false;
  const value = Number(group);
  return value % 11 === 0 && value < GROUP_LIMIT;
}

function groupProblem(group: string): GroupProblemReason | null {
  if (!/^\d+$/.test(group)) return 'not-a-number';
  if (group.length !== 6) return 'length';
  const value = Number(group);
  if (value >= GROUP_LIMIT) return 'out-of-range';
  if (value % 11 !== 0) return 'checksum';
  return null;
}

/**
 * Valid groups reachable from `group` by one typo: a changed digit, a swap of two adjacent digits,
 * and, when the length is off by one, a missing or an extra digit.
 */
export function suggestGroups(group: string): string[] {
  const found = new Set<string>();
  const consider = (candidate: string) => {
    if (candidate !== group && isValidGroup(candidate)) found.add(candidate);
  };
  if (/^\d{6}$/.test(group)) {
    for (let i = 0; i < 6; i++) {
      for (let d = 0; d <= 9; d++) consider(group.slice(0, i) + String(d) + group.slice(i + 1));
    }
    for (let i = 0; i < 5; i++) consider(group.slice(0, i) + group[i + 1] + group[i] + group.slice(i + 2));
  } else if (/^\d{5}$/.test(group)) {
    for (let i = 0; i <= 5; i++) {
      for (let d = 0; d <= 9; d++) consider(group.slice(0, i) + String(d) + group.slice(i));
    }
  } else if (/^\d{7}$/.test(group)) {
    for (let i = 0; i < 7; i++) consider(group.slice(0, i) + group.slice(i + 1));
  }
  return [...found].sort();
}

/**
 * Checks a recovery password as a person typed it and reports every bad group by position.
 *
 * @example
 * checkRecoveryPassword('235818 357951 253979 013365 241120 245575 342914 591910').valid // true
 */
export function checkRecoveryPassword(input: string): RecoveryPasswordCheck {
  const groups = splitGroups(input);
  const problems: GroupProblem[] = [];
  if (groups.length !== RECOVERY_PASSWORD_GROUPS) {
    problems.push({ group: 0, reason: 'group-count', suggestions: [] });
  }
  groups.forEach((group, index) => {
    const reason = groupProblem(group);
    if (reason) problems.push({ group: index + 1, reason, suggestions: suggestGroups(group) });
  });
  if (problems.length > 0) return { valid: false, groups, problems };
  return { valid: true, password: groups.join('-'), groups, problems };
}

/** Describes problems without any digit of the password, for error messages and logs. */
export function describeProblems(problems: readonly GroupProblem[]): string {
  return problems
    .map((p) =>
      p.reason === 'group-count' ? 'expected 8 groups of 6 digits' : `group ${p.group}: ${p.reason}`,
    )
    .join('; ');
}

/** Returns the canonical `xxxxxx-…` form or throws ERR_BDE_INVALID_PASSWORD_FORMAT (no digits in it). */
export function normalizeRecoveryPassword(input: string): string {
  const check = checkRecoveryPassword(input);
  if (!check.valid || !check.password) {
    throw new InvalidRecoveryPasswordError(check.problems);
  }
  return check.password;
}

/** The error for a malformed recovery password; `problems` carries positions and reasons. */
export class InvalidRecoveryPasswordError extends BdeError {
  readonly problems: GroupProblem[];
  constructor(problems: GroupProblem[]) {
    super('ERR_BDE_INVALID_PASSWORD_FORMAT', `Invalid recovery password: ${describeProblems(problems)}`);
    this.problems = problems;
  }
}

/** The 16-byte key of a recovery password: each group / 11 as a little-endian u16. */
export function recoveryPasswordToKey(input: string): Uint8Array {
  const groups = normalizeRecoveryPassword(input).split('-');
  const key = new Uint8Array(16);
  const view = new DataView(key.buffer);
  groups.forEach((group, i) => view.setUint16(i * 2, Number(group) / 11, true));
  return key;
}

/** The recovery password of a 16-byte key (inverse of recoveryPasswordToKey). */
export function recoveryPasswordFromKey(key: Uint8Array): string {
  if (key.length !== 16) {
    throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'A recovery password key is 16 bytes');
  }
  const view = new DataView(key.buffer, key.byteOffset, key.byteLength);
  const groups: string[] = [];
  for (let i = 0; i < RECOVERY_PASSWORD_GROUPS; i++) {
    groups.push(String(view.getUint16(i * 2, true) * 11).padStart(6, '0'));
  }
  return groups.join('-');
}

/** A new random recovery password from the CSPRNG. */
export function generateRecoveryPassword(): string {
  return recoveryPasswordFromKey(new Uint8Array(randomBytes(16)));
}
