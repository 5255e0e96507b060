// API-token authentication reads, batched on PostgreSQL (token-lookup-batcher.ts): the reads of
// concurrent requests share statements. Each request must still be judged by its own token as the
// database has it now: a revoked token is refused from the next request on, an unknown one is
// refused, and no request is ever answered with another request's token.
import { describe, expect, it } from 'vitest';
import { PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';
import { statementsOf } from '../support/sent-statements.js';
import { bearer, onFreshPostgresVault, type TestVault } from '../helpers.js';

const pgUp = await postgresAvailable();
if (!pgUp)
  console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the token lookup batching tests are skipped`);

describe.skipIf(!pgUp)('API-token lookups batched on PostgreSQL', () => {
  let t: TestVault;
  onFreshPostgresVault((vault) => (t = vault));

  const actor = { type: 'cli' as const, id: null };
  const newToken = (name: string, permissions: string[]) =>
    t.vault.services.apiTokens.createApiToken({
      organizationId: t.organizationId,
      name,
      permissions,
      creatorPermissions: undefined,
      actor,
    });

  const tokenReads = (sent: string[]) => sent.filter((s) => /from "api_tokens" as "t"/i.test(s));

  it('concurrent requests share token reads; each is judged by its own token', async () => {
    const reader = await newToken('reader', ['devices:read']);
    const keysOnly = await newToken('keys only', ['keys:read-metadata']);
    const revoked = await newToken('revoked', ['devices:read']);
    await t.vault.services.apiTokens.revokeApiToken(t.organizationId, revoked.id, actor);
    // A well-formed token nobody issued: the reader's with its secret part changed.
    const forged = `${reader.token.slice(0, -4)}${reader.token.endsWith('AAAA') ? 'BBBB' : 'AAAA'}`;
    const callers = [
      ...Array.from({ length: 12 }, () => ({ token: reader.token, expect: 200 })),
      ...Array.from({ length: 6 }, () => ({ token: keysOnly.token, expect: 403 })),
      ...Array.from({ length: 6 }, () => ({ token: revoked.token, expect: 401 })),
      ...Array.from({ length: 6 }, () => ({ token: forged, expect: 401 })),
    ];
    // Interleaved, so every batch mixes tokens.
    const order = callers.map((_, i) => callers[(i * 7) % callers.length]!);
    let statuses: number[] = [];
    const sent = await statementsOf(async () => {
      const responses = await Promise.all(
        order.map((c) =>
          t.app.inject({ url: '/api/devices?name=NO-SUCH-PC&match=exact', headers: bearer(c.token) }),
        ),
      );
      statuses = responses.map((r) => r.statusCode);
    });
    expect(statuses).toEqual(order.map((c) => c.expect));
    expect(tokenReads(sent).length).toBeGreaterThan(0);
    expect(tokenReads(sent).length).toBeLessThan(order.length / 2);
  });

  it('a token revoked between two requests is refused by the second', async () => {
    const token = await newToken('short-lived', ['devices:read']);
    const burst = () =>
      Promise.all(
        Array.from({ length: 8 }, () =>
          t.app.inject({ url: '/api/devices?name=NO-SUCH-PC&match=exact', headers: bearer(token.token) }),
        ),
      );
    expect((await burst()).map((r) => r.statusCode)).toEqual(Array(8).fill(200));
    await t.vault.services.apiTokens.revokeApiToken(t.organizationId, token.id, actor);
    expect((await burst()).map((r) => r.statusCode)).toEqual(Array(8).fill(401));
  });
});
