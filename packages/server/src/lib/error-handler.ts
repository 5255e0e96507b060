/** Turns every failure into `{ error: { code, message, requestId, details? } }` with its mapped status. */
import { isBdeError } from '@bdevault/bde';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { classifyDatabaseFailure } from './database-errors.js';
import { codeToStatus, errorBody, isAppError, type ErrorCode } from './errors.js';

interface Classified {
  code: ErrorCode;
  message: string;
  details?: unknown;
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_REQUEST',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_REQUEST',
};

export function classifyError(err: unknown): Classified {
  if (isAppError(err)) return { code: err.code, message: err.message, details: err.details };
  if (hasZodFastifySchemaValidationErrors(err)) {
    // Paths and messages only: an issue's `input` could be a secret the caller sent.
    const details = err.validation.map((v) => ({
      in: err.validationContext ?? 'request',
      path: v.instancePath,
      message: v.message ?? 'invalid',
    }));
    return { code: 'VALIDATION_FAILED', message: 'The request is not valid', details };
  }
  if (isBdeError(err, 'ERR_BDE_INVALID_KEY_ID'))
    return { code: 'VALIDATION_FAILED', message: 'A key id or GUID is malformed' };
  if (isBdeError(err, 'ERR_BDE_INVALID_PASSWORD_FORMAT')) {
    return { code: 'INVALID_RECOVERY_PASSWORD', message: 'The recovery password is not valid' };
  }
  if (isResponseSerializationError(err)) return { code: 'INTERNAL_ERROR', message: 'Internal error' };
  // Neither message carries the driver's text: it can quote the values of the row.
  switch (classifyDatabaseFailure(err)) {
    case 'conflict':
      return {
        code: 'CONCURRENT_CHANGE',
        message: 'Another request changed the same record at the same moment; nothing was changed, try again',
      };
    case 'unavailable':
      return {
        code: 'DATABASE_UNAVAILABLE',
        message: 'The database is not reachable right now; nothing was changed, try again shortly',
        details: { retryAfterSeconds: 5 },
      };
  }
  const fastifyError = err as Partial<FastifyError>;
  const mapped = fastifyError.code === undefined ? undefined : FASTIFY_CODES[fastifyError.code];
  if (mapped) return { code: mapped, message: messageFor(mapped) };
  if (fastifyError.statusCode === 429)
    return { code: 'RATE_LIMITED', message: 'Too many requests; try again later' };
  if (
    err instanceof SyntaxError ||
    (fastifyError.statusCode !== undefined && fastifyError.statusCode < 500 && fastifyError.statusCode >= 400)
  ) {
    return { code: 'MALFORMED_REQUEST', message: 'The request could not be read' };
  }
  return { code: 'INTERNAL_ERROR', message: 'Internal error' };
}

function messageFor(code: ErrorCode): string {
  switch (code) {
    case 'PAYLOAD_TOO_LARGE':
      return 'The request body is too large';
    case 'UNSUPPORTED_MEDIA_TYPE':
      return 'Send application/json';
    default:
      return 'The request could not be read';
  }
}

/**
 * A refusal that knows when trying again makes sense says so (RFC 9110 Retry-After), whichever
 * route threw it and whichever error shape (JSON API, Graph) answers it.
 */
export function setRetryAfter(reply: FastifyReply, code: ErrorCode, details: unknown): void {
  if (code !== 'RATE_LIMITED' && code !== 'SIGN_IN_LOCKED' && code !== 'DATABASE_UNAVAILABLE') return;
  const seconds = (details as { retryAfterSeconds?: unknown } | undefined)?.retryAfterSeconds;
  if (typeof seconds === 'number' && Number.isFinite(seconds)) {
    reply.header('retry-after', String(Math.max(1, Math.ceil(seconds))));
  }
}

export function handleError(err: unknown, request: FastifyRequest, reply: FastifyReply) {
  const { code, message, details } = classifyError(err);
  const status = codeToStatus[code];
  if (status >= 500) request.log.error({ err, code }, 'request failed');
  else if (code === 'CONCURRENT_CHANGE') request.log.warn({ err, code }, 'request lost a race');
  else request.log.info({ code }, 'request refused');
  setRetryAfter(reply, code, details);
  return reply.code(status).send(errorBody(code, message, request.id, details));
}
