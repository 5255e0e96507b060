// The audit log over HTTP: newest first, cursor paging while rows are appended, every filter, one
// organization's rows only, the filtered export (JSON lines, CSV) and the 400s of bad input.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditLogRow } from '../src/db/schema.js';
import { createIdGenerator } from '../src/lib/ids.js';
import { cryptoRandom } from '../src/lib/random.js';
import { createAuditRepo } from '../src/modules/audit/audit.repo.js';
import { AUDIT_COLUMNS, createAuditWriter, type AuditEntry } from '../src/modules/audit/audit.service.js';
import { adminTokenFor, createOrganization, deviceWithKey, personalToken } from './access/support.js';
import { bearer, createTestVault, type TestVault } from './helpers.js';

interface Entry {
  seq: number;
  id: string;
  action: string;
  occurredAt: string;
  actorId: string | null;
}

let t: TestVault;
let orgA: string;
let orgB: string;
let adminB: string;
let aliceId: string;
let adminTokenId: string;
let deviceA: Awaited<ReturnType<typeof deviceWithKey>>;
let deviceB: Awaited<ReturnType<typeof deviceWithKey>>;

/** Seeded rows are stamped from here on, a minute apart, so time ranges have exact answers. */
const BASE = Date.parse('2020-01-01T00:00:00.000Z');
const SEEDED = 260;
let clockMs = BASE;
const minute = (i: number) => new Date(BASE + i * 60_000).toISOString();

/** Appends audit rows through the real writer (linked as every row is), `batch` per transaction. */
async function append(entries: AuditEntry[], batch = 50) {
  const writer = createAuditWriter({
    auditRepo: createAuditRepo(t.vault.db),
    clock: { now: () => new Date((clockMs += 60_000) - 60_000) },
    ids: createIdGenerator(cryptoRandom),
  });
  for (let i = 0; i < entries.length; i += batch) {
    await t.vault.db.transaction().execute(async (trx) => {
      for (const entry of entries.slice(i, i + batch)) await writer.append(entry, trx);
    });
  }
}

const filler = (organizationId: string, n: number, action = 'test.appended'): AuditEntry[] =>
  Array.from({ length: n }, () => ({
    organizationId,
    actor: { type: 'system', id: null },
    action,
    outcome: 'success',
  }));

async function get(url: string, token = t.adminToken) {
  return t.app.inject({ url, headers: bearer(token) });
}

/** Every page of a listing, following nextCursor; fails on a duplicate. */
async function listAll(query: Record<string, string>, token = t.adminToken, limit = 100) {
  const entries: Entry[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const params = new URLSearchParams({ order: 'desc', limit: String(limit), ...query });
    if (cursor) params.set('cursor', cursor);
    const res = await get(`/api/audit-log?${params}`, token);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { entries: Entry[]; nextCursor: string | null };
    entries.push(...body.entries);
    cursor = body.nextCursor;
    pages += 1;
  } while (cursor !== null && pages < 50);
  expect(new Set(entries.map((e) => e.id)).size).toBe(entries.length);
  return entries;
}

async function rowsOf(organizationId: string): Promise<AuditLogRow[]> {
  const rows = await t.vault.db
    .selectFrom('audit_log')
    .selectAll()
    .where('organization_id', '=', organizationId)
    .orderBy('seq', 'desc')
    .execute();
  return rows.map((r) => ({ ...r, seq: Number(r.seq) }));
}

/** The ids the listing must return: org A's rows matching `keep`, newest first. */
async function expectedIds(keep: (row: AuditLogRow) => boolean, organizationId = orgA) {
  return (await rowsOf(organizationId)).filter(keep).map((r) => r.id);
}

beforeAll(async () => {
  t = await createTestVault();
  orgA = t.organizationId;
  orgB = await createOrganization(t, 'Other org');
  adminB = await adminTokenFor(t, orgB);
  aliceId = (
    await t.vault.services.identity.createUser({
      organizationId: orgA,
      username: 'auditee-alice',
      displayName: 'Alice Auditee',
      password: 'a long enough password for alice',
      permissions: [],
      mustChangePassword: false,
    })
  ).userId;
  adminTokenId = (
    await t.vault.db
      .selectFrom('api_tokens')
      .select('id')
      .where('organization_id', '=', orgA)
      .where('name', '=', 'test admin')
      .executeTakeFirstOrThrow()
  ).id;

  // Organization A: more than two pages of rows with every filterable field varied.
  const actions = ['test.alpha', 'test.beta', 'other.gamma'];
  await append(
    Array.from({ length: SEEDED }, (_, i): AuditEntry => ({
      organizationId: orgA,
      actor: i % 2 === 0 ? { type: 'user', id: aliceId } : { type: 'system', id: null },
      action: actions[i % 3]!,
      ...(i % 5 === 0 ? { target: { type: 'webhook', id: `whk_${String(i).padStart(26, '0')}` } } : {}),
      outcome: i % 7 === 0 ? 'failure' : 'success',
      details: { i },
    })),
  );
  // What LIKE would match and an exact prefix must not: another case, and `_` as a wildcard.
  await append([
    { organizationId: orgA, actor: { type: 'system', id: null }, action: 'TEST.upper', outcome: 'success' },
    { organizationId: orgA, actor: { type: 'system', id: null }, action: 'test_x', outcome: 'success' },
  ]);
  // Organization B: the same actor id and actions, and an action only B has.
  await append([
    ...Array.from({ length: 30 }, (): AuditEntry => ({
      organizationId: orgB,
      actor: { type: 'user', id: aliceId },
      action: 'test.alpha',
      outcome: 'success',
    })),
    {
      organizationId: orgB,
      actor: { type: 'system', id: null },
      action: 'only-b.action',
      outcome: 'success',
    },
  ]);
  clockMs = Date.now();

  // A device with a key, disclosed once: rows about the device and about its key.
  deviceA = await deviceWithKey(t, t.adminToken);
  deviceB = await deviceWithKey(t, adminB);
  const disclosed = await t.app.inject({
    method: 'POST',
    url: `/api/recovery-keys/${deviceA.keyRecordId}/disclose`,
    headers: bearer(t.adminToken),
    payload: { reason: 'audit filter test' },
  });
  expect(disclosed.statusCode, disclosed.body).toBe(200);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

describe('newest first', () => {
  it('answers the newest entries first, in descending seq, with a cursor to older ones', async () => {
    const rows = await rowsOf(orgA);
    expect(rows.length).toBeGreaterThan(2 * 100);
    const res = await get('/api/audit-log?order=desc&limit=100');
    expect(res.statusCode).toBe(200);
    const body = res.json() as { entries: Entry[]; nextCursor: string | null };
    expect(body.entries.map((e) => e.id)).toEqual(rows.slice(0, 100).map((r) => r.id));
    expect(typeof body.nextCursor).toBe('string');
  });

  it('pages to the oldest entry without a gap or a duplicate, and says when it is done', async () => {
    const entries = await listAll({});
    expect(entries.map((e) => e.id)).toEqual((await rowsOf(orgA)).map((r) => r.id));
    const seqs = entries.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
  });

  it('pages newest first while rows are appended: every row once, the new ones not in this walk', async () => {
    const params = (cursor?: string) =>
      `/api/audit-log?order=desc&limit=60${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const seen: Entry[] = [];
    let res = await get(params());
    const top = (res.json().entries as Entry[])[0]!.seq;
    for (;;) {
      const body = res.json() as { entries: Entry[]; nextCursor: string | null };
      seen.push(...body.entries);
      if (body.nextCursor === null) break;
      // Other writers go on: organization A's rows and another organization's.
      await append([...filler(orgA, 3), ...filler(orgB, 2)]);
      res = await get(params(body.nextCursor));
      expect(res.statusCode, res.body).toBe(200);
    }
    const ids = seen.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(await expectedIds((r) => r.seq <= top));
    // A new first page starts with what was appended meanwhile.
    const fresh = (await get('/api/audit-log?order=desc&limit=3')).json().entries as Entry[];
    expect(fresh.map((e) => e.action)).toEqual(['test.appended', 'test.appended', 'test.appended']);
    expect(fresh[2]!.seq).toBeGreaterThan(top);
  });

  it('pages oldest first by cursor while rows are appended, and reaches the appended rows', async () => {
    const seen: Entry[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(
        `/api/audit-log?order=asc&limit=80${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json() as { entries: Entry[]; nextCursor: string | null };
      seen.push(...body.entries);
      cursor = body.nextCursor;
      if (pages++ < 2) await append(filler(orgA, 4));
    } while (cursor !== null);
    const ids = seen.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual((await rowsOf(orgA)).map((r) => r.id).reverse());
  });

  it('keeps the paging of earlier versions: afterSeq, oldest first', async () => {
    const rows = (await rowsOf(orgA)).reverse();
    const after = rows[10]!.seq;
    const res = await get(`/api/audit-log?afterSeq=${after}&limit=5`);
    expect(res.statusCode).toBe(200);
    expect((res.json().entries as Entry[]).map((e) => e.id)).toEqual(rows.slice(11, 16).map((r) => r.id));
    const first = await get('/api/audit-log?limit=2');
    expect((first.json().entries as Entry[]).map((e) => e.id)).toEqual(rows.slice(0, 2).map((r) => r.id));
  });
});

describe('filters', () => {
  it('by exact action', async () => {
    const got = await listAll({ action: 'test.beta' });
    expect(got.length).toBeGreaterThan(80);
    expect(got.map((e) => e.id)).toEqual(await expectedIds((r) => r.action === 'test.beta'));
  });

  it('by action prefix (a trailing . or *), exactly: not another case, no wildcards', async () => {
    const expected = await expectedIds((r) => r.action.startsWith('test.'));
    expect((await listAll({ action: 'test.' })).map((e) => e.id)).toEqual(expected);
    expect((await listAll({ action: 'test.*' })).map((e) => e.id)).toEqual(expected);
    expect((await listAll({ action: 'test*' })).map((e) => e.id)).toEqual(
      await expectedIds((r) => r.action.startsWith('test')),
    );
    const keys = await listAll({ action: 'recovery-key.' });
    expect(new Set(keys.map((e) => e.action))).toEqual(
      new Set(['recovery-key.escrowed', 'recovery-key.disclosed']),
    );
  });

  it('by outcome and by actor type', async () => {
    expect((await listAll({ outcome: 'failure' })).map((e) => e.id)).toEqual(
      await expectedIds((r) => r.outcome === 'failure'),
    );
    expect((await listAll({ actorType: 'system', limit: '500' })).map((e) => e.id)).toEqual(
      await expectedIds((r) => r.actor_type === 'system'),
    );
  });

  it('by actor: an id, a user name (any case), a display name, an API token or device name', async () => {
    const alice = await expectedIds((r) => r.actor_id === aliceId);
    expect(alice.length).toBe(SEEDED / 2);
    for (const actor of [aliceId, 'auditee-alice', 'AUDITEE-ALICE', 'Alice Auditee']) {
      expect(
        (await listAll({ actor })).map((e) => e.id),
        actor,
      ).toEqual(alice);
    }
    const byToken = await listAll({ actor: 'test admin' });
    expect(byToken.length).toBeGreaterThan(0);
    expect(byToken.map((e) => e.id)).toEqual(await expectedIds((r) => r.actor_id === adminTokenId));
    const byDevice = await listAll({ actor: deviceA.name.toLowerCase() });
    expect(byDevice.length).toBeGreaterThan(0);
    expect(byDevice.map((e) => e.id)).toEqual(await expectedIds((r) => r.actor_id === deviceA.deviceId));
    expect(await listAll({ actor: 'nobody by this name' })).toEqual([]);
  });

  it('by target type and id', async () => {
    const webhooks = await listAll({ targetType: 'webhook' });
    expect(webhooks.map((e) => e.id)).toEqual(await expectedIds((r) => r.target_type === 'webhook'));
    const one = `whk_${String(10).padStart(26, '0')}`;
    const res = await listAll({ targetType: 'webhook', targetId: one });
    expect(res.map((e) => e.id)).toEqual(await expectedIds((r) => r.target_id === one));
    expect(res).toHaveLength(1);
  });

  it('by device: the device itself, its keys and its rotations', async () => {
    const rotations = await t.vault.db
      .selectFrom('rotation_requests')
      .select('id')
      .where('device_id', '=', deviceA.deviceId)
      .execute();
    const about = new Set([deviceA.deviceId, deviceA.keyRecordId, ...rotations.map((r) => r.id)]);
    const got = await listAll({ deviceId: deviceA.deviceId });
    expect(got.map((e) => e.id)).toEqual(await expectedIds((r) => about.has(r.target_id ?? '')));
    const actions = new Set(got.map((e) => e.action));
    expect(actions).toContain('recovery-key.disclosed');
    expect(actions).toContain('recovery-key.escrowed');
    // Another organization's device: nothing, not an error.
    expect(await listAll({ deviceId: deviceB.deviceId })).toEqual([]);
  });

  it('by time: from (included) and to (excluded), as dates or instants with an offset', async () => {
    const got = await listAll({ from: minute(100), to: minute(150) });
    expect(got).toHaveLength(50);
    expect(got.map((e) => e.id)).toEqual(
      await expectedIds((r) => r.occurred_at >= minute(100) && r.occurred_at < minute(150)),
    );
    expect(got[0]!.occurredAt).toBe(minute(149));
    expect(got[got.length - 1]!.occurredAt).toBe(minute(100));
    const offset = await listAll({ from: '2020-01-01T02:40:00+01:00', to: '2020-01-01T01:45:00Z' });
    expect(offset.map((e) => e.occurredAt)).toEqual(Array.from({ length: 5 }, (_, i) => minute(104 - i)));
    const day = await listAll({ from: '2020-01-01', to: '2020-01-02' });
    expect(day.map((e) => e.id)).toEqual(await expectedIds((r) => r.occurred_at.startsWith('2020-01-01')));
  });

  it('combined, across pages', async () => {
    const got = await listAll(
      { action: 'test.', outcome: 'success', actor: 'auditee-alice' },
      t.adminToken,
      7,
    );
    expect(got.length).toBeGreaterThan(7);
    expect(got.map((e) => e.id)).toEqual(
      await expectedIds(
        (r) => r.action.startsWith('test.') && r.outcome === 'success' && r.actor_id === aliceId,
      ),
    );
  });

  it('lists the actions of the organization for the filter’s choices', async () => {
    const res = await get('/api/audit-log/actions');
    expect(res.statusCode).toBe(200);
    const { actions } = res.json() as { actions: string[] };
    const expected = [...new Set((await rowsOf(orgA)).map((r) => r.action))].sort();
    expect(actions).toEqual(expected);
    expect(actions).not.toContain('only-b.action');
    const inB = (await get('/api/audit-log/actions', adminB)).json().actions as string[];
    expect(inB).toContain('only-b.action');
    expect(inB).not.toContain('test.beta');
  });
});

describe('organization isolation', () => {
  it('another organization sees its own rows only, whatever it filters by', async () => {
    const inB = await listAll({}, adminB);
    expect(inB.map((e) => e.id)).toEqual((await rowsOf(orgB)).map((r) => r.id));
    const byAlice = await listAll({ actor: aliceId }, adminB);
    expect(byAlice.map((e) => e.id)).toEqual(await expectedIds((r) => r.actor_id === aliceId, orgB));
    expect(await listAll({ deviceId: deviceA.deviceId }, adminB)).toEqual([]);
    expect(await listAll({ actor: deviceA.name }, adminB)).toEqual([]);
  });

  it('needs audit:read', async () => {
    const reader = await personalToken(t, orgA, aliceId, { permissions: ['devices:read'] });
    for (const url of ['/api/audit-log?order=desc', '/api/audit-log/actions', '/api/audit-log/export']) {
      const res = await get(url, reader.token);
      expect(res.statusCode, url).toBe(403);
      expect(res.json().error.code).toBe('FORBIDDEN');
    }
  });
});

describe('export', () => {
  const exportsOf = async (organizationId: string) =>
    t.vault.db
      .selectFrom('audit_log')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('action', '=', 'audit-log.exported')
      .orderBy('seq')
      .execute();

  it('streams the filtered rows as JSON lines in chain order, every column, and audits the export', async () => {
    const res = await get(
      `/api/audit-log/export?format=jsonl&action=test.beta&outcome=success&to=${minute(200)}`,
    );
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('application/x-ndjson');
    expect(res.headers['content-disposition']).toMatch(
      /^attachment; filename="bdevault-audit-log-\d{4}-\d\d-\d\d\.jsonl"$/,
    );
    expect(res.body.endsWith('\n')).toBe(true);
    const lines = res.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const expected = (
      await expectedIds(
        (r) => r.action === 'test.beta' && r.outcome === 'success' && r.occurred_at < minute(200),
      )
    ).reverse();
    expect(lines.map((l) => l.id)).toEqual(expected);
    expect(Object.keys(lines[0]!)).toEqual([...AUDIT_COLUMNS]);
    expect(lines.every((l) => l.organization_id === orgA)).toBe(true);

    const audited = (await exportsOf(orgA)).at(-1)!;
    expect(audited.id).toBe(res.headers['x-audit-entry-id']);
    expect(audited).toMatchObject({ actor_type: 'api-token', actor_id: adminTokenId, target_id: orgA });
    expect(JSON.parse(audited.details)).toEqual({
      action: 'test.beta',
      format: 'jsonl',
      outcome: 'success',
      to: minute(200),
    });
  });

  it('writes CSV with the header and the quoting of `bdevault audit export`', async () => {
    const res = await get(`/api/audit-log/export?format=csv&actor=auditee-alice&from=${minute(0)}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    const lines = res.body.trimEnd().split('\n');
    expect(lines[0]).toBe(AUDIT_COLUMNS.join(','));
    expect(lines).toHaveLength(1 + SEEDED / 2);
    // details is JSON: quoted, its quotes doubled.
    expect(lines[1]).toContain(`,"{""i"":0}",`);
  });

  it('unfiltered, is what the CLI exports for the organization, and holds no other organization’s row', async () => {
    const res = await get('/api/audit-log/export');
    expect(res.statusCode).toBe(200);
    const cli: string[] = [];
    const count = await t.vault.services.audit.exportRows('jsonl', (l) => void cli.push(l), orgA);
    expect(res.body).toBe(`${cli.join('\n')}\n`);
    expect(count).toBe((await rowsOf(orgA)).length);
    const ofB = new Set((await rowsOf(orgB)).map((r) => r.id));
    expect(cli.some((l) => ofB.has((JSON.parse(l) as { id: string }).id))).toBe(false);
  });

  it('has no HEAD twin: a HEAD request neither audits an export nor reads the log', async () => {
    const exportsBefore = (await rowsOf(orgA)).filter((r) => r.action === 'audit-log.exported').length;
    const head = await t.app.inject({
      method: 'HEAD',
      url: '/api/audit-log/export?format=csv',
      headers: bearer(t.adminToken),
    });
    expect(head.statusCode).toBe(404);
    const exportsAfter = (await rowsOf(orgA)).filter((r) => r.action === 'audit-log.exported').length;
    expect(exportsAfter).toBe(exportsBefore);
  });

  it('refuses bad input before anything is audited', async () => {
    const before = (await exportsOf(orgA)).length;
    for (const query of ['format=xml', 'from=2024-02-30', 'from=2024-05-02&to=2024-05-01', 'limit=5']) {
      const res = await get(`/api/audit-log/export?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.json().error.code, query).toBe('VALIDATION_FAILED');
    }
    expect(await exportsOf(orgA)).toHaveLength(before);
  });
});

describe('bad input', () => {
  const b64 = (text: string) => Buffer.from(text).toString('base64url');

  it.each([
    ['cursor=not-a-cursor!'],
    [`cursor=${b64('desc:abc')}`],
    [`cursor=${b64('sideways:5')}`],
    [`cursor=${b64('desc:99999999999999999')}`],
    [`order=asc&cursor=${b64('desc:5')}`],
    [`afterSeq=3&cursor=${b64('asc:5')}`],
    ['afterSeq=3&order=desc'],
    ['afterSeq=-1'],
    ['from=yesterday'],
    ['from=2024-02-30'],
    ['to=2024-05-01T25:00:00Z'],
    ['from=2024-05-02&to=2024-05-01'],
    ['limit=0'],
    ['limit=501'],
    ['order=newest'],
    ['action=a%20b'],
    ['action=*'],
    ['outcome=denied'],
    ['actorType=robot'],
    ['targetType=Device!'],
    ['deviceId=dev_x'],
    ['colour=red'],
  ])('%s → 400 VALIDATION_FAILED', async (query) => {
    const res = await get(`/api/audit-log?${query}`);
    expect(res.statusCode, res.body).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'VALIDATION_FAILED', requestId: expect.any(String) });
  });
});
