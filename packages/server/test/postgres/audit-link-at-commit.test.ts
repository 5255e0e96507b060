// On PostgreSQL the chain trigger links audit rows when their transaction commits (migration 0011):
// commit order is chain order, a rollback leaves no gap, every committed row is linked, and a
// writer holding a transaction open does not hold up the others.
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../../src/db/schema.js';
import { migrateToLatest } from '../../src/db/migrations.js';
import { createAuditRepo } from '../../src/modules/audit/audit.repo.js';
import { createAuditService, createAuditWriter } from '../../src/modules/audit/audit.service.js';
import { systemClock } from '../../src/lib/clock.js';
import { createIdGenerator } from '../../src/lib/ids.js';
import { cryptoRandom } from '../../src/lib/random.js';
import { createPgDatabase, PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';

const pgUp = await postgresAvailable();
if (!pgUp)
  console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the audit link-at-commit test is skipped`);

describe.skipIf(!pgUp)('audit rows linked at commit on PostgreSQL', () => {
  let database: { url: string; drop(): Promise<void> };
  let db: Kysely<Database>;
  const repo = () => createAuditRepo(db);
  const writer = () =>
    createAuditWriter({ auditRepo: repo(), clock: systemClock, ids: createIdGenerator(cryptoRandom) });
  const entry = (action: string) => ({
    organizationId: null,
    actor: { type: 'system' as const, id: null },
    action,
    outcome: 'success' as const,
  });
  // bigint arrives from pg as a string.
  const seqOf = async (id: string) =>
    Number(
      (await db.selectFrom('audit_log').select('seq').where('id', '=', id).executeTakeFirstOrThrow()).seq,
    );

  beforeAll(async () => {
    database = await createPgDatabase();
    db = new Kysely<Database>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: database.url, max: 4 }) }),
    });
    await migrateToLatest(db);
  });
  afterAll(async () => {
    await db?.destroy();
    await database?.drop();
  });

  it('orders rows by commit, not by insert, and a rolled-back row leaves no gap', async () => {
    let releaseFirst!: () => void;
    const firstMayCommit = new Promise<void>((r) => (releaseFirst = r));
    let firstInserted!: () => void;
    const firstHasInserted = new Promise<void>((r) => (firstInserted = r));

    // The first transaction inserts first but commits last.
    const first = db.transaction().execute(async (trx) => {
      const a = await writer().append(entry('test.first'), trx);
      firstInserted();
      await firstMayCommit;
      return a.id;
    });
    await firstHasInserted;
    const before = await repo().head();

    // Meanwhile a second one commits at once: the open transaction does not hold it up.
    const second = await db.transaction().execute(async (trx) => {
      const a = await writer().append(entry('test.second.a'), trx);
      const b = await writer().append(entry('test.second.b'), trx);
      return [a.id, b.id];
    });
    // And a third rolls back.
    await expect(
      db.transaction().execute(async (trx) => {
        await writer().append(entry('test.rolled-back'), trx);
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');

    releaseFirst();
    const firstId = await first;
    // Every committed row was linked: none is left without its place, predecessor or hash.
    const unlinked = await db
      .selectFrom('audit_log')
      .select('id')
      .where((eb) => eb.or([eb('seq', 'is', null), eb('prev_hash', 'is', null), eb('hash', 'is', null)]))
      .execute();
    expect(unlinked).toEqual([]);
    expect(await seqOf(second[0]!)).toBe(before.seq + 1);
    expect(await seqOf(second[1]!)).toBe(before.seq + 2);
    expect(await seqOf(firstId)).toBe(before.seq + 3);
    expect((await repo().head()).seq).toBe(before.seq + 3);
    expect(
      await db.selectFrom('audit_log').select('id').where('action', '=', 'test.rolled-back').execute(),
    ).toEqual([]);

    const verdict = await createAuditService({ auditRepo: repo() }).verifyChain();
    expect(verdict).toMatchObject({ ok: true, rowsChecked: before.seq + 3 });
  });

  it('keeps one gap-free chain under many concurrent writers', async () => {
    const before = await repo().head();
    const ids = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        db
          .transaction()
          .execute(async (trx) => (await writer().append(entry(`test.concurrent.${i}`), trx)).id),
      ),
    );
    const seqs = await Promise.all(ids.map(seqOf));
    expect(new Set(seqs).size).toBe(60);
    expect(Math.min(...seqs)).toBe(before.seq + 1);
    expect(Math.max(...seqs)).toBe(before.seq + 60);
    expect((await createAuditService({ auditRepo: repo() }).verifyChain()).ok).toBe(true);
  });

  it('refuses to commit a row inserted without its content digest', async () => {
    await expect(
      db.transaction().execute(async (trx) => {
        await trx
          .insertInto('audit_log')
          .values({
            id: 'aud_without_digest',
            seq: null,
            organization_id: null,
            occurred_at: new Date().toISOString(),
            actor_type: 'system',
            actor_id: null,
            action: 'test.no-digest',
            target_type: null,
            target_id: null,
            outcome: 'success',
            reason: null,
            details: '{}',
            request_id: null,
            prev_hash: null,
            hash: null,
            entry_hash: null,
          })
          .execute();
      }),
    ).rejects.toThrow(/no entry_hash/);
    expect((await createAuditService({ auditRepo: repo() }).verifyChain()).ok).toBe(true);
  });
});
