// On PostgreSQL a disclosure is written by one statement (one-statement-disclosure.repo.ts) from the
// key as read just before. These tests count the statements a disclosure sends (each is a round
// trip, and round trips are most of what a disclosure costs: bench/RESULTS.md), and cover where the
// one statement must give way to the transaction: the key changed since it was read, another
// disclosure opened the key's rotation request first, a request is already open. Each must leave
// exactly the rows the transaction would have.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOneStatementDisclosure } from '../../src/modules/recovery-keys/one-statement-disclosure.repo.js';
import { createPgDatabase, PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';
import {
  bearer,
  createTestVault,
  enrollDevice,
  escrowPayload,
  newKey,
  randomKeyId,
  type TestVault,
} from '../helpers.js';

const pgUp = await postgresAvailable();
if (!pgUp)
  console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the one-statement disclosure tests are skipped`);

describe.skipIf(!pgUp)('one-statement disclosure on PostgreSQL', () => {
  let t: TestVault;
  let database: { url: string; drop(): Promise<void> };

  beforeAll(async () => {
    database = await createPgDatabase();
    t = await createTestVault({ databaseUrl: database.url });
  });
  afterAll(async () => {
    await t?.close();
    await database?.drop();
  });

  async function escrowKeys(n: number) {
    const device = await enrollDevice(t);
    const keys = Array.from({ length: n }, () => newKey());
    const escrow = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), keys),
    });
    expect(escrow.statusCode, escrow.body).toBe(200);
    return (escrow.json().volumes[0].recoveryKeys as { id: string }[]).map((k, i) => ({
      id: k.id,
      password: keys[i]!.password,
    }));
  }

  const disclose = (id: string, reason = 'one-statement test') =>
    t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${id}/disclose`,
      headers: bearer(t.adminToken),
      payload: { reason },
    });

  const rotationsOf = (keyRecordId: string) =>
    t.vault.db
      .selectFrom('rotation_requests')
      .select(['id', 'status'])
      .where('recovery_key_id', '=', keyRecordId)
      .execute();

  const disclosureAudits = async (keyRecordId: string) =>
    (
      await t.vault.db
        .selectFrom('audit_log')
        .select(['id', 'details', 'seq'])
        .where('action', '=', 'recovery-key.disclosed')
        .where('target_id', '=', keyRecordId)
        .execute()
    ).map((r) => ({ id: r.id, seq: r.seq, details: JSON.parse(r.details) as Record<string, unknown> }));

  /** The rotation request a disclosure recorded (its audit row says; the response does not). */
  const rotationOf = async (res: Awaited<ReturnType<typeof disclose>>) => {
    const row = await t.vault.db
      .selectFrom('audit_log')
      .select('details')
      .where('id', '=', res.json().auditEntryId)
      .executeTakeFirstOrThrow();
    return (JSON.parse(row.details) as { rotationRequestId: string | null }).rotationRequestId;
  };

  /** The statement texts sent while `run` runs, in order. */
  async function statementsOf(run: () => Promise<unknown>): Promise<string[]> {
    const sent: string[] = [];
    const original = pg.Client.prototype.query;
    pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
      const first = args[0] as string | { text: string };
      sent.push(typeof first === 'string' ? first : first.text);
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof original;
    try {
      await run();
    } finally {
      pg.Client.prototype.query = original;
    }
    return sent;
  }

  it('a first disclosure over HTTP takes 5 statements: token, key and policy, limits, the write, routing', async () => {
    const [warm, key] = await escrowKeys(2);
    // The first request warms what is cached per process (prepared statement names).
    expect((await disclose(warm!.id)).statusCode).toBe(200);
    let response: Awaited<ReturnType<typeof disclose>> | undefined;
    const sent = await statementsOf(async () => (response = await disclose(key!.id)));
    expect(response!.statusCode, response!.body).toBe(200);
    expect(response!.json().recoveryPassword).toBe(key!.password);
    const listing = sent.map((s) => `  ${s.replace(/\s+/g, ' ').slice(0, 100)}`).join('\n');
    expect(sent.length, `statements sent:\n${listing}`).toBeLessThanOrEqual(5);
    expect(sent.map((s) => s.trim().toLowerCase())).not.toContain('begin');
  });

  it('writes the key mark, the rotation request and a linked audit row, as the transaction would', async () => {
    const [key] = await escrowKeys(1);
    const res = await disclose(key!.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().recoveryPassword).toBe(key!.password);
    const rotations = await rotationsOf(key!.id);
    expect(rotations).toEqual([{ id: expect.stringMatching(/^rot_/), status: 'requested' }]);
    expect(await rotationOf(res)).toBe(rotations[0]!.id);
    const [audit] = await disclosureAudits(key!.id);
    expect(audit).toMatchObject({
      id: res.json().auditEntryId,
      details: { rotationRequestId: rotations[0]!.id },
    });
    // Linked into the chain at commit, like every other row.
    expect(audit!.seq).not.toBeNull();
    const row = await t.vault.db
      .selectFrom('recovery_keys')
      .select(['status', 'last_disclosed_at'])
      .where('id', '=', key!.id)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('rotation_pending');
    expect(row.last_disclosed_at).not.toBeNull();
    expect(await t.vault.services.audit.verifyChain()).toMatchObject({ ok: true });
  });

  it('a second disclosure reuses the open rotation request (through the transaction)', async () => {
    const [key] = await escrowKeys(1);
    const first = await disclose(key!.id);
    const second = await disclose(key!.id);
    expect(second.statusCode, second.body).toBe(200);
    const rotations = await rotationsOf(key!.id);
    expect(rotations).toHaveLength(1);
    expect(await rotationOf(first)).toBe(rotations[0]!.id);
    expect(await rotationOf(second)).toBe(rotations[0]!.id);
  });

  it('concurrent first disclosures of one key: every one served and audited, one rotation request', async () => {
    const [key] = await escrowKeys(1);
    const responses = await Promise.all(Array.from({ length: 8 }, (_, i) => disclose(key!.id, `race ${i}`)));
    for (const r of responses) {
      expect(r.statusCode, r.body).toBe(200);
      expect(r.json().recoveryPassword).toBe(key!.password);
    }
    const rotations = await rotationsOf(key!.id);
    expect(rotations).toHaveLength(1);
    const audits = await disclosureAudits(key!.id);
    expect(audits).toHaveLength(8);
    for (const a of audits) expect(a.details.rotationRequestId).toBe(rotations[0]!.id);
    expect(await t.vault.services.audit.verifyChain()).toMatchObject({ ok: true });
  });

  it('writes nothing when the key is no longer as read, or its rotation request was opened meanwhile', async () => {
    const [stale, raced] = await escrowKeys(2);
    const write = createOneStatementDisclosure(t.vault.db);
    const keyRow = (id: string) =>
      t.vault.db.selectFrom('recovery_keys').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const auditRow = (id: string) => ({
      id,
      organization_id: t.organizationId,
      occurred_at: new Date().toISOString(),
      actor_type: 'cli',
      actor_id: null,
      action: 'recovery-key.disclosed',
      target_type: 'recovery-key',
      target_id: null,
      outcome: 'success',
      reason: 'stale read',
      details: '{}',
      request_id: null,
      entry_hash: 'x'.repeat(64),
    });
    const auditIds = [`aud_${randomKeyId()}`, `aud_${randomKeyId()}`];

    // Read as active, then another disclosure marked it: the status no longer matches.
    const before = await keyRow(stale!.id);
    expect((await disclose(stale!.id)).statusCode).toBe(200);
    const written = await write.write({
      key: before,
      at: new Date().toISOString(),
      newStatus: 'rotation_pending',
      scope: undefined,
      rotation: undefined,
      audit: auditRow(auditIds[0]!),
    });
    expect(written).toBe(false);

    // Read as active with no request open; another writer opens one before this write (the unique
    // index on open_key refuses the second), and the whole statement rolls back.
    const read = await keyRow(raced!.id);
    const openedMeanwhile = await t.vault.db
      .insertInto('rotation_requests')
      .values({
        id: `rot_${randomKeyId()}`,
        organization_id: read.organization_id,
        recovery_key_id: read.id,
        device_id: read.device_id,
        volume_id: read.volume_id,
        status: 'requested',
        trigger: 'on-demand',
        reason: null,
        requested_by_type: 'cli',
        requested_by_id: null,
        requested_at: new Date().toISOString(),
        due_at: new Date(Date.now() + 86_400_000).toISOString(),
        delivered_at: null,
        last_delivered_at: null,
        completed_at: null,
        failed_at: null,
        failure_reason: null,
        overdue_at: null,
        new_recovery_key_id: null,
        open_key: read.id,
        updated_at: new Date().toISOString(),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const racedWrite = await write.write({
      key: read,
      at: new Date().toISOString(),
      newStatus: 'rotation_pending',
      scope: undefined,
      rotation: {
        ...(await t.vault.db
          .selectFrom('rotation_requests')
          .selectAll()
          .where('id', '=', openedMeanwhile.id)
          .executeTakeFirstOrThrow()),
        id: `rot_${randomKeyId()}`,
      },
      audit: auditRow(auditIds[1]!),
    });
    expect(racedWrite).toBe(false);
    expect(await keyRow(raced!.id)).toEqual(read);
    expect(await rotationsOf(raced!.id)).toEqual([{ id: openedMeanwhile.id, status: 'requested' }]);
    const leftovers = await t.vault.db
      .selectFrom('audit_log')
      .select('id')
      .where('id', 'in', auditIds)
      .execute();
    expect(leftovers).toEqual([]);

    // Through the service the same key is still disclosed, with the request that is open.
    const res = await disclose(raced!.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(await rotationOf(res)).toBe(openedMeanwhile.id);
  });
});
