/**
 * Migration 0014 (PostgreSQL only): `bdevault_audit_link_many`, for a statement that inserts audit
 * rows already linked into the chain.
 *
 * Why: the commit-time trigger of migration 0011 links each row after it is inserted, so every
 * audit row is written twice (the insert, then the update that gives it its `seq` and hashes, a
 * new row version and new entries in each of the log's eight indexes), and the chain head row is
 * updated once per row. The grouped disclosure write (one-statement-disclosure.repo.ts) inserts
 * many rows in one statement; with this function it takes the head once, links all of them in
 * their order, moves the head once, and inserts them linked. The trigger fires only for rows that
 * arrive unlinked, so it leaves these alone, and every other audited write keeps using it.
 *
 * The head's row lock is held from here to the end of the statement's transaction (for a single
 * statement, its commit), so chain order is still commit order: any transaction that links later,
 * by this function or by the trigger at its commit, waits for this one to commit first.
 */
import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations run against the schema as it was then */
export const auditLinkInStatement: Migration = {
  async up(db: Kysely<any>) {
    if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
    // The link is audit.chain.ts's linkHash, as in the trigger: SHA-256 over the two hex strings.
    await sql`create function bdevault_audit_link_many(entry_hashes text[])
      returns table (link_ord int, link_seq bigint, link_prev text, link_hash text)
      language plpgsql as $fn$
      declare
        head_seq bigint;
        head_hash text;
      begin
        if coalesce(array_length(entry_hashes, 1), 0) = 0 then
          return;
        end if;
        select h.seq, h.last_hash into head_seq, head_hash from audit_chain_head as h where h.id = 1 for update;
        for i in 1 .. array_length(entry_hashes, 1) loop
          if entry_hashes[i] is null then
            raise exception 'audit row % of the statement has no entry_hash and cannot be linked', i;
          end if;
          link_ord := i;
          link_seq := head_seq + i;
          link_prev := head_hash;
          link_hash := encode(sha256(convert_to(head_hash || entry_hashes[i], 'UTF8')), 'hex');
          return next;
          head_hash := link_hash;
        end loop;
        update audit_chain_head as h set seq = head_seq + array_length(entry_hashes, 1), last_hash = head_hash
          where h.id = 1;
      end
    $fn$`.execute(db);
  },
};
/* eslint-enable @typescript-eslint/no-explicit-any */
