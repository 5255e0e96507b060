// Access test fixtures for people who sign in (cookie + CSRF), audit rows, a movable clock and an alert sink.
import { expect } from 'vitest';
import type { App } from '../../src/app-types.js';
import type { AlertSink, SecurityAlert } from '../../src/modules/access/alerts.js';
import { bearer, randomKeyId, type TestVault } from '../helpers.js';
import { nextAddress } from './support.js';

export interface Person {
  userId: string;
  username: string;
  password: string;
}

/** A user with a known password, a member of `organizationId` with no role yet. */
export async function personWithPassword(t: TestVault, organizationId: string): Promise<Person> {
  const username = `p-${randomKeyId().slice(0, 8).toLowerCase()}`;
  const password = `long enough password ${randomKeyId()}`;
  const { userId } = await t.vault.services.identity.createUser({
    organizationId,
    username,
    password,
    permissions: [],
    mustChangePassword: false,
  });
  return { userId, username, password };
}

export interface CookieSession {
  organizationId: string;
  cookie: string;
  csrf: string;
  /** Headers for a read (cookie only). */
  read: Record<string, string>;
  /** Headers for a change: the cookie and the session's CSRF token, as the identity module requires. */
  write: Record<string, string>;
}

function sessionOf(res: { headers: Record<string, unknown>; json(): unknown }): CookieSession {
  const setCookie = ([] as unknown[]).concat(res.headers['set-cookie'] ?? []).map(String);
  const cookie = setCookie.find((c) => c.startsWith('bdv_session='))?.split(';')[0] ?? '';
  const body = res.json() as { csrfToken?: string; organizationId: string };
  expect(cookie, 'a session cookie').not.toBe('');
  return {
    organizationId: body.organizationId,
    cookie,
    csrf: body.csrfToken ?? '',
    read: { cookie },
    write: { cookie, 'x-csrf-token': body.csrfToken ?? '' },
  };
}

/** Signs in over HTTP (from a fresh address, so the sign-in rate limit never couples tests). */
export async function signIn(app: App, person: Person): Promise<CookieSession> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/auth/sign-in',
    remoteAddress: nextAddress(),
    payload: { username: person.username, password: person.password },
  });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.json().state).toBe('active');
  return sessionOf(res);
}

/** Switches the cookie session to another organization; the CSRF token changes with the session. */
export async function switchOrganization(
  app: App,
  session: CookieSession,
  organizationId: string,
): Promise<CookieSession> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/auth/switch-organization',
    headers: session.write,
    payload: { organizationId },
  });
  expect(res.statusCode, res.body).toBe(200);
  const next = sessionOf(res);
  const state = await app.inject({ url: '/api/auth/session', headers: { cookie: next.cookie } });
  expect(state.statusCode, state.body).toBe(200);
  const csrf = state.json().csrfToken as string;
  return { ...next, organizationId, csrf, write: { cookie: next.cookie, 'x-csrf-token': csrf } };
}

/**
 * The organization's administrator invites the person over HTTP and the person, signed in, finds
 * the invitation and accepts it: the one way an existing account joins another organization.
 */
export async function joinByInvitation(
  t: TestVault,
  adminToken: string,
  person: Person,
  roleId: string,
  deviceGroupIds?: string[],
) {
  const invited = await t.app.inject({
    method: 'POST',
    url: '/api/organization/invitations',
    headers: bearer(adminToken),
    payload: { username: person.username, roleId, ...(deviceGroupIds ? { deviceGroupIds } : {}) },
  });
  expect(invited.statusCode, invited.body).toBe(202);
  const session = await signIn(t.app, person);
  const mine = await t.app.inject({ url: '/api/auth/invitations', headers: session.read });
  expect(mine.statusCode, mine.body).toBe(200);
  const invitationId = invited.json().id as string;
  expect((mine.json().invitations as { id: string }[]).map((i) => i.id)).toContain(invitationId);
  const accepted = await t.app.inject({
    method: 'POST',
    url: `/api/auth/invitations/${invitationId}/accept`,
    headers: session.write,
  });
  expect(accepted.statusCode, accepted.body).toBe(200);
  return {
    invitationId,
    session,
    ...(accepted.json() as { organizationId: string; roleAssignment: { id: string } }),
  };
}

/** Sets the owning user of a device through the API, as an administrator would. */
export async function setOwner(
  t: TestVault,
  adminToken: string,
  deviceId: string,
  ownerUserId: string | null,
) {
  const res = await t.app.inject({
    method: 'PUT',
    url: `/api/devices/${deviceId}/owner`,
    headers: bearer(adminToken),
    payload: { ownerUserId },
  });
  expect(res.statusCode, res.body).toBe(204);
}

export async function patchSettings(t: TestVault, adminToken: string, changes: Record<string, unknown>) {
  const res = await t.app.inject({
    method: 'PATCH',
    url: '/api/organization/settings',
    headers: bearer(adminToken),
    payload: changes,
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

export interface AuditRow {
  id: string;
  organization_id: string | null;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  reason: string | null;
  details: Record<string, unknown>;
}

/** Audit rows with this action (and target, when given), oldest first, read from the database itself. */
export async function auditRows(t: TestVault, action: string, targetId?: string): Promise<AuditRow[]> {
  let query = t.vault.db.selectFrom('audit_log').selectAll().where('action', '=', action);
  if (targetId !== undefined) query = query.where('target_id', '=', targetId);
  const rows = await query.orderBy('seq').execute();
  return rows.map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
}

export interface MovableClock {
  now(): Date;
  advance(ms: number): void;
}

export function movableClock(start: string): MovableClock {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    advance: (ms) => {
      current += ms;
    },
  };
}

/** An alert sink that remembers what it was handed (the notifications module will implement it). */
export function recordingAlerts(): AlertSink & { alerts: SecurityAlert[] } {
  const alerts: SecurityAlert[] = [];
  return {
    alerts,
    emit: async (alert) => {
      alerts.push(alert);
    },
  };
}
