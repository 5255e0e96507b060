// Per-route rate limits (here the token endpoint's 60 a minute per address) are counted in the
// database, so two servers on one database share one budget instead of allowing one each.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app-types.js';
import type { Clock } from '../../src/lib/clock.js';
import { createTestVault, type TestVault } from '../helpers.js';

const TOKEN_LIMIT = 60;

function tokenRequest(app: App, remoteAddress: string) {
  return app.inject({
    method: 'POST',
    url: '/oauth2/v2.0/token',
    remoteAddress,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'grant_type=client_credentials&scope=x%2F.default&client_id=a&client_secret=b',
  });
}

describe('per-route rate limits shared by several servers', () => {
  let t: TestVault;
  let now = new Date('2026-03-02T10:00:05Z');
  const clock: Clock = { now: () => new Date(now) };
  let first: App;
  let second: App;

  beforeAll(async () => {
    t = await createTestVault();
    // Two app instances over one database, as two servers behind a load balancer.
    first = await t.appWith({ clock });
    second = await t.appWith({ clock });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('counts requests to either server against one budget per client address', async () => {
    for (let i = 0; i < TOKEN_LIMIT; i += 1) {
      const res = await tokenRequest(i % 2 === 0 ? first : second, '192.0.2.10');
      expect(res.statusCode, `request ${i + 1}`).not.toBe(429);
    }
    const refused = await tokenRequest(second, '192.0.2.10');
    expect(refused.statusCode).toBe(429);
    // The token endpoint answers in OAuth 2.0's error shape.
    expect(refused.json().error).toBe('temporarily_unavailable');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect((await tokenRequest(first, '192.0.2.10')).statusCode).toBe(429);
    // Another address has its own budget.
    expect((await tokenRequest(first, '192.0.2.11')).statusCode).not.toBe(429);
  });

  it('keeps each route budget separate and opens again in the next window', async () => {
    const signIn = await first.inject({
      method: 'POST',
      url: '/api/auth/sign-in',
      remoteAddress: '192.0.2.10',
      payload: { username: 'nobody', password: 'not the password at all' },
    });
    expect(signIn.statusCode).not.toBe(429);
    now = new Date(now.getTime() + 61_000);
    expect((await tokenRequest(second, '192.0.2.10')).statusCode).not.toBe(429);
  });
});
