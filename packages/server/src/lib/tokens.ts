/**
 * Bearer secrets (API tokens, device credentials, enrollment tokens, sessions): random, typed by
 * prefix, looked up by a short public prefix and stored only as a SHA-256 hash. They carry 256 bits
 * of entropy, so a fast hash is enough; people's passwords use Argon2id instead.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { base32 } from './ids.js';
import type { RandomSource } from './random.js';

export const TOKEN_KINDS = {
  apiToken: 'bdv_at',
  deviceCredential: 'bdv_dc',
  enrollmentToken: 'bdv_et',
  session: 'bdv_se',
} as const;

export type TokenKind = keyof typeof TOKEN_KINDS;

const LOOKUP_LENGTH = 12;

export interface IssuedToken {
  /** The full secret: shown once, never stored. */
  token: string;
  lookupPrefix: string;
  hash: string;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function issueToken(kind: TokenKind, random: RandomSource): IssuedToken {
  const secret = base32(random.bytes(32));
  const token = `${TOKEN_KINDS[kind]}_${secret}`;
  return { token, lookupPrefix: secret.slice(0, LOOKUP_LENGTH), hash: hashToken(token) };
}

/** Splits a presented token into its kind and lookup prefix; undefined when it is not one of ours. */
export function parseToken(token: string): { kind: TokenKind; lookupPrefix: string } | undefined {
  const match = /^(bdv_[a-z]{2})_([0-9a-z]{52})$/.exec(token);
  if (!match) return undefined;
  const kind = (Object.keys(TOKEN_KINDS) as TokenKind[]).find((k) => TOKEN_KINDS[k] === match[1]);
  return kind && { kind, lookupPrefix: match[2]!.slice(0, LOOKUP_LENGTH) };
}

export function tokenMatches(token: string, storedHash: string): boolean {
  const a = Buffer.from(hashToken(token), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
