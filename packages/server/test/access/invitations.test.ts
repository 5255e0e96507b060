// Invitations: the same answer for a real and an unknown user name; accept, decline, expire, revoke; only the invitee answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIdGenerator } from '../../src/lib/ids.js';
import { cryptoRandom } from '../../src/lib/random.js';
import { bearer, createTestVault, type TestVault } from '../helpers.js';
import {
  auditRows,
  movableClock,
  personWithPassword,
  signIn,
  type CookieSession,
  type Person,
} from './people.js';
import { adminTokenFor, assignRole, createOrganization, groupId } from './support.js';

let t: TestVault;
let orgA: string;
let orgB: string;
let adminB: string;

beforeAll(async () => {
  t = await createTestVault();
  orgA = t.organizationId;
  orgB = await createOrganization(t, 'Customer B');
  adminB = await adminTokenFor(t, orgB);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

async function invite(username: string, roleId = 'helpdesk', url = '/api/organization/invitations') {
  return t.app.inject({ method: 'POST', url, headers: bearer(adminB), payload: { username, roleId } });
}

async function pendingOf(session: CookieSession) {
  const res = await t.app.inject({ url: '/api/auth/invitations', headers: session.read });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().invitations as { id: string; organizationId: string }[];
}

const answer = (session: CookieSession, id: string, what: 'accept' | 'decline') =>
  t.app.inject({ method: 'POST', url: `/api/auth/invitations/${id}/${what}`, headers: session.write });

async function membershipsOf(userId: string) {
  const rows = await t.vault.db
    .selectFrom('memberships')
    .select('organization_id')
    .where('user_id', '=', userId)
    .execute();
  return rows.map((r) => r.organization_id).sort();
}

/** The answer without what differs by nature between two calls (ids, times, the name typed). */
function shape(res: { statusCode: number; json(): Record<string, unknown> }) {
  const { id, createdAt, expiresAt, username, ...rest } = res.json();
  expect(typeof id).toBe('string');
  expect(typeof createdAt).toBe('string');
  expect(typeof expiresAt).toBe('string');
  expect(typeof username).toBe('string');
  return { status: res.statusCode, keys: Object.keys(res.json()).sort(), rest };
}

describe('no enumeration', () => {
  it('answers an existing and an unknown user name alike, on both URLs, in the list and in the audit log', async () => {
    const real = await personWithPassword(t, orgA);
    const realAnswer = await invite(real.username);
    const unknownAnswer = await invite(`nobody-${real.username}`);
    expect(realAnswer.statusCode, realAnswer.body).toBe(202);
    expect(shape(unknownAnswer)).toEqual(shape(realAnswer));
    expect(realAnswer.headers['content-length']).toBe(
      String(Number(unknownAnswer.headers['content-length']) - 'nobody-'.length),
    );

    const other = await personWithPassword(t, orgA);
    const oldUrlReal = await invite(other.username, 'helpdesk', '/api/organization/members');
    const oldUrlUnknown = await invite(`nobody-${other.username}`, 'helpdesk', '/api/organization/members');
    expect(shape(oldUrlReal)).toEqual(shape(realAnswer));
    expect(shape(oldUrlUnknown)).toEqual(shape(realAnswer));

    // The administrator's list and the audit rows carry the name as typed, never the account behind it.
    const listed = await t.app.inject({ url: '/api/organization/invitations', headers: bearer(adminB) });
    const byId = new Map(
      (listed.json().invitations as { id: string }[]).map((i) => [i.id, i as Record<string, unknown>]),
    );
    const strip = (i: Record<string, unknown> | undefined) => {
      const { id: _id, createdAt: _c, expiresAt: _e, username: _u, ...rest } = i ?? {};
      return rest;
    };
    expect(strip(byId.get(unknownAnswer.json().id))).toEqual(strip(byId.get(realAnswer.json().id)));
    const rows = [
      ...(await auditRows(t, 'invitation.created', realAnswer.json().id)),
      ...(await auditRows(t, 'invitation.created', unknownAnswer.json().id)),
    ];
    expect(rows).toHaveLength(2);
    const auditShape = (r: (typeof rows)[number]) => ({
      keys: Object.keys(r.details).sort(),
      actor: r.actor_type,
      target: r.target_type,
      org: r.organization_id,
    });
    expect(auditShape(rows[1]!)).toEqual(auditShape(rows[0]!));
    expect(JSON.stringify(rows)).not.toContain(real.userId);

    // Only the real account can ever see or answer its invitation.
    const session = await signIn(t.app, real);
    expect((await pendingOf(session)).map((i) => i.id)).toEqual([realAnswer.json().id]);
    expect((await answer(session, unknownAnswer.json().id, 'accept')).statusCode).toBe(404);
  });
});

describe('answering', () => {
  let bob: Person;
  let carol: Person;
  let bobIn: CookieSession;
  let carolIn: CookieSession;

  beforeAll(async () => {
    bob = await personWithPassword(t, orgA);
    carol = await personWithPassword(t, orgA);
    bobIn = await signIn(t.app, bob);
    carolIn = await signIn(t.app, carol);
  });

  it('cannot be seen, accepted or declined by another account (404, nothing written)', async () => {
    const res = await invite(bob.username);
    const id = res.json().id as string;
    expect(await pendingOf(carolIn)).toEqual([]);
    for (const what of ['accept', 'decline'] as const) {
      const other = await answer(carolIn, id, what);
      expect(other.statusCode, other.body).toBe(404);
      expect(other.json().error.code).toBe('NOT_FOUND');
    }
    expect(await membershipsOf(carol.userId)).toEqual([orgA]);
    // A token of bob's cannot answer for him either: invitations take a signed-in person.
    await assignRole(t, orgA, bob.userId, 'report-reader');
    const token = await t.vault.services.apiTokens.createApiToken({
      organizationId: orgA,
      name: 'bob personal',
      permissions: ['*'],
      kind: 'personal',
      createdByUserId: bob.userId,
      creatorPermissions: undefined,
      actor: { type: 'cli', id: null },
    });
    const byToken = await t.app.inject({
      method: 'POST',
      url: `/api/auth/invitations/${id}/accept`,
      headers: bearer(token.token),
    });
    expect(byToken.statusCode).toBe(403);
    expect(await membershipsOf(bob.userId)).toEqual([orgA]);
    // Bob declines it: audited in B, no membership, and it cannot be accepted afterwards.
    const declined = await answer(bobIn, id, 'decline');
    expect(declined.statusCode, declined.body).toBe(204);
    const rows = await auditRows(t, 'invitation.declined', id);
    expect(rows.map((r) => [r.organization_id, r.actor_id])).toEqual([[orgB, bob.userId]]);
    expect(await membershipsOf(bob.userId)).toEqual([orgA]);
    const late = await answer(bobIn, id, 'accept');
    expect(late.statusCode).toBe(409);
    expect(late.json().error.message).toMatch(/declined/);
    expect(await pendingOf(bobIn)).toEqual([]);
  });

  it('an accepted invitation gives the role it offered, and nothing more', async () => {
    const groupB = await groupId(t, adminB, 'B north');
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/organization/invitations',
      headers: bearer(adminB),
      payload: { username: carol.username, roleId: 'report-reader', deviceGroupIds: [groupB] },
    });
    expect(res.statusCode, res.body).toBe(202);
    const listed = await pendingOf(carolIn);
    expect(listed).toEqual([
      expect.objectContaining({
        id: res.json().id,
        roleName: 'Report Reader',
        deviceGroupNames: ['B north'],
      }),
    ]);
    const accepted = await answer(carolIn, res.json().id, 'accept');
    expect(accepted.statusCode, accepted.body).toBe(200);
    expect(await membershipsOf(carol.userId)).toEqual([orgA, orgB].sort());
    const assignments = await t.app.inject({ url: '/api/role-assignments', headers: bearer(adminB) });
    const hers = (assignments.json().roleAssignments as { userId: string }[]).filter(
      (a) => a.userId === carol.userId,
    );
    expect(hers).toEqual([
      expect.objectContaining({ roleId: 'report-reader', deviceGroupIds: [groupB], userId: carol.userId }),
    ]);
    const mine = await t.app.inject({ url: '/api/me/organizations', headers: carolIn.read });
    expect(
      mine.json().organizations.find((o: { organizationId: string }) => o.organizationId === orgB),
    ).toMatchObject({ roleIds: ['report-reader'] });
  });

  it('the organization revokes a pending invitation; then it cannot be accepted; revoking twice is 409', async () => {
    const dave = await personWithPassword(t, orgA);
    const res = await invite(dave.username);
    const id = res.json().id as string;
    // Another organization's administrator cannot touch it.
    const fromA = await t.app.inject({
      method: 'DELETE',
      url: `/api/organization/invitations/${id}`,
      headers: bearer(t.adminToken),
    });
    expect(fromA.statusCode).toBe(404);
    const revoked = await t.app.inject({
      method: 'DELETE',
      url: `/api/organization/invitations/${id}`,
      headers: bearer(adminB),
    });
    expect(revoked.statusCode, revoked.body).toBe(204);
    expect((await auditRows(t, 'invitation.revoked', id)).map((r) => r.organization_id)).toEqual([orgB]);
    const session = await signIn(t.app, dave);
    expect(await pendingOf(session)).toEqual([]);
    const accept = await answer(session, id, 'accept');
    expect(accept.statusCode).toBe(409);
    expect(accept.json().error.message).toMatch(/withdrew/);
    expect(await membershipsOf(dave.userId)).toEqual([orgA]);
    const twice = await t.app.inject({
      method: 'DELETE',
      url: `/api/organization/invitations/${id}`,
      headers: bearer(adminB),
    });
    expect(twice.statusCode).toBe(409);
    // A fresh invitation for the same name is possible once the old one is no longer pending.
    expect((await invite(dave.username)).statusCode).toBe(202);
    expect((await invite(dave.username)).statusCode).toBe(409);
  });

  it('expires after 7 days: no longer listed, not acceptable, shown as expired', async () => {
    const erin = await personWithPassword(t, orgA);
    const res = await invite(erin.username);
    const id = res.json().id as string;
    const later = movableClock(new Date(Date.now() + 7 * 86_400_000 + 60_000).toISOString());
    const app = await t.appWith({ clock: later });
    const session = await signIn(app, erin);
    const mine = await app.inject({ url: '/api/auth/invitations', headers: session.read });
    expect(mine.json().invitations).toEqual([]);
    const accept = await app.inject({
      method: 'POST',
      url: `/api/auth/invitations/${id}/accept`,
      headers: session.write,
    });
    expect(accept.statusCode).toBe(409);
    expect(accept.json().error.message).toMatch(/expired/);
    expect(await membershipsOf(erin.userId)).toEqual([orgA]);
    const listed = await app.inject({ url: '/api/organization/invitations', headers: bearer(adminB) });
    expect(listed.json().invitations.find((i: { id: string }) => i.id === id)).toMatchObject({
      status: 'expired',
      answeredAt: null,
    });
    // An expired invitation is no longer pending: the organization may invite again.
    const again = await app.inject({
      method: 'POST',
      url: '/api/organization/invitations',
      headers: bearer(adminB),
      payload: { username: erin.username, roleId: 'helpdesk' },
    });
    expect(again.statusCode, again.body).toBe(202);
  });

  it('a person suspended in their current organization can still see and answer invitations', async () => {
    const frank = await personWithPassword(t, orgA);
    await assignRole(t, orgA, frank.userId, 'report-reader');
    const res = await invite(frank.username);
    const suspended = await t.app.inject({
      method: 'POST',
      url: '/api/account-suspensions',
      headers: bearer(t.adminToken),
      payload: { userId: frank.userId, reason: 'test' },
    });
    expect(suspended.statusCode, suspended.body).toBe(201);
    const session = await signIn(t.app, frank);
    const refused = await t.app.inject({ url: '/api/devices', headers: session.read });
    expect(refused.json().error.code).toBe('ACCOUNT_SUSPENDED');
    expect((await pendingOf(session)).map((i) => i.id)).toEqual([res.json().id]);
    expect((await answer(session, res.json().id, 'accept')).statusCode).toBe(200);
    expect(await membershipsOf(frank.userId)).toEqual([orgA, orgB].sort());
  });
  it('two invitations to one organization accepted at the same moment: one joins, the other is a 409, never a 500', async () => {
    const gina = await personWithPassword(t, orgA);
    const first = await invite(gina.username);
    expect(first.statusCode, first.body).toBe(202);
    // What two administrators inviting her at the same instant can leave: a second pending
    // invitation (each saw none pending). Written directly: the race itself cannot be timed.
    const row = await t.vault.db
      .selectFrom('organization_invitations')
      .selectAll()
      .where('id', '=', first.json().id as string)
      .executeTakeFirstOrThrow();
    const secondId = createIdGenerator(cryptoRandom)('invitation');
    await t.vault.db
      .insertInto('organization_invitations')
      .values({ ...row, id: secondId, role_id: 'report-reader' })
      .execute();
    const session = await signIn(t.app, gina);
    const answers = await Promise.all([
      answer(session, row.id, 'accept'),
      answer(session, secondId, 'accept'),
    ]);
    const statuses = answers.map((a) => a.statusCode).sort();
    expect(statuses, answers.map((a) => a.body).join('\n')).toEqual([200, 409]);
    const refused = answers.find((a) => a.statusCode === 409)!;
    // Which 409 depends on timing: the membership check (CONFLICT) or, when both passed it before
    // either committed, the membership's unique key (CONCURRENT_CHANGE).
    expect(['CONFLICT', 'CONCURRENT_CHANGE']).toContain(refused.json().error.code);
    expect(await membershipsOf(gina.userId)).toEqual([orgA, orgB].sort());
    const assignments = await t.app.inject({ url: '/api/role-assignments', headers: bearer(adminB) });
    expect(
      (assignments.json().roleAssignments as { userId: string }[]).filter((a) => a.userId === gina.userId),
    ).toHaveLength(1);
  });
});
