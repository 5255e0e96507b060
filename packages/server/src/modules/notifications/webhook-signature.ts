/**
 * Webhook signatures. Every request carries
 * `X-Bdevault-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + raw body)>`.
 *
 * To verify on the receiving side: read the raw body bytes (before any JSON parsing), split the
 * header on `,` into `t` and `v1`, refuse when `t` is more than a few minutes from your clock (a
 * replayed request), compute HMAC-SHA256 over `${t}.${body}` with the webhook's secret and compare
 * it to `v1` in constant time. `X-Bdevault-Delivery` is the same on every retry of one delivery, so
 * a receiver can drop duplicates (delivery is at least once).
 *
 * @example
 * const ok = verifyWebhookSignature(secret, rawBody, req.headers['x-bdevault-signature'], Date.now() / 1000);
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-bdevault-signature';
export const DELIVERY_HEADER = 'x-bdevault-delivery';
export const EVENT_HEADER = 'x-bdevault-event';

/** `t` as it appears in the header: the MAC covers that text, so it cannot be rewritten either. */
function hmacHex(secret: string, t: string, body: string): string {
  return createHmac('sha256', secret).update(`${t}.${body}`, 'utf8').digest('hex');
}

/** The header value for `body` sent at `unixSeconds`. */
export function signWebhookBody(secret: string, body: string, unixSeconds: number): string {
  const t = String(Math.trunc(unixSeconds));
  return `t=${t},v1=${hmacHex(secret, t, body)}`;
}

/** True when `header` is a valid signature of `body` made within `toleranceSeconds` of `nowSeconds`. */
export function verifyWebhookSignature(
  secret: string,
  body: string,
  header: string | undefined,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  if (typeof header !== 'string' || header.length > 200) return false;
  const parts = new Map(
    header.split(',').map((p) => {
      const i = p.indexOf('=');
      return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const;
    }),
  );
  // Plain decimal seconds only: "+1800000000", "1800000000.0" or "0x…" are other texts for the same
  // number, and the MAC is over the text the receiver reads.
  const t = parts.get('t') ?? '';
  const v1 = parts.get('v1') ?? '';
  if (!/^\d{1,12}$/.test(t) || Math.abs(nowSeconds - Number(t)) > toleranceSeconds) return false;
  if (!/^[0-9a-f]{64}$/.test(v1)) return false;
  return timingSafeEqual(Buffer.from(v1, 'hex'), Buffer.from(hmacHex(secret, t, body), 'hex'));
}
