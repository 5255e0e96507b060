/** API tokens: stored as a lookup prefix and a hash, never the token itself. */
import { sql, type SqlBool } from 'kysely';
import type { Executor } from '../../db/database.js';
import type { ApiTokensTable } from '../../db/schema.js';

export interface ApiTokensRepo {
  insert(row: ApiTokensTable, trx?: Executor): Promise<void>;
  findByLookupPrefix(lookupPrefix: string, trx?: Executor): Promise<ApiTokensTable | undefined>;
  /**
   * The token and, in the same statement, the id of an active suspension of the account it acts
   * as (the token itself, or a personal token's user) in its organization: authentication reads
   * both on every request.
   */
  findForAuthentication(
    lookupPrefix: string,
    trx?: Executor,
  ): Promise<(ApiTokensTable & { suspension_id: string | null }) | undefined>;
  /**
   * `findForAuthentication` for several tokens in one statement (PostgreSQL only: an array
   * parameter), for token-lookup-batcher.ts. The rows found, in no particular order.
   */
  findManyForAuthentication(
    lookupPrefixes: readonly string[],
    trx?: Executor,
  ): Promise<(ApiTokensTable & { suspension_id: string | null })[]>;
  list(organizationId: string, trx?: Executor): Promise<ApiTokensTable[]>;
  revoke(organizationId: string, id: string, at: string, trx?: Executor): Promise<boolean>;
  touch(id: string, at: string, trx?: Executor): Promise<void>;
}

export function createApiTokensRepo(db: Executor): ApiTokensRepo {
  /** The token with its account's active suspension (the WHERE is the caller's). */
  const authenticationRead = (trx: Executor) =>
    trx
      .selectFrom('api_tokens as t')
      .selectAll('t')
      .select((eb) =>
        eb
          .selectFrom('account_suspensions as s')
          .select('s.id')
          .whereRef('s.organization_id', '=', 't.organization_id')
          .where('s.lifted_at', 'is', null)
          .where((w) =>
            w.or([
              w.and([
                w('t.kind', '=', 'personal'),
                w('s.subject_type', '=', 'user'),
                w('s.subject_id', '=', w.ref('t.created_by_user_id')),
              ]),
              w.and([
                w('t.kind', '<>', 'personal'),
                w('s.subject_type', '=', 'api-token'),
                w('s.subject_id', '=', w.ref('t.id')),
              ]),
            ]),
          )
          .limit(1)
          .as('suspension_id'),
      );

  return {
    async insert(row, trx = db) {
      await trx.insertInto('api_tokens').values(row).execute();
    },
    async findByLookupPrefix(lookupPrefix, trx = db) {
      return trx
        .selectFrom('api_tokens')
        .selectAll()
        .where('lookup_prefix', '=', lookupPrefix)
        .executeTakeFirst();
    },
    async findForAuthentication(lookupPrefix, trx = db) {
      return authenticationRead(trx).where('t.lookup_prefix', '=', lookupPrefix).executeTakeFirst();
    },
    async findManyForAuthentication(lookupPrefixes, trx = db) {
      // One array parameter: one statement text (one prepared plan) for any number of tokens.
      return authenticationRead(trx)
        .where(sql<SqlBool>`t.lookup_prefix = any(${[...lookupPrefixes]})`)
        .execute();
    },
    async list(organizationId, trx = db) {
      return trx
        .selectFrom('api_tokens')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .orderBy('created_at')
        .execute();
    },
    async revoke(organizationId, id, at, trx = db) {
      const result = await trx
        .updateTable('api_tokens')
        .set({ revoked_at: at })
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async touch(id, at, trx = db) {
      await trx.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
    },
  };
}
