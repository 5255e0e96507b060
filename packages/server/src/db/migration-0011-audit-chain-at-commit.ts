/**
 * Migration 0011: audit rows carry the digest of their content (`entry_hash`, encoding 2 of
 * modules/audit/audit.chain.ts), and on PostgreSQL the database links each row into the chain when
 * its transaction commits.
 *
 * Why: linking in the application meant locking the chain head with the first audit statement and
 * keeping it through every later statement and the COMMIT, each a round trip to a busy Node.js
 * process. Every audited transaction on every server queued behind that lock (issue 7's disclosure
 * benchmark measured 339 disclosures/s). A deferred constraint trigger takes the lock inside the
 * COMMIT, links the rows the transaction inserted, in order, and releases it when the commit is
 * durable: a disclosure now holds the head for as long as its commit takes, nothing more.
 *
 * SQLite has a single writer already; there the writer links rows itself (audit.repo.ts).
 */
import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations run against the schema as it was then */
export const auditChainAtCommit: Migration = {
  async up(db: Kysely<any>) {
    await db.schema.alterTable('audit_log').addColumn('entry_hash', 'text').execute();
    if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;

    // Unlinked only between the insert and the commit of its own transaction: no reader sees it.
    await sql`alter table audit_log
      alter column seq drop not null,
      alter column prev_hash drop not null,
      alter column hash drop not null`.execute(db);
    // The link is audit.chain.ts's linkHash: SHA-256 over the two hex strings, concatenated.
    await sql`create function bdevault_audit_link() returns trigger language plpgsql as $fn$
      declare
        tip record;
        link text;
      begin
        if new.entry_hash is null then
          raise exception 'audit row % has no entry_hash and cannot be linked', new.id;
        end if;
        select seq, last_hash into tip from audit_chain_head where id = 1 for update;
        link := encode(sha256(convert_to(tip.last_hash || new.entry_hash, 'UTF8')), 'hex');
        update audit_chain_head set seq = tip.seq + 1, last_hash = link where id = 1;
        update audit_log set seq = tip.seq + 1, prev_hash = tip.last_hash, hash = link
          where id = new.id;
        return null;
      end
    $fn$`.execute(db);
    // Rows that arrive linked (a store migration copying a chain) are left as they are.
    await sql`create constraint trigger audit_log_link_at_commit
      after insert on audit_log
      deferrable initially deferred
      for each row when (new.seq is null)
      execute function bdevault_audit_link()`.execute(db);
  },
};
/* eslint-enable @typescript-eslint/no-explicit-any */
