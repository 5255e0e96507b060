// Access test fixtures: people with roles, their personal tokens, devices with a key in a given group.
import type { InjectOptions } from 'fastify';
import { expect } from 'vitest';
import { bearer, escrowPayload, newKey, randomKeyId, type TestVault } from '../helpers.js';

export type RoleKey =
  | 'organization-administrator'
  | 'device-administrator'
  | 'helpdesk'
  | 'helpdesk-advanced'
  | 'security-reader'
  | 'report-reader';

export const ROLE_KEYS: RoleKey[] = [
  'organization-administrator',
  'device-administrator',
  'helpdesk',
  'helpdesk-advanced',
  'security-reader',
  'report-reader',
];

let addressCounter = 1;
/** A distinct client address per caller, so per-address disclosure limits do not couple tests. */
export function nextAddress(): string {
  addressCounter += 1;
  return `10.${(addressCounter >> 16) & 255}.${(addressCounter >> 8) & 255}.${addressCounter & 255}`;
}

/** An admin service token for an organization (the operator at the console made it). */
export async function adminTokenFor(t: TestVault, organizationId: string): Promise<string> {
  const created = await t.vault.services.apiTokens.createApiToken({
    organizationId,
    name: `admin ${randomKeyId().slice(0, 6)}`,
    permissions: ['*'],
    creatorPermissions: undefined,
    actor: { type: 'cli', id: null },
  });
  return created.token;
}

export async function createOrganization(t: TestVault, name: string): Promise<string> {
  const id = `org_${randomKeyId()
    .replace(/-/g, '')
    .toLowerCase()
    .slice(0, 26)
    .replace(/[ilou]/g, '0')}`;
  await t.vault.services.organizations.insert({ id, name, created_at: new Date().toISOString() });
  return id;
}

/** A user who is a member of the organization, with no role yet. */
export async function createPerson(
  t: TestVault,
  organizationId: string,
  username = `u-${randomKeyId().slice(0, 8)}`,
) {
  const { userId } = await t.vault.services.identity.createUser({
    organizationId,
    username,
    password: `long enough password ${randomKeyId()}`,
    permissions: [],
    mustChangePassword: false,
  });
  return userId;
}

export async function assignRole(
  t: TestVault,
  organizationId: string,
  userId: string,
  roleId: string,
  deviceGroupIds?: string[],
) {
  return t.vault.services.access.createAssignment(
    organizationId,
    { roleId, userId, ...(deviceGroupIds ? { deviceGroupIds } : {}) },
    { type: 'cli', id: null },
  );
}

/**
 * An existing account joins another organization the only way there is: the organization invites it
 * (as the operator at the console) and the account accepts. Returns the role assignment it got.
 */
export async function joinOrganization(
  t: TestVault,
  organizationId: string,
  userId: string,
  roleId: string,
  deviceGroupIds?: string[],
) {
  const { username } = await t.vault.db
    .selectFrom('users')
    .select('username')
    .where('id', '=', userId)
    .executeTakeFirstOrThrow();
  const invitation = await t.vault.services.invitations.invite(
    organizationId,
    { username, roleId, ...(deviceGroupIds ? { deviceGroupIds } : {}) },
    { type: 'cli', id: null },
  );
  const accepted = await t.vault.services.invitations.accept(userId, invitation.id);
  return accepted.roleAssignment;
}

/** A personal token acting as the user, unbounded by its own grants (`*`): it shows the user's rights. */
export async function personalToken(
  t: TestVault,
  organizationId: string,
  userId: string,
  options: { permissions?: string[]; deviceGroupIds?: string[] } = {},
) {
  const created = await t.vault.services.apiTokens.createApiToken({
    organizationId,
    name: `personal ${randomKeyId().slice(0, 6)}`,
    permissions: options.permissions ?? ['*'],
    deviceGroupIds: options.deviceGroupIds,
    kind: 'personal',
    createdByUserId: userId,
    creatorPermissions: undefined,
    actor: { type: 'cli', id: null },
  });
  return created;
}

export async function groupId(t: TestVault, adminToken: string, name: string): Promise<string> {
  const res = await t.app.inject({ url: '/api/device-groups', headers: bearer(adminToken) });
  const group = (res.json().deviceGroups as { id: string; name: string }[]).find((g) => g.name === name);
  if (group) return group.id;
  const created = await t.app.inject({
    method: 'POST',
    url: '/api/device-groups',
    headers: bearer(adminToken),
    payload: { name },
  });
  expect(created.statusCode, created.body).toBe(201);
  return created.json().id;
}

/** Enrolls a device in the token's organization (optionally into a group) and escrows one key. */
export async function deviceWithKey(t: TestVault, adminToken: string, groupName?: string) {
  const name = `PC-${randomKeyId().slice(0, 8)}`;
  const created = await t.app.inject({
    method: 'POST',
    url: '/api/enrollment-tokens',
    headers: bearer(adminToken),
    payload: { maxUses: 1, ...(groupName ? { deviceGroupName: groupName } : {}) },
  });
  expect(created.statusCode, created.body).toBe(201);
  const enrolled = await t.app.inject({
    method: 'POST',
    url: '/api/escrow/enroll',
    // Enrollment is rate-limited per address; fixtures come from many "machines".
    remoteAddress: nextAddress(),
    headers: bearer(created.json().enrollmentToken),
    payload: { device: { name, os: 'Windows 11 Pro' } },
  });
  expect(enrolled.statusCode, enrolled.body).toBe(201);
  const key = newKey();
  const escrow = await t.app.inject({
    method: 'POST',
    url: '/api/escrow/recovery-keys',
    headers: bearer(enrolled.json().deviceCredential),
    payload: escrowPayload(randomKeyId(), [key]),
  });
  expect(escrow.statusCode, escrow.body).toBe(200);
  return {
    name,
    deviceId: enrolled.json().deviceId as string,
    credential: enrolled.json().deviceCredential as string,
    keyRecordId: escrow.json().volumes[0].recoveryKeys[0].id as string,
    keyId: key.keyId,
    password: key.password,
  };
}

export interface SecurityCase {
  request: InjectOptions;
  /** A credential that is allowed (the happy status is not checked here). */
  allowed?: string;
  /** A credential of the same organization lacking the route's permission: 403. */
  missingPermission?: string;
  /** A fully privileged credential of another organization: 404 (or an empty list). */
  otherOrganization?: string;
  otherOrganizationStatus?: number;
}

/**
 * The shared security checks of one route (after unkey's): no credential and a wrong credential
 * are 401, a missing permission 403, another organization's admin 404 for the same resource.
 */
export async function checkRouteSecurity(t: TestVault, c: SecurityCase) {
  const send = (headers: Record<string, string>) =>
    t.app.inject({ ...c.request, headers: { ...(c.request.headers ?? {}), ...headers } } as InjectOptions);
  const label = `${c.request.method ?? 'GET'} ${String(c.request.url)}`;
  for (const headers of [{}, bearer(`bdv_at_${'0'.repeat(52)}`)]) {
    const res = await send(headers);
    expect(res.statusCode, `${label} without a valid credential`).toBe(401);
  }
  if (c.missingPermission) {
    const res = await send(bearer(c.missingPermission));
    expect(res.statusCode, `${label} missing permission`).toBe(403);
    expect(res.json().error.code).toBe('FORBIDDEN');
  }
  if (c.otherOrganization) {
    const res = await send(bearer(c.otherOrganization));
    expect(res.statusCode, `${label} from another organization`).toBe(c.otherOrganizationStatus ?? 404);
  }
}
