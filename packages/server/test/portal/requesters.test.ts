// The helpdesk finds the locked-out user: prefix search over the organization's active members, no e-mail address told.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestVault, randomKeyId, type TestVault } from '../helpers.js';
import {
  adminTokenFor,
  assignRole,
  createOrganization,
  createPerson,
  personalToken,
} from '../access/support.js';

let t: TestVault;
let helpdesk: string;
let reader: string;
let otherOrgAdmin: string;
let carol: string;
const tag = randomKeyId().slice(0, 6).toLowerCase();

async function person(organizationId: string, username: string, displayName: string, email?: string) {
  const { userId } = await t.vault.services.identity.createUser({
    organizationId,
    username,
    displayName,
    ...(email ? { email } : {}),
    password: `long enough password ${randomKeyId()}`,
    permissions: [],
    mustChangePassword: false,
  });
  return userId;
}

beforeAll(async () => {
  t = await createTestVault();
  carol = await person(t.organizationId, `carol-${tag}`, `Carol Crane`, `carol-${tag}@example.test`);
  await person(t.organizationId, `cary-${tag}`, `Cary Cole`);
  const gone = await person(t.organizationId, `carl-${tag}`, `Carl Gone`);
  await t.vault.services.identity.setUserDisabled(t.organizationId, gone, true, { type: 'cli', id: null });
  for (let i = 0; i < 25; i++) await person(t.organizationId, `many-${tag}-${i}`, `Many ${i}`);
  const otherOrg = await createOrganization(t, 'Other');
  await person(otherOrg, `carolyn-${tag}`, 'Carolyn Elsewhere');
  otherOrgAdmin = await adminTokenFor(t, otherOrg);
  const h = await createPerson(t, t.organizationId);
  await assignRole(t, t.organizationId, h, 'helpdesk');
  helpdesk = (await personalToken(t, t.organizationId, h)).token;
  const r = await createPerson(t, t.organizationId);
  await assignRole(t, t.organizationId, r, 'report-reader');
  reader = (await personalToken(t, t.organizationId, r)).token;
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const find = (token: string, query: string) =>
  t.app.inject({ url: `/api/recovery-cases/requesters?${query}`, headers: bearer(token) });

describe('GET /api/recovery-cases/requesters', () => {
  it('finds by username prefix and tells whether an e-mail is registered, never the address', async () => {
    const res = await find(helpdesk, `query=CAROL-${tag}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      requesters: [{ userId: carol, username: `carol-${tag}`, displayName: 'Carol Crane', hasEmail: true }],
    });
    expect(res.body).not.toContain('@example.test');
  });

  it('finds by display-name prefix, only in the caller organization', async () => {
    const res = await find(helpdesk, 'query=carol%20c');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().requesters.map((r: { username: string }) => r.username)).toEqual([`carol-${tag}`]);
    const other = await find(otherOrgAdmin, `query=carol-${tag}`);
    expect(other.json().requesters).toEqual([]);
  });

  it('leaves out disabled accounts (no case can be opened for them)', async () => {
    expect((await find(helpdesk, `query=carl-${tag}`)).json().requesters).toEqual([]);
  });

  it('reports a missing address as hasEmail false', async () => {
    const res = await find(helpdesk, `query=cary-${tag}`);
    expect(res.json().requesters).toEqual([
      expect.objectContaining({ username: `cary-${tag}`, hasEmail: false }),
    ]);
  });

  it('is bounded: at most 20, and wildcards are literal', async () => {
    expect((await find(helpdesk, `query=many-${tag}`)).json().requesters).toHaveLength(20);
    expect((await find(helpdesk, `query=many-${tag}&limit=5`)).json().requesters).toHaveLength(5);
    expect((await find(helpdesk, `query=many-${tag}&limit=21`)).statusCode).toBe(400);
    expect((await find(helpdesk, 'query=%25')).json().requesters).toEqual([]);
    expect((await find(helpdesk, 'query=')).statusCode).toBe(400);
    expect((await find(helpdesk, `query=${'x'.repeat(101)}`)).statusCode).toBe(400);
    expect((await find(helpdesk, 'query=a&email=x')).statusCode).toBe(400);
  });

  it('needs cases:work', async () => {
    expect((await find(reader, 'query=carol')).statusCode).toBe(403);
    expect((await t.app.inject({ url: '/api/recovery-cases/requesters?query=carol' })).statusCode).toBe(401);
  });

  it('the id it returns opens a case', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/recovery-cases',
      headers: bearer(helpdesk),
      payload: { requesterUserId: carol },
    });
    expect(res.statusCode, res.body).toBe(201);
  });
});
