/** The local-account password policy: long enough, bounded, not the username, not a well-known password. */
import { AppError } from '../../lib/errors.js';

export const MIN_PASSWORD_LENGTH = 12;
/** Bounded so a sign-in cannot make Argon2id hash megabytes. */
export const MAX_PASSWORD_LENGTH = 256;

// Passwords of 12+ characters that top breach lists anyway; compared case-insensitively, ignoring spaces.
const COMMON_PASSWORDS = new Set([
  '123456789012',
  '1234567890123',
  '12345678901234',
  '123456789000',
  '111111111111',
  '000000000000',
  '123123123123',
  'qwertyuiopas',
  'qwertyuiop123',
  'qwerty123456',
  '1q2w3e4r5t6y',
  '1qaz2wsx3edc',
  'qazwsxedcrfv',
  'asdfghjkl123',
  'zxcvbnm12345',
  'password1234',
  'password12345',
  'password123456',
  'password!123',
  'passwordpassword',
  'passw0rd1234',
  'p@ssw0rd1234',
  'p@ssword1234',
  'iloveyou1234',
  'letmein12345',
  'welcome12345',
  'welcome@1234',
  'administrator',
  'administrator1',
  'changeme1234',
  'changemenow!',
  'sunshine1234',
  'football1234',
  'baseball1234',
  'princess1234',
  'monkey123456',
  'dragon123456',
  'trustno1trustno1',
  'correcthorsebatterystaple',
  'abcdefghijkl',
  'abc123abc123',
  'summer2024!!',
  'winter2024!!',
  'spring2025!!',
  'autumn2025!!',
  'bitlocker123',
  'bitlocker1234',
  'recovery1234',
  'helpdesk1234',
  'company12345',
]);

function normalise(value: string): string {
  return value.toLowerCase().replace(/\s+/g, '');
}

/** Why a password is refused, or undefined when it is acceptable. */
export function passwordPolicyViolation(password: string, username: string): string | undefined {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH || length > MAX_PASSWORD_LENGTH) {
    return `A password needs ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`;
  }
  const candidate = normalise(password);
  const name = normalise(username);
  const localPart = name.split(/[@\\]/).find((p) => p.length > 0) ?? name;
  if (
    name.length > 0 &&
    (candidate.includes(name) || (localPart.length >= 4 && candidate.includes(localPart)))
  ) {
    return 'A password must not contain the username';
  }
  if (COMMON_PASSWORDS.has(candidate) || /^(.)\1+$/u.test(candidate)) {
    return 'That password is too common; choose another';
  }
  return undefined;
}

export function assertPasswordPolicy(password: string, username: string): void {
  const violation = passwordPolicyViolation(password, username);
  if (violation) throw new AppError('VALIDATION_FAILED', violation);
}
