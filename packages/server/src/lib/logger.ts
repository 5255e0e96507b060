/** pino options shared by the server: redaction of credentials and anything that could be a secret. */
import type { LoggerOptions } from 'pino';

/** Paths pino replaces with "[redacted]"; recovery passwords must never reach a log line. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-enrollment-token"]',
  'res.headers["set-cookie"]',
  'password',
  'key',
  'recoveryPassword',
  'token',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.key',
  '*.recoveryPassword',
  '*.token',
  '*.enrollmentToken',
  '*.deviceCredential',
  '*.oneTimePassword',
  '*.*.recoveryPassword',
];

export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { service: 'bdevault' },
  };
}
