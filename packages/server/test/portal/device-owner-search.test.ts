// Device search by owner: prefix of the owning user's username or display name, filtered in SQL within the caller's scope.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestVault, randomKeyId, type TestVault } from '../helpers.js';
import { setOwner } from '../access/people.js';
import {
  adminTokenFor,
  assignRole,
  createOrganization,
  createPerson,
  deviceWithKey,
  groupId,
  personalToken,
} from '../access/support.js';

let t: TestVault;
let alice: string;
let inGroup: Awaited<ReturnType<typeof deviceWithKey>>;
let outside: Awaited<ReturnType<typeof deviceWithKey>>;
let bobs: Awaited<ReturnType<typeof deviceWithKey>>;
let scopedHelpdesk: string;
let otherOrgAdmin: string;
const tag = randomKeyId().slice(0, 6).toLowerCase();

async function person(username: string, displayName: string) {
  const { userId } = await t.vault.services.identity.createUser({
    organizationId: t.organizationId,
    username,
    displayName,
    password: `long enough password ${randomKeyId()}`,
    permissions: [],
    mustChangePassword: false,
  });
  return userId;
}

beforeAll(async () => {
  t = await createTestVault();
  await groupId(t, t.adminToken, 'Branch');
  alice = await person(`alice_${tag}`, `Alice Anders ${tag}`);
  const bob = await person(`bob-${tag}`, `Robert Brown ${tag}`);
  inGroup = await deviceWithKey(t, t.adminToken, 'Branch');
  outside = await deviceWithKey(t, t.adminToken);
  bobs = await deviceWithKey(t, t.adminToken, 'Branch');
  await setOwner(t, t.adminToken, inGroup.deviceId, alice);
  await setOwner(t, t.adminToken, outside.deviceId, alice);
  await setOwner(t, t.adminToken, bobs.deviceId, bob);
  const h = await createPerson(t, t.organizationId);
  await assignRole(t, t.organizationId, h, 'helpdesk', [await groupId(t, t.adminToken, 'Branch')]);
  scopedHelpdesk = (await personalToken(t, t.organizationId, h)).token;
  otherOrgAdmin = await adminTokenFor(t, await createOrganization(t, 'Other'));
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const search = async (token: string, query: Record<string, string>) => {
  const res = await t.app.inject({
    url: `/api/devices?${new URLSearchParams(query)}`,
    headers: bearer(token),
  });
  return res;
};
const ids = async (token: string, query: Record<string, string>) => {
  const res = await search(token, query);
  expect(res.statusCode, res.body).toBe(200);
  return (res.json().devices as { id: string }[]).map((d) => d.id).sort();
};

describe('GET /api/devices?owner=', () => {
  it('matches a username prefix, case-insensitively', async () => {
    expect(await ids(t.adminToken, { owner: `ALICE_${tag}` })).toEqual(
      [inGroup.deviceId, outside.deviceId].sort(),
    );
  });

  it('matches a display-name prefix', async () => {
    expect(await ids(t.adminToken, { owner: 'robert brown' })).toEqual([bobs.deviceId]);
  });

  it('combines with a name filter', async () => {
    expect(await ids(t.adminToken, { owner: `alice_${tag}`, name: inGroup.name, match: 'exact' })).toEqual([
      inGroup.deviceId,
    ]);
  });

  it('treats LIKE wildcards literally', async () => {
    // "_" would match any character; escaped, "alice%" matches nobody.
    expect(await ids(t.adminToken, { owner: 'alice%' })).toEqual([]);
    expect(await ids(t.adminToken, { owner: '%' })).toEqual([]);
  });

  it('stays within the caller scope: a helpdesk scoped to the group sees only its devices', async () => {
    expect(await ids(scopedHelpdesk, { owner: `alice_${tag}` })).toEqual([inGroup.deviceId]);
  });

  it('shows nothing to another organization', async () => {
    expect(await ids(otherOrgAdmin, { owner: `alice_${tag}` })).toEqual([]);
  });

  it('rejects a search without a filter and an unbounded owner', async () => {
    expect((await search(t.adminToken, {})).statusCode).toBe(400);
    expect((await search(t.adminToken, { owner: 'x'.repeat(101) })).statusCode).toBe(400);
    expect((await search(t.adminToken, { owner: '' })).statusCode).toBe(400);
  });

  it('requires a credential', async () => {
    expect((await t.app.inject({ url: '/api/devices?owner=alice' })).statusCode).toBe(401);
  });
});
