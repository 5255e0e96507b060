/** The one error taxonomy of the server: stable codes, one code-to-status map, one body shape. */

export const codeToStatus = {
  VALIDATION_FAILED: 400,
  MALFORMED_REQUEST: 400,
  INVALID_RECOVERY_PASSWORD: 422,
  UNAUTHENTICATED: 401,
  INVALID_CREDENTIALS: 401,
  ENROLLMENT_TOKEN_INVALID: 401,
  PASSWORD_CHANGE_REQUIRED: 403,
  REAUTHENTICATION_REQUIRED: 403,
  CSRF_TOKEN_INVALID: 403,
  MFA_INVALID: 401,
  FORBIDDEN: 403,
  ACCOUNT_SUSPENDED: 403,
  NOT_FOUND: 404,
  DEVICE_NOT_FOUND: 404,
  KEY_NOT_FOUND: 404,
  CASE_NOT_FOUND: 404,
  RECOVERY_KEY_CONFLICT: 409,
  CONFLICT: 409,
  /** Another request changed the same record at the same moment; nothing was written. */
  CONCURRENT_CHANGE: 409,
  ROTATION_CLOSED: 409,
  ROTATION_KEY_NOT_ESCROWED: 409,
  CASE_STATE_CONFLICT: 409,
  IDENTITY_NOT_VERIFIED: 409,
  APPROVAL_REQUIRED: 409,
  OWNER_MISMATCH: 409,
  EMAIL_NOT_REGISTERED: 409,
  /** An account-wide action asked of an organization that is not the account's home. */
  ACCOUNT_MANAGED_ELSEWHERE: 409,
  VERIFICATION_CODE_INVALID: 422,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  SIGN_IN_LOCKED: 429,
  AUDIT_WRITE_FAILED: 500,
  DECRYPTION_FAILED: 500,
  INTERNAL_ERROR: 500,
  NOT_READY: 503,
  MAIL_NOT_CONFIGURED: 503,
  /** The database could not be reached or stayed locked; nothing was written. */
  DATABASE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof codeToStatus;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; requestId: string; details?: unknown };
}

/**
 * An expected failure with a stable code. The message is shown to callers, so it must never carry
 * a secret (a recovery password, a token) or anything derived from one.
 */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options?: { details?: unknown; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options?.details;
  }

  get statusCode(): number {
    return codeToStatus[this.code];
  }
}

export function isAppError(err: unknown, code?: ErrorCode): err is AppError {
  return err instanceof AppError && (code === undefined || err.code === code);
}

export function errorBody(code: ErrorCode, message: string, requestId: string, details?: unknown): ErrorBody {
  return { error: { code, message, requestId, ...(details === undefined ? {} : { details }) } };
}
