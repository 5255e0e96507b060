// On PostgreSQL a disclosure is written by one statement (one-statement-disclosure.repo.ts) from the
// key as read just before. These tests count the statements a disclosure sends (each is a round
// trip, and round trips are most of what a disclosure costs: bench/RESULTS.md), and cover where the
// one statement must give way to the transaction: the key changed since it was read, another
// disclosure opened the key's rotation request first, a request is already open. Each must leave
// exactly the rows the transaction would have.
import { describe, expect, it } from 'vitest';
import type { RecoveryKeysTable } from '../../src/db/schema.js';
import { createOneStatementDisclosure } from '../../src/modules/recovery-keys/one-statement-disclosure.repo.js';
import { buildDisclosureRotation } from '../../src/modules/rotation/rotation.build.js';
import { createRotationRepo } from '../../src/modules/rotation/rotation.repo.js';
import { PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';
import { statementsOf } from '../support/sent-statements.js';
import { bearer, onFreshPostgresVault, escrowKeysOnNewDevice, type TestVault } from '../helpers.js';

const pgUp = await postgresAvailable();
if (!pgUp)
  console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the one-statement disclosure tests are skipped`);

describe.skipIf(!pgUp)('one-statement disclosure on PostgreSQL', () => {
  let t: TestVault;
  onFreshPostgresVault((vault) => (t = vault));

  const escrowKeys = (n: number) => escrowKeysOnNewDevice(t, n);

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
    const rotation = buildDisclosureRotation(t.vault.deps);
    const policy = { singleUsePasswords: true, deadlineDays: 7 };
    const actor = { type: 'cli' as const, id: null };
    const keyRow = (id: string) =>
      t.vault.db.selectFrom('recovery_keys').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    // The rows the disclosure service would build from the key as read.
    const planned = (key: RecoveryKeysTable) => ({
      key,
      at: new Date().toISOString(),
      newStatus: 'rotation_pending' as const,
      scope: undefined,
      rotation: rotation.plan({ key, actor, reason: 'stale read', policy })!.row,
      audit: t.vault.deps.auditWriter.prepare({
        organizationId: t.organizationId,
        actor,
        action: 'recovery-key.disclosed',
        target: { type: 'recovery-key', id: key.id },
        outcome: 'success',
        reason: 'stale read',
      }),
    });

    // Read as active, then another disclosure marked it: the status no longer matches. (No rotation
    // in this write, so only the status can stop it.)
    const staleWrite = { ...planned(await keyRow(stale!.id)), rotation: undefined };
    expect((await disclose(stale!.id)).statusCode).toBe(200);
    expect(await write.write(staleWrite)).toBe(false);

    // Read as active with no request open; another writer opens one before this write without
    // touching the key row, so the status still matches and the unique index on open_key refuses
    // the second request: the whole statement rolls back.
    const read = await keyRow(raced!.id);
    const racedWrite = planned(read);
    const meanwhile = planned(read).rotation;
    expect(await createRotationRepo(t.vault.db).insertUnlessOpen(meanwhile)).toBe(true);
    expect(await write.write(racedWrite)).toBe(false);
    expect(await keyRow(raced!.id)).toEqual(read);
    expect(await rotationsOf(raced!.id)).toEqual([{ id: meanwhile.id, status: 'requested' }]);
    const leftovers = await t.vault.db
      .selectFrom('audit_log')
      .select('id')
      .where('id', 'in', [staleWrite.audit.id, racedWrite.audit.id])
      .execute();
    expect(leftovers).toEqual([]);

    // Through the service the same key is still disclosed, with the request that is open.
    const res = await disclose(raced!.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(await rotationOf(res)).toBe(meanwhile.id);
  });
});
