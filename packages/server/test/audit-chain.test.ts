// The audit chain detects an edited, deleted or reordered row, and exports JSON lines and CSV.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import {
  bearer,
  createTestVault,
  enrollDevice,
  escrowPayload,
  newKey,
  randomKeyId,
  type TestVault,
} from './helpers.js';

let t: TestVault;
beforeEach(async () => {
  t = await createTestVault();
  const device = await enrollDevice(t);
  for (let i = 0; i < 3; i += 1) {
    await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [newKey()]),
    });
  }
});
afterEach(async () => {
  await t.close();
});

const verify = () => t.vault.services.audit.verifyChain();

describe('audit verify', () => {
  it('passes on an untouched log', async () => {
    const verdict = await verify();
    expect(verdict.ok).toBe(true);
    expect(verdict.rowsChecked).toBeGreaterThanOrEqual(6);
    const res = await t.app.inject({ url: '/api/audit-log/verify', headers: bearer(t.adminToken) });
    expect(res.json()).toMatchObject({ ok: true });
  });

  it('detects an edited row', async () => {
    await t.vault.db
      .updateTable('audit_log')
      .set({ reason: 'nothing to see' })
      .where('seq', '=', 3)
      .execute();
    expect((await verify()).firstProblem).toMatchObject({ seq: 3, problem: 'edited' });
  });

  it('detects a deleted row in the middle', async () => {
    await t.vault.db.deleteFrom('audit_log').where('seq', '=', 2).execute();
    expect((await verify()).firstProblem).toMatchObject({ seq: 3, problem: 'missing' });
  });

  it('detects deleted rows at the end', async () => {
    const head = await t.vault.db.selectFrom('audit_chain_head').select('seq').executeTakeFirstOrThrow();
    await t.vault.db.deleteFrom('audit_log').where('seq', '=', Number(head.seq)).execute();
    expect((await verify()).firstProblem).toMatchObject({ problem: 'truncated' });
  });

  it('detects reordered rows', async () => {
    // Swap the sequence numbers of rows 3 and 4 (via a free value, as the column is unique).
    await sql`update audit_log set seq = -1 where seq = 3`.execute(t.vault.db);
    await sql`update audit_log set seq = 3 where seq = 4`.execute(t.vault.db);
    await sql`update audit_log set seq = 4 where seq = -1`.execute(t.vault.db);
    expect((await verify()).firstProblem).toMatchObject({ seq: 3, problem: 'reordered' });
  });

  it('detects an edited row whose hashes were recomputed by the editor (the next link breaks)', async () => {
    const { entryHash, linkHash } = await import('../src/modules/audit/audit.chain.js');
    const row = await t.vault.db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '=', 2)
      .executeTakeFirstOrThrow();
    const edited = { ...row, action: 'nothing.happened' };
    const digest = entryHash(edited);
    await t.vault.db
      .updateTable('audit_log')
      .set({ action: edited.action, entry_hash: digest, hash: linkHash(row.prev_hash, digest) })
      .where('seq', '=', 2)
      .execute();
    expect((await verify()).firstProblem).toMatchObject({ seq: 3, problem: 'missing' });
  });

  it('detects an edited row whose content digest alone was recomputed', async () => {
    const { entryHash } = await import('../src/modules/audit/audit.chain.js');
    const row = await t.vault.db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '=', 3)
      .executeTakeFirstOrThrow();
    await t.vault.db
      .updateTable('audit_log')
      .set({ outcome: 'failure', entry_hash: entryHash({ ...row, outcome: 'failure' }) })
      .where('seq', '=', 3)
      .execute();
    expect((await verify()).firstProblem).toMatchObject({ seq: 3, problem: 'edited' });
  });

  it('still verifies rows written with encoding 1 (before entry hashes), and catches edits in them', async () => {
    const { legacyChainHash, linkHash, GENESIS_HASH } = await import('../src/modules/audit/audit.chain.js');
    // Rewrite the whole chain as a pre-0011 installation would have stored it.
    const rows = await t.vault.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
    let previous = GENESIS_HASH;
    for (const row of rows) {
      const hash = legacyChainHash({ ...row, prev_hash: previous });
      await t.vault.db
        .updateTable('audit_log')
        .set({ entry_hash: null, prev_hash: previous, hash })
        .where('id', '=', row.id)
        .execute();
      previous = hash;
    }
    await t.vault.db
      .updateTable('audit_chain_head')
      .set({ last_hash: previous })
      .where('id', '=', 1)
      .execute();
    expect(await verify()).toMatchObject({ ok: true, rowsChecked: rows.length });

    // A new row after them links to the last encoding-1 hash.
    const device = await enrollDevice(t);
    await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [newKey()]),
    });
    const next = await t.vault.db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '=', rows.length + 1)
      .executeTakeFirstOrThrow();
    expect(next.prev_hash).toBe(previous);
    expect(next.hash).toBe(linkHash(previous, next.entry_hash!));
    expect((await verify()).ok).toBe(true);

    await t.vault.db.updateTable('audit_log').set({ reason: 'edited' }).where('seq', '=', 2).execute();
    expect((await verify()).firstProblem).toMatchObject({ seq: 2, problem: 'edited' });
  });
});

describe('audit export', () => {
  it('writes JSON lines and CSV with every row', async () => {
    const lines: string[] = [];
    const count = await t.vault.services.audit.exportRows('jsonl', (l) => void lines.push(l));
    expect(lines).toHaveLength(count);
    const first = JSON.parse(lines[0]!);
    expect(first).toMatchObject({ seq: 1, action: 'organization.bootstrapped' });
    const csv: string[] = [];
    await t.vault.services.audit.exportRows('csv', (l) => void csv.push(l));
    expect(csv[0]).toBe(
      'seq,id,organization_id,occurred_at,actor_type,actor_id,action,target_type,target_id,outcome,reason,details,request_id,prev_hash,hash,entry_hash',
    );
    expect(csv).toHaveLength(count + 1);
  });

  it('lists only the caller organization through the API', async () => {
    const res = await t.app.inject({ url: '/api/audit-log?limit=2', headers: bearer(t.adminToken) });
    expect(res.statusCode).toBe(200);
    expect(res.json().entries).toHaveLength(2);
    expect(res.json().entries[0]).not.toHaveProperty('prev_hash');
  });
});
