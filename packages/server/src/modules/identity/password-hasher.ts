/** Argon2id hashing of people's passwords, behind an interface so cost settings live in one place. */
import argon2 from 'argon2';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
}

/** OWASP's Argon2id baseline (19 MiB, 2 passes, 1 lane). */
export function createArgon2Hasher(
  options: { memoryCost: number; timeCost: number } = { memoryCost: 19_456, timeCost: 2 },
): PasswordHasher {
  return {
    hash: (password) => argon2.hash(password, { type: argon2.argon2id, parallelism: 1, ...options }),
    async verify(hash, password) {
      try {
        return await argon2.verify(hash, password);
      } catch {
        return false;
      }
    },
  };
}
