/**
 * Keeps secret options from swallowing the next argument. `--password [value]` lets commander take
 * the next word as the value, so `volume unlock --password disk.img` would treat the image path as
 * the password. Before parsing, a secret option followed by something that cannot be its value gets
 * an explicit "-" (prompt) instead.
 */
import { existsSync } from 'node:fs';

const RECOVERY_PASSWORD_LIKE = /^[\d\s.\-‐‑‒–—]+$/u;

/** Whether `next` should be taken as the value of `flag`. */
function isValueFor(flag: string, next: string): boolean {
  if (next.startsWith('-') && next !== '-') return false;
  if (flag === '--recovery-password') return next === '-' || RECOVERY_PASSWORD_LIKE.test(next);
  // A password could be any word; an existing file named next is far likelier the image or output.
  return next === '-' || !existsSync(next);
}

const SECRET_FLAGS = new Set(['--recovery-password', '--password', '--certificate-password']);

/** Returns argv with "-" inserted after secret options whose next word is not their value. */
export function normalizeSecretOptions(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    out.push(arg);
    if (arg === '--') {
      out.push(...argv.slice(i + 1));
      break;
    }
    if (!SECRET_FLAGS.has(arg)) continue;
    const next = argv[i + 1];
    if (next === undefined || !isValueFor(arg, next)) out.push('-');
  }
  return out;
}
