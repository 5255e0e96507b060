/** The OData pieces the Graph subset needs: `$filter` equality, opaque paging cursors, error bodies. */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { classifyError, setRetryAfter } from '../../lib/error-handler.js';
import { AppError, codeToStatus, type ErrorCode } from '../../lib/errors.js';

/**
 * Parses `<property> eq '<literal>'` (OData doubles a quote inside a literal). Only equality on the
 * properties a route names is supported; anything else is a clear 400, never a silent full listing.
 */
export function parseEqFilter<P extends string>(
  filter: string,
  properties: readonly P[],
): { property: P; value: string } {
  const match = /^\s*([A-Za-z]{1,40})\s+eq\s+'((?:[^']|'')*)'\s*$/i.exec(filter);
  const property = properties.find((p) => p.toLowerCase() === match?.[1]?.toLowerCase());
  if (!match || property === undefined) {
    throw new AppError(
      'VALIDATION_FAILED',
      `Unsupported $filter: use ${properties.map((p) => `${p} eq '…'`).join(' or ')}`,
    );
  }
  return { property, value: match[2]!.replace(/''/g, "'") };
}

/** Where the next page starts; base64url JSON so callers treat it as opaque and cannot inject SQL text. */
const cursorSchema = z.strictObject({ c: z.string().max(40), i: z.string().max(40) });
export type Cursor = z.infer<typeof cursorSchema>;

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor), 'utf8').toString('base64url');
}

export function decodeCursor(token: string): Cursor {
  try {
    return cursorSchema.parse(JSON.parse(Buffer.from(token, 'base64url').toString('utf8')));
  } catch {
    throw new AppError('VALIDATION_FAILED', 'The $skiptoken is not valid');
  }
}

/** Graph's error codes for bdevault's: what Graph SDKs and scripts branch on. */
function graphCode(code: ErrorCode): string {
  const status = codeToStatus[code];
  if (code === 'UNAUTHENTICATED' || code === 'INVALID_CREDENTIALS') return 'InvalidAuthenticationToken';
  if (status === 403) return 'Authorization_RequestDenied';
  if (status === 404) return 'Request_ResourceNotFound';
  if (status === 429) return 'TooManyRequests';
  if (status === 503) return 'ServiceUnavailable';
  if (status >= 500) return 'InternalServerError';
  return 'BadRequest';
}

export function odataErrorBody(code: string, message: string, request: FastifyRequest, date: Date) {
  return {
    error: {
      code,
      message,
      innerError: {
        // Seconds precision, no zone suffix: the form Graph itself sends.
        date: date.toISOString().slice(0, 19),
        'request-id': request.id,
        ...clientRequestId(request),
      },
    },
  };
}

/** Graph echoes the caller's `client-request-id` so SDK logs correlate; only a GUID is echoed. */
function clientRequestId(request: FastifyRequest): { 'client-request-id'?: string } {
  const value = request.headers['client-request-id'];
  return typeof value === 'string' && /^[0-9a-fA-F-]{36}$/.test(value) ? { 'client-request-id': value } : {};
}

/** The error handler of the Graph prefixes: the same classification as the JSON API, Graph's shape. */
export function createODataErrorHandler(now: () => Date) {
  return (err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const { code, message, details } = classifyError(err);
    const status = codeToStatus[code];
    if (status >= 500) request.log.error({ err, code }, 'request failed');
    else request.log.info({ code }, 'request refused');
    if (status === 401) reply.header('www-authenticate', 'Bearer');
    // Graph SDKs' retry handlers wait as long as Retry-After says on 429 and 503.
    setRetryAfter(reply, code, details);
    const friendly = status === 401 ? 'Access token is empty or invalid.' : message;
    return reply.code(status).send(odataErrorBody(graphCode(code), friendly, request, now()));
  };
}
