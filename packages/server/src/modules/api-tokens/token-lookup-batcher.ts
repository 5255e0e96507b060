/**
 * API-token authentication reads, batched (PostgreSQL).
 *
 * Every API request reads its token (and its account's suspension) before anything else. Under
 * load those reads are one round trip each, in the server and in PostgreSQL alike. The reads of
 * requests that arrive while one runs go together in the next statement (lib/statement-batcher.ts;
 * `findManyForAuthentication`, one array parameter), and a script's concurrent requests with one
 * token share one row. A read on a quiet server runs at once, alone, as before.
 *
 * Nothing is cached: every request still reads its token as it is in the database at that moment,
 * so a revocation or a suspension counts from the next request on, on every server.
 */
import { createStatementBatcher } from '../../lib/statement-batcher.js';
import type { ApiTokensRepo } from './api-tokens.repo.js';

type AuthenticationRow = Awaited<ReturnType<ApiTokensRepo['findManyForAuthentication']>>[number];

export type TokenLookups = Pick<ApiTokensRepo, 'findForAuthentication'>;

export function createTokenLookupBatcher(
  repo: Pick<ApiTokensRepo, 'findForAuthentication' | 'findManyForAuthentication'>,
  options: { maxInFlight?: number; maxBatch?: number } = {},
): TokenLookups {
  const find = createStatementBatcher<string, AuthenticationRow | undefined>({
    async runBatch(lookupPrefixes) {
      const rows = await repo.findManyForAuthentication([...new Set(lookupPrefixes)]);
      const byPrefix = new Map(rows.map((row) => [row.lookup_prefix, row]));
      return lookupPrefixes.map((prefix) => byPrefix.get(prefix));
    },
    runAlone: (lookupPrefix) => repo.findForAuthentication(lookupPrefix),
    // Reads wait for nothing but each other; a second slot keeps one slow read from holding up
    // every request's authentication.
    maxInFlight: options.maxInFlight ?? 2,
    maxBatch: options.maxBatch ?? 64,
  });
  return {
    findForAuthentication(lookupPrefix, trx) {
      return trx ? repo.findForAuthentication(lookupPrefix, trx) : find(lookupPrefix);
    },
  };
}
