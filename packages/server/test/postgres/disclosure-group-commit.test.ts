// Group commit of disclosures on PostgreSQL (disclosure-write-batcher.ts): disclosures that arrive
// while others are being written go out together, in one statement and one commit, so the audit
// chain head is taken once for all of them. Each must still be guarded on its own and leave the
// rows it would have left alone; one item's failure must not become another caller's.
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import type { RecoveryKeysTable } from '../../src/db/schema.js';
import { classifyDatabaseFailure } from '../../src/lib/database-errors.js';
import type { AccessScope } from '../../src/modules/access/permissions.js';
import { createDisclosureWriteBatcher } from '../../src/modules/recovery-keys/disclosure-write-batcher.js';
import {
  createOneStatementDisclosure,
  type OneStatementDisclosureWrite,
} from '../../src/modules/recovery-keys/one-statement-disclosure.repo.js';
import { buildDisclosureRotation } from '../../src/modules/rotation/rotation.build.js';
import { createRotationRepo } from '../../src/modules/rotation/rotation.repo.js';
import { PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';
import { statementsOf } from '../support/sent-statements.js';
import {
  bearer,
  discloseAllAtOnce,
  escrowKeysOnNewDevice,
  onFreshPostgresVault,
  type TestVault,
} from '../helpers.js';

const pgUp = await postgresAvailable();
if (!pgUp) console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the group commit tests are skipped`);

describe.skipIf(!pgUp)('disclosure group commit on PostgreSQL', () => {
  let t: TestVault;
  onFreshPostgresVault((vault) => (t = vault));

  /** `n` keys escrowed on one new device, as their rows read back. */
  const escrowKeys = async (n: number): Promise<RecoveryKeysTable[]> =>
    Promise.all((await escrowKeysOnNewDevice(t, n)).map((k) => keyRow(k.id)));

  const keyRow = (id: string) =>
    t.vault.db.selectFrom('recovery_keys').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  const actor = { type: 'cli' as const, id: null };
  const policy = { singleUsePasswords: true, deadlineDays: 7 };

  /** The write the disclosure service would build from the key as read. */
  function planned(
    key: RecoveryKeysTable,
    options: { rotation?: boolean; scope?: AccessScope } = {},
  ): OneStatementDisclosureWrite {
    const rotation =
      options.rotation === false
        ? undefined
        : buildDisclosureRotation(t.vault.deps).plan({ key, actor, reason: 'group commit', policy })!.row;
    return {
      key,
      at: new Date().toISOString(),
      newStatus: 'rotation_pending',
      scope: options.scope,
      rotation,
      audit: t.vault.deps.auditWriter.prepare({
        organizationId: t.organizationId,
        actor,
        action: 'recovery-key.disclosed',
        target: { type: 'recovery-key', id: key.id },
        outcome: 'success',
        reason: 'group commit',
        details: { rotationRequestId: rotation?.id ?? null },
      }),
    };
  }

  /** The repository, recording how many disclosures each statement carried. */
  function countingRepo() {
    const repo = createOneStatementDisclosure(t.vault.db);
    const groups: number[] = [];
    return {
      groups,
      repo: {
        write: (input: OneStatementDisclosureWrite) => (groups.push(1), repo.write(input)),
        writeMany: (inputs: readonly OneStatementDisclosureWrite[]) => (
          groups.push(inputs.length),
          repo.writeMany(inputs)
        ),
      },
    };
  }

  const rotationsOf = (keyIds: string[]) =>
    t.vault.db
      .selectFrom('rotation_requests')
      .select(['id', 'recovery_key_id'])
      .where('recovery_key_id', 'in', keyIds)
      .execute();

  const auditRows = (ids: string[]) =>
    t.vault.db
      .selectFrom('audit_log')
      .select(['id', 'seq', 'hash'])
      .where('id', 'in', ids)
      .orderBy('seq')
      .execute();

  it('writes several disclosures in one statement, each guarded on its own', async () => {
    const [a, stale, b, noRotation] = await escrowKeys(4);
    const writes = [planned(a!), planned(stale!), planned(b!), planned(noRotation!, { rotation: false })];
    // Marked by someone else since it was read: the status no longer matches.
    await t.vault.db
      .updateTable('recovery_keys')
      .set({ status: 'rotation_pending' })
      .where('id', '=', stale!.id)
      .execute();

    const repo = createOneStatementDisclosure(t.vault.db);
    let written: boolean[] = [];
    const sent = await statementsOf(async () => (written = await repo.writeMany(writes)));
    expect(sent).toHaveLength(1);
    expect(written).toEqual([true, false, true, true]);

    for (const key of [a!, b!, noRotation!]) {
      expect(await keyRow(key.id)).toMatchObject({
        status: 'rotation_pending',
        last_disclosed_at: expect.any(String),
      });
    }
    const rotations = await rotationsOf([a!.id, stale!.id, b!.id, noRotation!.id]);
    expect(rotations.map((r) => r.id).sort()).toEqual(
      [writes[0]!.rotation!.id, writes[2]!.rotation!.id].sort(),
    );
    // Audit rows only for what was written, linked at the one commit in the items' order.
    const audits = await auditRows(writes.map((w) => w.audit.id));
    expect(audits.map((r) => r.id)).toEqual([writes[0]!.audit.id, writes[2]!.audit.id, writes[3]!.audit.id]);
    const seqs = audits.map((r) => Number(r.seq));
    expect(seqs).toEqual([seqs[0], seqs[0]! + 1, seqs[0]! + 2]);
    expect(await t.vault.services.audit.verifyChain()).toMatchObject({ ok: true });
    // Inserted linked (migration 0014), not linked afterwards by the commit-time trigger: a row
    // version written by the statement itself has command id 0, one the trigger's UPDATE rewrote
    // at commit has a later one.
    const { rows: versions } = await sql<{ cmin: string }>`select cmin::text from audit_log
      where id in (${sql.join(audits.map((r) => r.id))})`.execute(t.vault.db);
    expect(versions.map((v) => v.cmin)).toEqual(['0', '0', '0']);
  });

  it("checks each item against its own caller's scope", async () => {
    // Each on a device of its own.
    const [inside] = await escrowKeys(1);
    const [outside] = await escrowKeys(1);
    const other = await escrowKeys(1);
    // A group holding only the first key's device: the second is out of that caller's scope.
    const group = await t.app.inject({
      method: 'POST',
      url: '/api/device-groups',
      headers: bearer(t.adminToken),
      payload: { name: `group commit ${Date.now()}` },
    });
    expect(group.statusCode, group.body).toBe(201);
    const groupId = group.json().id as string;
    const member = await t.app.inject({
      method: 'POST',
      url: `/api/device-groups/${groupId}/members`,
      headers: bearer(t.adminToken),
      payload: { deviceIds: [inside!.device_id] },
    });
    expect(member.statusCode, member.body).toBeLessThan(300);
    const grouped: AccessScope = { kind: 'groups', constraints: [[groupId]] };

    const repo = createOneStatementDisclosure(t.vault.db);
    const written = await repo.writeMany([
      planned(inside!, { scope: grouped }),
      planned(outside!, { scope: grouped }),
      planned(other[0]!, { scope: { kind: 'all' } }),
    ]);
    expect(written).toEqual([true, false, true]);
    expect((await keyRow(outside!.id)).status).toBe('active');
  });

  it('one lost race fails the statement; the batcher then writes each alone, so only that one falls back', async () => {
    const [first, a, raced, b] = await escrowKeys(4);
    const repo = createOneStatementDisclosure(t.vault.db);
    const racedWrite = planned(raced!);
    // Another writer opened the raced key's rotation request after it was read.
    expect(await createRotationRepo(t.vault.db).insertUnlessOpen(planned(raced!).rotation!)).toBe(true);
    await expect(repo.writeMany([planned(a!), racedWrite])).rejects.toMatchObject({ code: '23505' });
    expect((await keyRow(a!.id)).status).toBe('active');

    // One slot: the first write goes alone; the three queued behind it go out as one batch, which
    // fails on the raced key and is retried item by item.
    const counting = countingRepo();
    const batcher = createDisclosureWriteBatcher(counting.repo, { maxInFlight: 1 });
    const writes = [planned(first!), planned(a!), racedWrite, planned(b!)];
    let results: boolean[] = [];
    const sent = await statementsOf(
      async () => (results = await Promise.all(writes.map((w) => batcher.write(w)))),
    );
    expect(results).toEqual([true, true, false, true]);
    expect(counting.groups).toEqual([1, 3, 1, 1, 1]);
    expect(sent).toHaveLength(5);
    expect(await auditRows([racedWrite.audit.id])).toEqual([]);
    expect((await auditRows(writes.map((w) => w.audit.id))).length).toBe(3);
    expect(await t.vault.services.audit.verifyChain()).toMatchObject({ ok: true });
  });

  it('never puts two disclosures of one key in one statement', async () => {
    const [busy, key] = await escrowKeys(2);
    const counting = countingRepo();
    const batcher = createDisclosureWriteBatcher(counting.repo, { maxInFlight: 1 });
    // Status unchanged by the write (no single-use rotation), so the second still matches as read.
    const unrotated = (k: RecoveryKeysTable) => ({
      ...planned(k, { rotation: false }),
      newStatus: 'active' as const,
    });
    const writes = [unrotated(busy!), unrotated(key!), unrotated(key!)];
    let results: boolean[] = [];
    const sent = await statementsOf(
      async () => (results = await Promise.all(writes.map((w) => batcher.write(w)))),
    );
    // The first alone; the two of `key` were queued together, yet went out one after the other.
    expect(sent).toHaveLength(3);
    expect(counting.groups).toEqual([1, 1, 1]);
    expect(results).toEqual([true, true, true]);
    expect(await auditRows(writes.map((w) => w.audit.id))).toHaveLength(3);
  });

  it('a group that finds the database gone fails every caller at once, without writing each alone', async () => {
    const keys = await escrowKeys(3);
    // Nothing listens on port 1: every connection is refused, as when the database is down.
    const gone = openDatabase({ dialect: 'postgres', url: 'postgres://postgres@127.0.0.1:1/gone' });
    try {
      const repo = createOneStatementDisclosure(gone);
      const calls = { write: 0, writeMany: 0 };
      const counted = {
        write: (input: OneStatementDisclosureWrite) => (calls.write++, repo.write(input)),
        writeMany: (inputs: readonly OneStatementDisclosureWrite[]) => (
          calls.writeMany++,
          repo.writeMany(inputs)
        ),
      };
      const batcher = createDisclosureWriteBatcher(counted, { maxInFlight: 1 });
      const outcomes = await Promise.allSettled(keys.map((key) => batcher.write(planned(key))));
      for (const outcome of outcomes) {
        expect(outcome.status).toBe('rejected');
        expect(classifyDatabaseFailure((outcome as PromiseRejectedResult).reason)).toBe('unavailable');
      }
      // The first alone, then the other two as one group, not retried one by one.
      expect(calls).toEqual({ write: 1, writeMany: 1 });
    } finally {
      await gone.destroy();
    }
  });

  it('skips a key another transaction holds, so one locked key holds up no other disclosure', async () => {
    const [held, free] = await escrowKeys(2);
    if (t.config.database.dialect !== 'postgres') throw new Error('this suite runs on PostgreSQL');
    const holder = new pg.Client({ connectionString: t.config.database.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select id from recovery_keys where id = $1 for update', [held!.id]);
      const batcher = createDisclosureWriteBatcher(createOneStatementDisclosure(t.vault.db));
      // Both answer while the lock is held: the held key as not written, the other written.
      expect(await Promise.all([batcher.write(planned(held!)), batcher.write(planned(free!))])).toEqual([
        false,
        true,
      ]);
      expect((await keyRow(held!.id)).status).toBe('active');
      // Through the service the held key waits on the transaction path, and is disclosed once the
      // lock is gone.
      const pending = t.app.inject({
        method: 'POST',
        url: `/api/recovery-keys/${held!.id}/disclose`,
        headers: bearer(t.adminToken),
        payload: { reason: 'held key' },
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      await holder.query('commit');
      const res = await pending;
      expect(res.statusCode, res.body).toBe(200);
      expect((await keyRow(held!.id)).status).toBe('rotation_pending');
    } finally {
      await holder.end();
    }
  });

  it('under concurrent load the HTTP disclosures batch, and every one is served and audited once', async () => {
    const keys = await escrowKeys(12);
    const more = await escrowKeys(12);
    const all = [...keys, ...more];
    const { responses, sent } = await discloseAllAtOnce(
      t,
      all.map((k) => k.id),
      'group commit load',
    );
    for (const r of responses) expect(r.statusCode, r.body).toBe(200);
    // Every disclosure here goes through the one-statement write (distinct keys, no conflict):
    // fewer write statements than disclosures means some carried several.
    // (The reads are batched too, with json_to_recordset as well: count the key-stamping UPDATE.)
    const writeStatements = sent.filter((s) => s.includes('update recovery_keys set last_disclosed_at'));
    expect(writeStatements.length).toBeGreaterThan(0);
    expect(writeStatements.length).toBeLessThan(all.length);
    const ids = responses.map((r) => r.json().auditEntryId as string);
    expect(new Set(ids).size).toBe(all.length);
    expect(await auditRows(ids)).toHaveLength(all.length);
    expect(await rotationsOf(all.map((k) => k.id))).toHaveLength(all.length);
    expect(await t.vault.services.audit.verifyChain()).toMatchObject({ ok: true });
  });
});
