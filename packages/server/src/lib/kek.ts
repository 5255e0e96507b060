/** Key-encryption keys: loading, creating (0600) and holding the ring of current and previous KEKs. */
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { AppError } from './errors.js';
import type { RandomSource } from './random.js';

export const KEK_LENGTH = 32;

export interface Kek {
  /** Derived from the key itself, so the same key always has the same id whatever its source. */
  readonly id: string;
  readonly key: Buffer;
}

/** Where the KEK comes from: one environment value, or a file (created on first start if absent). */
export type KekSource = { kind: 'env'; base64: string } | { kind: 'file'; path: string };

export function kekFromBytes(key: Buffer): Kek {
  if (key.length !== KEK_LENGTH) throw new Error(`a KEK must be ${KEK_LENGTH} bytes`);
  const id = `kek_${createHash('sha256').update('bdevault-kek-id\0').update(key).digest('hex').slice(0, 16)}`;
  return { id, key };
}

export function decodeKek(base64: string, origin: string): Kek {
  const key = Buffer.from(base64.trim(), 'base64');
  if (key.length !== KEK_LENGTH) {
    throw new Error(`${origin} must hold base64 of exactly ${KEK_LENGTH} bytes (found ${key.length} bytes)`);
  }
  return kekFromBytes(key);
}

/** Writes a new random KEK file with mode 0600; refuses to overwrite an existing one. */
export function createKekFile(path: string, random: RandomSource): Kek {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const kek = kekFromBytes(random.bytes(KEK_LENGTH));
  writeFileSync(path, `${kek.key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return kek;
}

export function readKekFile(path: string): Kek {
  return decodeKek(readFileSync(path, 'utf8'), `KEK file ${path}`);
}

/** Backups of previous KEKs live next to the current file: `<file>.<kekId>.backup`. */
export function kekBackupPath(currentPath: string, kekId: string): string {
  return `${currentPath}.${kekId}.backup`;
}

/** The in-progress KEK of an unfinished rotation: `<file>.next`. */
export function kekNextPath(currentPath: string): string {
  return `${currentPath}.next`;
}

/**
 * The current KEK (wraps new data keys) and every other known KEK by id (unwraps older ones: a
 * rotation in progress, backups kept until it is done).
 */
export class KekRing {
  readonly #current: Kek;
  readonly #byId: Map<string, Kek>;
  readonly #reload: (() => Kek[]) | undefined;

  /** `reload` is asked on an unknown id: a rotation run by another process may have added a KEK. */
  constructor(current: Kek, others: readonly Kek[] = [], reload?: () => Kek[]) {
    this.#current = current;
    this.#byId = new Map([...others, current].map((k) => [k.id, k]));
    this.#reload = reload;
  }

  get current(): Kek {
    return this.#current;
  }

  get ids(): string[] {
    return [...this.#byId.keys()];
  }

  resolve(kekId: string): Kek {
    if (!this.#byId.has(kekId) && this.#reload) {
      for (const k of this.#reload()) if (!this.#byId.has(k.id)) this.#byId.set(k.id, k);
    }
    const kek = this.#byId.get(kekId);
    if (!kek)
      throw new AppError('DECRYPTION_FAILED', 'The key-encryption key for this record is not available');
    return kek;
  }
}

/**
 * Loads the ring: from the environment, or from the file (created with mode 0600 when absent and
 * `createIfMissing`), plus the backups and an unfinished rotation's next KEK beside the file.
 */
export function loadKekRing(source: KekSource, random: RandomSource, createIfMissing: boolean): KekRing {
  if (source.kind === 'env') return new KekRing(decodeKek(source.base64, 'BDEVAULT_KEK'));
  let current: Kek;
  if (existsSync(source.path)) current = readKekFile(source.path);
  else if (createIfMissing) current = createKekFile(source.path, random);
  else throw new Error(`KEK file ${source.path} does not exist`);
  const path = source.path;
  return new KekRing(current, siblingKeks(path), () => [readKekFile(path), ...siblingKeks(path)]);
}

/** The backups and the unfinished rotation's next KEK stored beside a KEK file. */
export function siblingKeks(path: string): Kek[] {
  const dir = dirname(path);
  const stem = basename(path);
  return readdirSync(dir)
    .filter((name) => name.startsWith(`${stem}.`) && (name.endsWith('.backup') || name === `${stem}.next`))
    .map((name) => readKekFile(join(dir, name)));
}
