// The account takeover an organization the account joined could do, step by step, now refused;
// what that organization can still do (suspend, remove the membership); the migration's backfill.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Migrator, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/database.js';
import { migrateToLatest, migrationProvider } from '../../src/db/migrations.js';
import { bearer, createTestVault, type TestVault } from '../helpers.js';
import { testDatabase, testDialect } from '../support/postgres.js';
import {
  auditRows,
  joinByInvitation,
  personWithPassword,
  signIn,
  switchOrganization,
  type CookieSession,
  type Person,
} from './people.js';
import { adminTokenFor, assignRole, createOrganization, createPerson } from './support.js';

let t: TestVault;
let orgA: string;
let orgB: string;
let adminB: string;
/** Homed in A (an MSP technician), also a member of B by an invitation it accepted. */
let tech: Person;
let techInA: CookieSession;

beforeAll(async () => {
  t = await createTestVault();
  orgA = t.organizationId;
  orgB = await createOrganization(t, 'Customer B');
  adminB = await adminTokenFor(t, orgB);
  tech = await personWithPassword(t, orgA);
  await assignRole(t, orgA, tech.userId, 'device-administrator');
  await t.vault.db
    .updateTable('users')
    .set({ email: 'tech@msp.example' })
    .where('id', '=', tech.userId)
    .execute();
  await joinByInvitation(t, adminB, tech, 'helpdesk');
  techInA = await signIn(t.app, tech);
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const call = (token: string, method: 'POST' | 'PATCH', url: string, payload?: Record<string, unknown>) =>
  t.app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

async function usersSeenBy(token: string) {
  const res = await t.app.inject({ url: '/api/users', headers: bearer(token) });
  expect(res.statusCode, res.body).toBe(200);
  return new Map(
    (res.json().users as { userId: string; managedHere: boolean }[]).map((u) => [u.userId, u.managedHere]),
  );
}

describe('an organization the account joined cannot take it over', () => {
  it('records the home organization where the account was created', async () => {
    const row = await t.vault.db
      .selectFrom('users')
      .select('home_organization_id')
      .where('id', '=', tech.userId)
      .executeTakeFirstOrThrow();
    expect(row.home_organization_id).toBe(orgA);
    const bootstrapAdmin = await t.vault.db
      .selectFrom('users')
      .select('home_organization_id')
      .where('username', '=', 'admin')
      .executeTakeFirstOrThrow();
    expect(bootstrapAdmin.home_organization_id).toBe(orgA);
  });

  it('GET /api/users tells each organization whether it manages the account', async () => {
    const ownOfB = await createPerson(t, orgB);
    const inB = await usersSeenBy(adminB);
    expect(inB.get(tech.userId)).toBe(false);
    expect(inB.get(ownOfB)).toBe(true);
    expect((await usersSeenBy(t.adminToken)).get(tech.userId)).toBe(true);
  });

  it('B cannot reset the password, change the e-mail, disable, enable or sign the account out everywhere', async () => {
    const steps = [
      call(adminB, 'POST', `/api/users/${tech.userId}/reset-password`),
      call(adminB, 'PATCH', `/api/users/${tech.userId}`, { email: 'attacker@b.example' }),
      call(adminB, 'PATCH', `/api/users/${tech.userId}`, { displayName: 'Not the technician' }),
      call(adminB, 'POST', `/api/users/${tech.userId}/disable`),
      call(adminB, 'POST', `/api/users/${tech.userId}/enable`),
      call(adminB, 'POST', `/api/users/${tech.userId}/revoke-sessions`),
    ];
    for (const res of await Promise.all(steps)) {
      expect(res.statusCode, res.body).toBe(409);
      expect(res.json().error.code).toBe('ACCOUNT_MANAGED_ELSEWHERE');
      expect(res.json().error.message).toMatch(/managed by another organization/);
      expect(res.json().error.message).toMatch(/remove the member or suspend/);
      expect(res.body).not.toMatch(/oneTimePassword/);
    }
    const user = await t.vault.db
      .selectFrom('users')
      .selectAll()
      .where('id', '=', tech.userId)
      .executeTakeFirstOrThrow();
    expect(user).toMatchObject({
      email: 'tech@msp.example',
      disabled_at: null,
      must_change_password: 0,
    });
    expect(user.display_name).not.toBe('Not the technician');
    // Nothing happened, so nothing was audited as done.
    for (const action of ['user.password-reset', 'user.updated', 'user.disabled', 'session.revoked-all']) {
      expect(await auditRows(t, action, tech.userId), action).toEqual([]);
    }
    // The technician's session still works and the password still signs in.
    expect((await t.app.inject({ url: '/api/auth/me', headers: techInA.read })).statusCode).toBe(200);
    const again = await signIn(t.app, tech);
    expect(again.organizationId).toBe(orgA);
  });

  it('also from a signed-in administrator of B, not only a token', async () => {
    const adminOfB = await personWithPassword(t, orgB);
    await assignRole(t, orgB, adminOfB.userId, 'organization-administrator');
    const session = await signIn(t.app, adminOfB);
    const res = await t.app.inject({
      method: 'POST',
      url: `/api/users/${tech.userId}/reset-password`,
      headers: session.write,
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('ACCOUNT_MANAGED_ELSEWHERE');
  });

  it('an account that is not a member stays a 404, whoever manages it', async () => {
    const onlyInA = await createPerson(t, orgA);
    for (const res of [
      await call(adminB, 'POST', `/api/users/${onlyInA}/reset-password`),
      await call(adminB, 'POST', `/api/users/${onlyInA}/disable`),
      await call(adminB, 'PATCH', `/api/users/${onlyInA}`, { email: 'x@b.example' }),
      await t.app.inject({
        method: 'DELETE',
        url: `/api/organization/members/${onlyInA}`,
        headers: bearer(adminB),
      }),
      await call(adminB, 'POST', '/api/account-suspensions', { userId: onlyInA, reason: 'x' }),
    ]) {
      expect(res.statusCode, res.body).toBe(404);
      expect(res.json().error.code).toBe('NOT_FOUND');
    }
  });

  it('the home organization keeps every account-wide action', async () => {
    const other = await personWithPassword(t, orgA);
    await joinByInvitation(t, adminB, other, 'report-reader');
    const reset = await call(t.adminToken, 'POST', `/api/users/${other.userId}/reset-password`);
    expect(reset.statusCode, reset.body).toBe(200);
    expect(reset.json().oneTimePassword).toEqual(expect.any(String));
    expect(
      (await call(t.adminToken, 'PATCH', `/api/users/${other.userId}`, { email: 'o@a.example' })).statusCode,
    ).toBe(204);
    expect((await call(t.adminToken, 'POST', `/api/users/${other.userId}/revoke-sessions`)).statusCode).toBe(
      200,
    );
    expect((await call(t.adminToken, 'POST', `/api/users/${other.userId}/disable`)).statusCode).toBe(204);
    expect((await call(t.adminToken, 'POST', `/api/users/${other.userId}/enable`)).statusCode).toBe(204);
  });
});

describe('what every organization the account belongs to can still do', () => {
  it('B suspends the technician in B only; A is unaffected; B lifts it', async () => {
    const res = await call(adminB, 'POST', '/api/account-suspensions', {
      userId: tech.userId,
      reason: 'contract paused',
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({
      subjectType: 'user',
      subjectId: tech.userId,
      reason: 'contract paused',
    });
    const audited = await auditRows(t, 'account.suspended', tech.userId);
    expect(audited.map((r) => [r.organization_id, r.actor_type])).toEqual([[orgB, 'api-token']]);
    const twice = await call(adminB, 'POST', '/api/account-suspensions', {
      userId: tech.userId,
      reason: 'x',
    });
    expect(twice.statusCode).toBe(409);

    const inA = await signIn(t.app, tech);
    const fine = await t.app.inject({ url: '/api/devices?name=PC&match=prefix', headers: inA.read });
    expect(fine.statusCode, fine.body).toBe(200);
    const inB = await switchOrganization(t.app, inA, orgB);
    const refused = await t.app.inject({ url: '/api/devices?name=PC&match=prefix', headers: inB.read });
    expect(refused.json().error.code).toBe('ACCOUNT_SUSPENDED');

    const lifted = await t.app.inject({
      method: 'DELETE',
      url: `/api/account-suspensions/${res.json().id}`,
      headers: bearer(adminB),
    });
    expect(lifted.statusCode).toBe(204);
    const back = await t.app.inject({ url: '/api/devices?name=PC&match=prefix', headers: inB.read });
    expect(back.statusCode, back.body).toBe(200);
  });

  it('A cannot remove the account from its home organization (it disables it instead)', async () => {
    const res = await t.app.inject({
      method: 'DELETE',
      url: `/api/organization/members/${tech.userId}`,
      headers: bearer(t.adminToken),
    });
    expect(res.statusCode).toBe(409);
    expect(res.json().error.code).toBe('CONFLICT');
    expect(res.json().error.message).toMatch(/disable/);
  });

  it('B removes the technician from B: roles and sessions there end; the account and A stay', async () => {
    const inA = await signIn(t.app, tech);
    const inB = await switchOrganization(t.app, await signIn(t.app, tech), orgB);
    const res = await t.app.inject({
      method: 'DELETE',
      url: `/api/organization/members/${tech.userId}`,
      headers: bearer(adminB),
    });
    expect(res.statusCode, res.body).toBe(204);
    expect((await auditRows(t, 'membership.removed', tech.userId)).map((r) => r.organization_id)).toEqual([
      orgB,
    ]);
    expect((await t.app.inject({ url: '/api/auth/me', headers: inB.read })).statusCode).toBe(401);
    const mine = await t.app.inject({ url: '/api/me/organizations', headers: inA.read });
    expect(mine.statusCode, mine.body).toBe(200);
    expect(mine.json().organizations.map((o: { organizationId: string }) => o.organizationId)).toEqual([
      orgA,
    ]);
    const assignments = await t.app.inject({ url: '/api/role-assignments', headers: bearer(adminB) });
    expect(
      (assignments.json().roleAssignments as { userId: string | null }[]).filter(
        (a) => a.userId === tech.userId,
      ),
    ).toEqual([]);
    expect((await usersSeenBy(adminB)).has(tech.userId)).toBe(false);
    const again = await t.app.inject({
      method: 'DELETE',
      url: `/api/organization/members/${tech.userId}`,
      headers: bearer(adminB),
    });
    expect(again.statusCode).toBe(404);
    // Joining again takes a new invitation and the account's consent.
    await joinByInvitation(t, adminB, tech, 'report-reader');
  });

  it('an account an older writer left without a home is managed by its earliest membership', async () => {
    const legacy = await personWithPassword(t, orgA);
    await joinByInvitation(t, adminB, legacy, 'report-reader');
    await t.vault.db
      .updateTable('users')
      .set({ home_organization_id: null })
      .where('id', '=', legacy.userId)
      .execute();
    expect((await usersSeenBy(adminB)).get(legacy.userId)).toBe(false);
    expect((await usersSeenBy(t.adminToken)).get(legacy.userId)).toBe(true);
    const fromB = await call(adminB, 'POST', `/api/users/${legacy.userId}/reset-password`);
    expect(fromB.json().error.code).toBe('ACCOUNT_MANAGED_ELSEWHERE');
    const fromA = await call(t.adminToken, 'POST', `/api/users/${legacy.userId}/revoke-sessions`);
    expect(fromA.statusCode, fromA.body).toBe(200);
  });
});

describe('migration 0012 backfills the home organization', () => {
  it('is the organization of each account’s earliest membership', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bdevault-home-'));
    const database = await testDatabase();
    const db =
      testDialect === 'postgres'
        ? openDatabase({ dialect: 'postgres', url: database.input.databaseUrl! })
        : openDatabase({ dialect: 'sqlite', path: join(dir, 'vault.db') });
    try {
      const migrator = new Migrator({ db, provider: migrationProvider });
      const to11 = await migrator.migrateTo('0011_audit_chain_at_commit');
      expect(to11.error).toBeUndefined();
      const at = (minute: number) => `2026-01-01T00:${String(minute).padStart(2, '0')}:00.000Z`;
      // The columns as they were before 0012.
      const raw = db as unknown as Kysely<Record<string, Record<string, unknown>>>;
      for (const [id, minute] of [
        ['org_a', 1],
        ['org_b', 2],
      ] as const) {
        await raw
          .insertInto('organizations')
          .values({ id, name: id, created_at: at(minute) })
          .execute();
      }
      const user = (id: string) => ({
        id,
        username: id,
        display_name: id,
        password_hash: 'x',
        must_change_password: 0,
        created_at: at(3),
        updated_at: at(3),
        disabled_at: null,
      });
      for (const id of ['usr_tech', 'usr_b', 'usr_none'])
        await raw.insertInto('users').values(user(id)).execute();
      for (const [id, org, userId, minute] of [
        ['mem_1', 'org_b', 'usr_tech', 9],
        ['mem_2', 'org_a', 'usr_tech', 4],
        ['mem_3', 'org_b', 'usr_b', 5],
      ] as const) {
        await raw
          .insertInto('memberships')
          .values({ id, organization_id: org, user_id: userId, permissions: '[]', created_at: at(minute) })
          .execute();
      }
      await migrateToLatest(db);
      const rows = await db
        .selectFrom('users')
        .select(['id', 'home_organization_id'])
        .orderBy('id')
        .execute();
      expect(rows).toEqual([
        { id: 'usr_b', home_organization_id: 'org_b' },
        { id: 'usr_none', home_organization_id: null },
        { id: 'usr_tech', home_organization_id: 'org_a' },
      ]);
      expect(await db.selectFrom('organization_invitations').selectAll().execute()).toEqual([]);
    } finally {
      await db.destroy();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
