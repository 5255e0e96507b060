/**
 * Lockout with a growing delay after failed sign-ins, per account and per client address. The
 * counters live in the database so every server instance sees the same ones.
 */
import type { Db } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { IdentityRepo } from './identity.repo.js';

/** A counter with no failure for this long starts again from zero. */
const FORGET_AFTER_MS = 24 * 60 * 60_000;

export interface ThrottleSettings {
  lockoutThreshold: number;
  lockoutAddressThreshold: number;
  lockoutBaseSeconds: number;
  lockoutMaxSeconds: number;
}

export interface ThrottleKey {
  key: string;
  threshold: number;
}

export interface SignInThrottle {
  /** The keys a sign-in attempt counts against: the account name (any spelling case) and the address. */
  keysFor(scope: string, username: string, address: string | undefined): ThrottleKey[];
  /** Throws SIGN_IN_LOCKED (with `retryAfterSeconds`) while any of the keys is locked. */
  assertOpen(keys: readonly ThrottleKey[]): Promise<void>;
  recordFailure(keys: readonly ThrottleKey[]): Promise<void>;
  /** A success clears the account's counter; the address keeps its count (one good account must not
   *  reset the count of an address that is guessing many others). */
  recordSuccess(keys: readonly ThrottleKey[]): Promise<void>;
  /** An administrator's reset of the account clears its counter. */
  clearAccount(scope: string, username: string): Promise<void>;
}

/** The delay after `failures` consecutive failures: none below the threshold, then doubling, capped. */
export function lockoutDelaySeconds(
  failures: number,
  threshold: number,
  settings: Pick<ThrottleSettings, 'lockoutBaseSeconds' | 'lockoutMaxSeconds'>,
): number {
  if (failures < threshold) return 0;
  const exponent = Math.min(failures - threshold, 30);
  return Math.min(settings.lockoutBaseSeconds * 2 ** exponent, settings.lockoutMaxSeconds);
}

export function createSignInThrottle(deps: {
  db: Db;
  clock: Clock;
  identityRepo: Pick<
    IdentityRepo,
    'forgetStaleAttempts' | 'findAttempts' | 'addFailure' | 'setLockedUntil' | 'clearAttempts'
  >;
  settings: ThrottleSettings;
}): SignInThrottle {
  const { db, clock, identityRepo, settings } = deps;
  const accountKey = (scope: string, username: string) => `account:${scope}:${username.trim().toLowerCase()}`;
  return {
    keysFor(scope, username, address) {
      const keys = [{ key: accountKey(scope, username), threshold: settings.lockoutThreshold }];
      if (address) keys.push({ key: `address:${address}`, threshold: settings.lockoutAddressThreshold });
      return keys;
    },
    async assertOpen(keys) {
      const now = clock.now();
      const rows = await identityRepo.findAttempts(keys.map((k) => k.key));
      const until = rows
        .map((r) => (r.locked_until === null ? 0 : Date.parse(r.locked_until)))
        .reduce((a, b) => Math.max(a, b), 0);
      if (until > now.getTime()) {
        const retryAfterSeconds = Math.ceil((until - now.getTime()) / 1000);
        throw new AppError('SIGN_IN_LOCKED', 'Too many failed sign-ins; try again later', {
          details: { retryAfterSeconds },
        });
      }
    },
    async recordFailure(keys) {
      const now = clock.now();
      const at = now.toISOString();
      await db.transaction().execute(async (trx) => {
        await identityRepo.forgetStaleAttempts(
          keys.map((k) => k.key),
          new Date(now.getTime() - FORGET_AFTER_MS).toISOString(),
          trx,
        );
        for (const { key, threshold } of keys) {
          const failures = await identityRepo.addFailure(key, at, trx);
          const delay = lockoutDelaySeconds(failures, threshold, settings);
          if (delay > 0) {
            await identityRepo.setLockedUntil(key, new Date(now.getTime() + delay * 1000).toISOString(), trx);
          }
        }
      });
    },
    async recordSuccess(keys) {
      await identityRepo.clearAttempts(keys.filter((k) => k.key.startsWith('account:')).map((k) => k.key));
    },
    async clearAccount(scope, username) {
      await identityRepo.clearAttempts([accountKey(scope, username)]);
    },
  };
}
