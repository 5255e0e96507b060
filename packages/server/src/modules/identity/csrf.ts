/**
 * CSRF protection for cookie-authenticated changes. The token is an HMAC of the session token (keyed
 * by it), sent back in the `x-csrf-token` header. Why this and not a double-submit cookie: the
 * session cookie is HttpOnly, so script on another origin (or a sibling subdomain that can plant
 * cookies) can neither read nor derive the token; a custom header also cannot be sent cross-origin
 * without a CORS preflight we never approve; nothing extra is stored, and the token changes with the
 * session. SameSite=Strict is a second layer, not the only one (old browsers, same-site subdomains).
 * Bearer-token requests carry no ambient credential and are exempt.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { App } from '../../app-types.js';
import { AppError } from '../../lib/errors.js';
import { SESSION_COOKIE } from '../access/access.hooks.js';

export const CSRF_HEADER = 'x-csrf-token';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function csrfTokenFor(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('bdevault csrf v1').digest('base64url');
}

function tokenMatches(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** True when the request would be authenticated by the session cookie (no Authorization header). */
export function usesSessionCookie(request: FastifyRequest): boolean {
  const cookie = request.cookies?.[SESSION_COOKIE];
  return typeof cookie === 'string' && cookie.length > 0 && request.headers.authorization === undefined;
}

/** Throws CSRF_TOKEN_INVALID unless a state-changing cookie request presents the session's token. */
export function assertCsrf(request: FastifyRequest): void {
  if (SAFE_METHODS.has(request.method) || !usesSessionCookie(request)) return;
  const presented = request.headers[CSRF_HEADER];
  const cookie = request.cookies[SESSION_COOKIE]!;
  if (typeof presented !== 'string' || !tokenMatches(presented, csrfTokenFor(cookie))) {
    throw new AppError('CSRF_TOKEN_INVALID', `Send the session's CSRF token in the ${CSRF_HEADER} header`);
  }
}

/**
 * One hook for every non-public route (after authentication). Public routes that read the session
 * cookie themselves (the MFA steps) call `assertCsrf` directly.
 */
export function registerCsrfProtection(app: App): void {
  app.addHook('onRequest', async (request) => {
    if (request.is404) return;
    const permission = request.routeOptions.config.permission;
    if (permission === undefined || permission === 'public') return;
    assertCsrf(request);
  });
}
