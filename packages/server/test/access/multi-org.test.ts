// Several organizations: one person with different roles in two, switching between them; nothing crosses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestVault, type TestVault } from '../helpers.js';
import {
  auditRows,
  joinByInvitation,
  personWithPassword,
  signIn,
  switchOrganization,
  type CookieSession,
  type Person,
} from './people.js';
import {
  adminTokenFor,
  assignRole,
  createOrganization,
  createPerson,
  deviceWithKey,
  groupId,
  nextAddress,
} from './support.js';

let t: TestVault;
let orgA: string;
let orgB: string;
let adminB: string;
let tech: Person;
let deviceA: Awaited<ReturnType<typeof deviceWithKey>>;
let deviceB: Awaited<ReturnType<typeof deviceWithKey>>;

beforeAll(async () => {
  t = await createTestVault();
  orgA = t.organizationId;
  orgB = await createOrganization(t, 'Customer B');
  adminB = await adminTokenFor(t, orgB);
  tech = await personWithPassword(t, orgA);
  await assignRole(t, orgA, tech.userId, 'device-administrator');
  deviceA = await deviceWithKey(t, t.adminToken);
  deviceB = await deviceWithKey(t, adminB);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

describe('an existing account joins another organization only by accepting an invitation', () => {
  let invitationId: string;

  it('B invites the technician: 202 with the invitation, audited in B; nothing else changes yet', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/organization/invitations',
      headers: bearer(adminB),
      payload: { username: tech.username, roleId: 'security-reader' },
    });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({
      username: tech.username,
      roleId: 'security-reader',
      deviceGroupIds: null,
      status: 'pending',
      answeredAt: null,
    });
    invitationId = res.json().id;
    expect(JSON.stringify(res.json())).not.toContain(tech.userId);
    const days = (Date.parse(res.json().expiresAt) - Date.parse(res.json().createdAt)) / 86_400_000;
    expect(days).toBe(7);
    const memberships = await t.vault.db
      .selectFrom('memberships')
      .select('organization_id')
      .where('user_id', '=', tech.userId)
      .execute();
    expect(memberships.map((m) => m.organization_id)).toEqual([orgA]);
    const created = await auditRows(t, 'invitation.created', invitationId);
    expect(created).toHaveLength(1);
    expect(created[0]).toMatchObject({ organization_id: orgB, actor_type: 'api-token' });
    expect(created[0]!.details).toMatchObject({ username: tech.username, roleId: 'security-reader' });
    expect(JSON.stringify(created[0])).not.toContain(tech.userId);
    const listed = await t.app.inject({ url: '/api/organization/invitations', headers: bearer(adminB) });
    expect(listed.json().invitations.map((i: { id: string }) => i.id)).toContain(invitationId);
  });

  it('the technician sees it and accepts: membership and role in one step, audited in B', async () => {
    const session = await signIn(t.app, tech);
    const mine = await t.app.inject({ url: '/api/auth/invitations', headers: session.read });
    expect(mine.statusCode, mine.body).toBe(200);
    expect(mine.json().invitations).toEqual([
      expect.objectContaining({
        id: invitationId,
        organizationId: orgB,
        organizationName: 'Customer B',
        roleId: 'security-reader',
        roleName: 'Security Reader',
        deviceGroupNames: null,
        invitedBy: null,
      }),
    ]);
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/auth/invitations/${invitationId}/accept`,
      headers: session.write,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      organizationId: orgB,
      organizationName: 'Customer B',
      roleAssignment: { roleId: 'security-reader', userId: tech.userId, deviceGroupIds: null },
    });
    for (const action of ['invitation.accepted', 'membership.created', 'role-assignment.created']) {
      const rows = (await auditRows(t, action)).filter((r) => r.actor_id === tech.userId);
      expect(
        rows.map((r) => [r.organization_id, r.actor_type]),
        action,
      ).toEqual([[orgB, 'user']]);
    }
    // Answered: no longer listed, not acceptable twice.
    expect((await t.app.inject({ url: '/api/auth/invitations', headers: session.read })).json()).toEqual({
      invitations: [],
    });
    const again = await t.app.inject({
      method: 'POST',
      url: `/api/auth/invitations/${invitationId}/accept`,
      headers: session.write,
    });
    expect(again.statusCode).toBe(409);
    const listed = await t.app.inject({ url: '/api/organization/invitations', headers: bearer(adminB) });
    expect(listed.json().invitations.find((i: { id: string }) => i.id === invitationId)).toMatchObject({
      status: 'accepted',
    });
  });

  it('answers 409 when the user is already a member, and adds no second assignment', async () => {
    const before = await t.app.inject({ url: '/api/role-assignments', headers: bearer(adminB) });
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/organization/members',
      headers: bearer(adminB),
      payload: { username: tech.username, roleId: 'organization-administrator' },
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('CONFLICT');
    const after = await t.app.inject({ url: '/api/role-assignments', headers: bearer(adminB) });
    expect(after.json()).toEqual(before.json());
  });

  it('answers 404 for an unknown role or another organization’s device group; nothing is written', async () => {
    const newcomer = await createPerson(t, orgA);
    const username = (
      await t.vault.db
        .selectFrom('users')
        .select('username')
        .where('id', '=', newcomer)
        .executeTakeFirstOrThrow()
    ).username;
    const groupOfA = await groupId(t, t.adminToken, 'A only');
    const before = await t.vault.db.selectFrom('organization_invitations').select('id').execute();
    for (const payload of [
      { username, roleId: `rol_${'0'.repeat(26)}` },
      { username, roleId: 'helpdesk', deviceGroupIds: [groupOfA] },
    ]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/api/organization/invitations',
        headers: bearer(adminB),
        payload,
      });
      expect(res.statusCode, JSON.stringify(payload)).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
    const after = await t.vault.db.selectFrom('organization_invitations').select('id').execute();
    expect(after).toHaveLength(before.length);
  });

  it('invites with a group-scoped role (through the old URL too); validates the body', async () => {
    const newcomer = await personWithPassword(t, orgA);
    const groupB = await groupId(t, adminB, 'B branch');
    const joined = await joinByInvitation(t, adminB, newcomer, 'helpdesk', [groupB]);
    expect(joined.roleAssignment).toMatchObject({ roleId: 'helpdesk', deviceGroupIds: [groupB] });
    for (const url of ['/api/organization/invitations', '/api/organization/members']) {
      for (const payload of [
        { username: newcomer.username },
        { username: '', roleId: 'helpdesk' },
        { username: newcomer.username, roleId: 'helpdesk', permissions: ['*'] },
        { username: 'x'.repeat(101), roleId: 'helpdesk' },
      ]) {
        const bad = await t.app.inject({ method: 'POST', url, headers: bearer(adminB), payload });
        expect(bad.statusCode, `${url} ${JSON.stringify(payload)}`).toBe(400);
        expect(bad.json().error.code).toBe('VALIDATION_FAILED');
      }
    }
  });
});

describe('one person, two organizations, different roles', () => {
  let inA: CookieSession;
  let inB: CookieSession;

  it('signs in to A and sees both organizations with the roles held in each', async () => {
    inA = await signIn(t.app, tech);
    expect(inA.organizationId).toBe(orgA);
    const res = await t.app.inject({ url: '/api/me/organizations', headers: inA.read });
    expect(res.statusCode, res.body).toBe(200);
    const byId = Object.fromEntries(
      (res.json().organizations as { organizationId: string; current: boolean; roleIds: string[] }[]).map(
        (o) => [o.organizationId, { current: o.current, roleIds: o.roleIds }],
      ),
    );
    expect(byId).toEqual({
      [orgA]: { current: true, roleIds: ['device-administrator'] },
      [orgB]: { current: false, roleIds: ['security-reader'] },
    });
  });

  it('in A: A’s device is readable and disclosable; B’s IDs answer 404', async () => {
    expect(
      (await t.app.inject({ url: `/api/devices/${deviceA.deviceId}`, headers: inA.read })).statusCode,
    ).toBe(200);
    const other = await t.app.inject({ url: `/api/devices/${deviceB.deviceId}`, headers: inA.read });
    expect(other.statusCode).toBe(404);
    expect(other.json().error.code).toBe('DEVICE_NOT_FOUND');
    const otherKey = await t.app.inject({
      url: `/api/recovery-keys/${deviceB.keyRecordId}`,
      headers: inA.read,
    });
    expect(otherKey.statusCode).toBe(404);
    const discloseOther = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${deviceB.keyRecordId}/disclose`,
      remoteAddress: nextAddress(),
      headers: inA.write,
      payload: { reason: 'wrong tenant' },
    });
    expect(discloseOther.statusCode).toBe(404);
    expect(discloseOther.json().error.code).toBe('KEY_NOT_FOUND');
    expect(discloseOther.body).not.toContain(deviceB.password);
    const byPrefix = await t.app.inject({
      url: `/api/recovery-keys?keyIdPrefix=${deviceB.keyId.slice(0, 8)}`,
      headers: inA.read,
    });
    expect(byPrefix.json().recoveryKeys).toEqual([]);
    const byName = await t.app.inject({ url: `/api/devices?name=${deviceB.name}`, headers: inA.read });
    expect(byName.json().devices).toEqual([]);
  });

  it('switching to a non-member organization answers 404', async () => {
    const orgC = await createOrganization(t, 'Customer C');
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/auth/switch-organization',
      headers: inA.write,
      payload: { organizationId: orgC },
    });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('NOT_FOUND');
  });

  it('switches to B: the old session is gone, the new one acts with B’s role only', async () => {
    inB = await switchOrganization(t.app, inA, orgB);
    expect(inB.cookie).not.toBe(inA.cookie);
    expect(inB.csrf).not.toBe(inA.csrf);
    const old = await t.app.inject({ url: '/api/me/organizations', headers: inA.read });
    expect(old.statusCode).toBe(401);
    const switched = await auditRows(t, 'session.organization-switched');
    expect(switched.at(-1)).toMatchObject({ organization_id: orgB, actor_id: tech.userId });
    expect(switched.at(-1)!.details.fromOrganizationId).toBe(orgA);

    const own = await t.app.inject({ url: `/api/devices/${deviceB.deviceId}`, headers: inB.read });
    expect(own.statusCode, own.body).toBe(200);
    // Security Reader in B: metadata yes, disclosure no (403: the permission is missing here).
    const disclose = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${deviceB.keyRecordId}/disclose`,
      remoteAddress: nextAddress(),
      headers: inB.write,
      payload: { reason: 'not allowed here' },
    });
    expect(disclose.statusCode).toBe(403);
    expect(disclose.json().error.code).toBe('FORBIDDEN');
  });

  it('in B: A’s IDs answer 404 and lists hold only B’s data', async () => {
    for (const url of [`/api/devices/${deviceA.deviceId}`, `/api/recovery-keys/${deviceA.keyRecordId}`]) {
      const res = await t.app.inject({ url, headers: inB.read });
      expect(res.statusCode, url).toBe(404);
    }
    const byName = await t.app.inject({ url: `/api/devices?name=${deviceA.name}`, headers: inB.read });
    expect(byName.json().devices).toEqual([]);
    const keysOfA = await t.app.inject({
      url: `/api/recovery-keys?deviceId=${deviceA.deviceId}`,
      headers: inB.read,
    });
    expect(keysOfA.json().recoveryKeys).toEqual([]);
    const audit = await t.app.inject({ url: '/api/audit-log?limit=500', headers: inB.read });
    expect(audit.statusCode, audit.body).toBe(200);
    const entries = audit.json().entries as { id: string }[];
    expect(entries.length).toBeGreaterThan(0);
    const rowsOfB = await t.vault.db
      .selectFrom('audit_log')
      .select('id')
      .where('organization_id', '=', orgB)
      .execute();
    expect(new Set(entries.map((e) => e.id))).toEqual(new Set(rowsOfB.map((r) => r.id)));
    expect(JSON.stringify(entries)).not.toContain(deviceA.deviceId);
  });

  it('switching back to A restores A’s role', async () => {
    const back = await switchOrganization(t.app, inB, orgA);
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-keys/${deviceA.keyRecordId}/disclose`,
      remoteAddress: nextAddress(),
      headers: back.write,
      payload: { reason: 'back in A' },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().recoveryPassword).toBe(deviceA.password);
    const rows = await auditRows(t, 'recovery-key.disclosed', deviceA.keyRecordId);
    expect(rows.map((r) => r.organization_id)).toEqual([orgA]);
  });
});

describe('suspended in one organization, a member of another', () => {
  it('can still see its organizations, move to the other one and sign out everywhere; nothing else', async () => {
    await t.vault.db
      .insertInto('account_suspensions')
      .values({
        id: 'sus_multiorgtest0000000000000',
        organization_id: orgA,
        subject_type: 'user',
        subject_id: tech.userId,
        reason: 'disclosure_threshold',
        created_at: new Date().toISOString(),
        lifted_at: null,
      })
      .execute();
    const inA = await signIn(t.app, tech);
    expect(inA.organizationId).toBe(orgA);
    const refused = await t.app.inject({ url: '/api/devices?name=PC&match=prefix', headers: inA.read });
    expect(refused.statusCode).toBe(403);
    expect(refused.json().error.code).toBe('ACCOUNT_SUSPENDED');

    // The portal still loads (who am I), and offers the other organization.
    const me = await t.app.inject({ url: '/api/auth/me', headers: inA.read });
    expect(me.statusCode, me.body).toBe(200);
    const mine = await t.app.inject({ url: '/api/me/organizations', headers: inA.read });
    expect(mine.statusCode, mine.body).toBe(200);
    expect(
      mine
        .json()
        .organizations.map((o: { organizationId: string }) => o.organizationId)
        .sort(),
    ).toEqual([orgA, orgB].sort());
    const inB = await switchOrganization(t.app, inA, orgB);
    const devicesInB = await t.app.inject({ url: '/api/devices?name=PC&match=prefix', headers: inB.read });
    expect(devicesInB.statusCode, devicesInB.body).toBe(200);

    // Back in A the suspension applies again; ending every session is always possible.
    const againInA = await switchOrganization(t.app, inB, orgA);
    expect(
      (await t.app.inject({ url: '/api/devices?name=PC&match=prefix', headers: againInA.read })).statusCode,
    ).toBe(403);
    const out = await t.app.inject({
      method: 'POST',
      url: '/api/auth/sign-out-everywhere',
      headers: againInA.write,
    });
    expect(out.statusCode, out.body).toBe(200);
    expect((await t.app.inject({ url: '/api/me/organizations', headers: againInA.read })).statusCode).toBe(
      401,
    );
  });
});
