/** Failures reading a directory, with stable codes for the import service to map and report. */

export type DirectoryErrorCode =
  | 'DIRECTORY_BIND_FAILED'
  | 'DIRECTORY_UNAVAILABLE'
  | 'DIRECTORY_BASE_NOT_FOUND'
  | 'DIRECTORY_INVALID_OPTIONS';

/** Messages name the server and DNs involved, never a password. */
export class DirectoryError extends Error {
  readonly code: DirectoryErrorCode;

  constructor(code: DirectoryErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DirectoryError';
    this.code = code;
  }
}

/** Classifies an ldapts or socket error raised while connecting, binding or searching. */
export function toDirectoryError(err: unknown, context: string): DirectoryError {
  if (err instanceof DirectoryError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const detail = err instanceof Error ? err.message : String(err);
  if (code === 49)
    return new DirectoryError('DIRECTORY_BIND_FAILED', `${context}: invalid credentials`, { cause: err });
  if (code === 32)
    return new DirectoryError('DIRECTORY_BASE_NOT_FOUND', `${context}: no such object`, { cause: err });
  return new DirectoryError('DIRECTORY_UNAVAILABLE', `${context}: ${detail}`, { cause: err });
}
