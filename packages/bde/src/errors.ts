/** Typed errors of @bdevault/bde: every failure carries a stable machine `code`. */

export type BdeErrorCode =
  | 'ERR_BDE_INVALID_PASSWORD_FORMAT'
  | 'ERR_BDE_INVALID_KEY_ID'
  | 'ERR_BDE_INVALID_ARGUMENT'
  | 'ERR_BDE_NOT_BITLOCKER'
  | 'ERR_BDE_UNSUPPORTED_VERSION'
  | 'ERR_BDE_UNSUPPORTED_METHOD'
  | 'ERR_BDE_UNSUPPORTED_EOW'
  | 'ERR_BDE_UNSUPPORTED_STATE'
  | 'ERR_BDE_CORRUPT_METADATA'
  | 'ERR_BDE_TRUNCATED'
  | 'ERR_BDE_NO_PROTECTOR'
  | 'ERR_BDE_BAD_MAC'
  | 'ERR_BDE_UNLOCK_FAILED'
  | 'ERR_BDE_LOCKED'
  | 'ERR_BDE_IO'
  | 'ERR_BDE_BAD_PFX'
  | 'ERR_BDE_BAD_PFX_PASSWORD'
  | 'ERR_BDE_BAD_PACKAGE';

export class BdeError extends Error {
  readonly code: BdeErrorCode;

  constructor(code: BdeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BdeError';
    this.code = code;
  }
}

/** True when `err` is a BdeError, optionally of one code. */
export function isBdeError(err: unknown, code?: BdeErrorCode): err is BdeError {
  return err instanceof BdeError && (code === undefined || err.code === code);
}
