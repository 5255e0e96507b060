/** Exit codes of `bdevault volume` and the mapping of library errors onto them. */
import { isBdeError } from '@bdevault/bde';
import { CliError } from '../run-cli.js';

/**
 * Exit codes of `bdevault volume`: 0 done; 1 the credential did not open the volume (or a usage
 * error); 2 the volume or a file could not be processed (I/O, not BitLocker, unsupported, EOW).
 */
export const EXIT = { CREDENTIAL: 1, VOLUME: 2 } as const;

/** A CliError that keeps the library's stable code, so `run-cli` prints `bdevault: CODE: message`. */
export class CodedCliError extends CliError {
  readonly code: string;
  constructor(code: string, message: string, exitCode: number) {
    super(message, exitCode);
    this.code = code;
  }
}

/** The credential failures: the person can retry with another credential. */
const CREDENTIAL_CODES = new Set([
  'ERR_BDE_UNLOCK_FAILED',
  'ERR_BDE_NO_PROTECTOR',
  'ERR_BDE_INVALID_PASSWORD_FORMAT',
  'ERR_BDE_INVALID_KEY_ID',
  // PKCS#12 support is arriving in the library; a wrong .pfx password is a credential failure too.
  'ERR_BDE_BAD_PFX',
  'ERR_BDE_BAD_PFX_PASSWORD',
]);

/** Maps a library error to the CLI's exit codes; the library's messages carry no secret. */
export function toCliError(err: unknown): unknown {
  if (!isBdeError(err)) return err;
  return new CodedCliError(
    err.code,
    err.message,
    CREDENTIAL_CODES.has(err.code) ? EXIT.CREDENTIAL : EXIT.VOLUME,
  );
}
