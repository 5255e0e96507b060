/** Record ids with a type prefix (`dev_…`, `rk_…`), so an id says what it names wherever it appears. */
import type { RandomSource } from './random.js';

export const ID_PREFIXES = {
  organization: 'org',
  user: 'usr',
  membership: 'mem',
  session: 'ses',
  apiToken: 'tok',
  device: 'dev',
  deviceGroup: 'grp',
  volume: 'vol',
  recoveryKey: 'rk',
  enrollmentToken: 'enr',
  deviceCredential: 'dcr',
  auditEntry: 'aud',
  oidcProvider: 'oidp',
  ldapDirectory: 'ldir',
  externalIdentity: 'xid',
  webauthnCredential: 'wac',
  webauthnChallenge: 'wch',
  recoveryCode: 'mrc',
  role: 'rol',
  roleAssignment: 'ras',
  suspension: 'sus',
  invitation: 'inv',
  rotationRequest: 'rot',
  deviceEvent: 'dve',
  recoveryCase: 'case',
  recoveryCaseStep: 'cstp',
  recoveryCaseCode: 'ccod',
  webhook: 'whk',
  notificationDelivery: 'ntd',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

export type IdGenerator = (kind: IdKind) => string;

// Crockford base32, lower case: unambiguous when read aloud, safe in URLs.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

export function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function createIdGenerator(random: RandomSource): IdGenerator {
  return (kind) => `${ID_PREFIXES[kind]}_${base32(random.bytes(16))}`;
}

/** Zod-friendly pattern for an id of one kind. */
export function idPattern(kind: IdKind): RegExp {
  return new RegExp(`^${ID_PREFIXES[kind]}_[0-9a-z]{26}$`);
}
