/** Randomness, injected so that ids, tokens and data keys come from one replaceable CSPRNG source. */
import { randomBytes } from 'node:crypto';

export interface RandomSource {
  bytes(length: number): Buffer;
}

export const cryptoRandom: RandomSource = { bytes: (length) => randomBytes(length) };
