// Generated role x route x target matrix: expectations come from the table below, not from the server's role code.
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeTableOf } from '../../src/app.js';
import { bearer, createTestVault, escrowPayload, newKey, randomKeyId, type TestVault } from '../helpers.js';
import {
  adminTokenFor,
  assignRole,
  checkRouteSecurity,
  createOrganization,
  createPerson,
  deviceWithKey,
  groupId,
  joinOrganization,
  nextAddress,
  personalToken,
  ROLE_KEYS,
  type RoleKey,
} from './support.js';
import { personWithPassword, setOwner, signIn, type CookieSession, type Person } from './people.js';

// Who may do what, as a reader of the issue would write it down (deliberately not imported from src).
const ADMIN: RoleKey[] = ['organization-administrator'];
const DEVICE_READERS: RoleKey[] = [
  'organization-administrator',
  'device-administrator',
  'helpdesk',
  'helpdesk-advanced',
  'security-reader',
];
const DEVICE_WRITERS: RoleKey[] = ['organization-administrator', 'device-administrator'];
const KEY_DISCLOSERS: RoleKey[] = ['organization-administrator', 'device-administrator'];
const KEY_ID_LOOKUP: RoleKey[] = ['organization-administrator', 'device-administrator', 'helpdesk-advanced'];
const AUDIT_READERS: RoleKey[] = ['organization-administrator', 'security-reader'];
const ROTATION_REQUESTERS: RoleKey[] = [
  'organization-administrator',
  'device-administrator',
  'helpdesk',
  'helpdesk-advanced',
];
const REPORT_READERS: RoleKey[] = ['organization-administrator', 'security-reader', 'report-reader'];
const EVERYONE: RoleKey[] = [...ROLE_KEYS];
const NOBODY: RoleKey[] = [];
const CASE_WORKERS: RoleKey[] = ['organization-administrator', 'helpdesk', 'helpdesk-advanced'];

type Where = 'in' | 'out' | 'other';
/**
 * device: a device or key route (out of scope or other organization: 404).
 * org: an organization-level route; a group-scoped assignment grants none of it (403); with a
 *   target, another organization's target is 404.
 * list: answers 200; the target is listed only when in scope.
 * any: allowed whatever the caller's scope (a device-scoped permission on no device yet).
 * own: self-service; nobody owns the targets, so device/key targets are 404 and lists are empty.
 */
type Level = 'device' | 'org' | 'list' | 'own' | 'any';

interface Target {
  /** The target's organization (the first one for `in` and `out`, the other one for `other`). */
  organizationId: string;
  deviceId: string;
  keyRecordId: string;
  keyId: string;
  /** The recovery password of the target key (what a disclosure must return). */
  password: string;
  name: string;
  groupId: string;
  roleId: string;
  assignmentId: string;
  apiTokenId: string;
  suspensionId: string;
  /** An open on-demand rotation of the target's key. */
  rotationId: string;
  caseId: string;
  webhookId: string;
  /** A member whose account the other organization manages (it joined by invitation). */
  guestId: string;
  /** A pending invitation of the target's organization. */
  invitationId: string;
  /** A member whose account the target's organization manages (its home). */
  userId: string;
  /** The device's id on the Graph-compatible API (a GUID). */
  graphDeviceId: string;
  /** An SSO provider and an LDAP directory of the target's organization. */
  oidcSlug: string;
  ldapSlug: string;
  /** An unused enrollment token of the target's organization. */
  enrollmentTokenId: string;
}

interface Expectation {
  allow: RoleKey[];
  level: Level;
  ok: number;
  /**
   * Mutating routes get a fresh target per call: a whole new one (`true`), or only the parts a
   * builder makes anew over the shared target (cheaper, for routes that touch one thing).
   */
  fresh?: boolean | ((where: Where) => Promise<Partial<Target>>);
  /** Whether the target has a meaning (org routes without one ignore `other`). */
  targeted?: boolean;
  /** A targeted route whose other-organization answer is not 404, with the reason beside it. */
  otherStatus?: number;
  /** The caller is given for routes whose request carries its own credential (the OAuth token endpoint). */
  request: (target: Target, caller?: Caller) => InjectOptions;
  /** For lists: does the body contain the target? (org-level lists: everything of the caller's organization.) */
  lists?: (body: unknown, target: Target) => boolean;
  /** Routes for a different kind of caller (sessions only, devices only): every token is refused with this. */
  tokenStatus?: number;
  /** State the route needs before each call (e.g. a configured directory sync). */
  setup?: () => Promise<void>;
  /** Graph-compatible routes: every refusal is an OData error with Graph's code for its status. */
  odata?: boolean;
  /** More about an allowed answer; returns what is wrong, if anything. */
  check?: (
    res: LightMyRequestResponse,
    target: Target,
    where: Where,
    caller: Caller,
  ) => string | undefined | Promise<string | undefined>;
}

const unique = () => randomKeyId().slice(0, 8);
const ids = (body: unknown, key: string) =>
  ((body as Record<string, { id: string }[]>)[key] ?? []).map((x) => x.id);

/** A record id of the given kind that names nothing (the id generator's shape). */
const fakeId = (prefix: string) =>
  `${prefix}_${randomKeyId()
    .replace(/-/g, '')
    .toLowerCase()
    .slice(0, 26)
    .replace(/[ilou]/g, '0')}`;

/** A browser's passkey answers in shape only (they pass validation and reach the handler). */
const FAKE_CREDENTIAL = { id: 'AAAA', rawId: 'AAAA', type: 'public-key', clientExtensionResults: {} };
const FAKE_REGISTRATION = {
  ...FAKE_CREDENTIAL,
  response: { clientDataJSON: 'e30', attestationObject: 'oA' },
};
const FAKE_ASSERTION = {
  ...FAKE_CREDENTIAL,
  response: { clientDataJSON: 'e30', authenticatorData: 'AAAA', signature: 'AAAA' },
};

/**
 * Public to the access hook, yet no anonymous route: they read the session cookie themselves
 * (signing out; the MFA steps, which also serve a session that still owes its second factor).
 */
const COOKIE_READING_ROUTES: Record<string, InjectOptions> = {
  'GET /api/auth/session': { url: '/api/auth/session' },
  'POST /api/auth/sign-out': { method: 'POST', url: '/api/auth/sign-out' },
  'GET /api/auth/mfa': { url: '/api/auth/mfa' },
  'POST /api/auth/mfa/totp/enroll': { method: 'POST', url: '/api/auth/mfa/totp/enroll' },
  'POST /api/auth/mfa/totp/confirm': {
    method: 'POST',
    url: '/api/auth/mfa/totp/confirm',
    payload: { code: '000000' },
  },
  'POST /api/auth/mfa/verify': { method: 'POST', url: '/api/auth/mfa/verify', payload: { code: '000000' } },
  'DELETE /api/auth/mfa/totp': { method: 'DELETE', url: '/api/auth/mfa/totp' },
  'DELETE /api/auth/mfa/webauthn/credentials/:credentialId': {
    method: 'DELETE',
    url: `/api/auth/mfa/webauthn/credentials/${fakeId('wac')}`,
  },
  'POST /api/auth/mfa/webauthn/registration/options': {
    method: 'POST',
    url: '/api/auth/mfa/webauthn/registration/options',
  },
  'POST /api/auth/mfa/webauthn/registration/verify': {
    method: 'POST',
    url: '/api/auth/mfa/webauthn/registration/verify',
    payload: { credential: FAKE_REGISTRATION },
  },
  'POST /api/auth/mfa/webauthn/authentication/options': {
    method: 'POST',
    url: '/api/auth/mfa/webauthn/authentication/options',
  },
  'POST /api/auth/mfa/webauthn/authentication/verify': {
    method: 'POST',
    url: '/api/auth/mfa/webauthn/authentication/verify',
    payload: { credential: FAKE_ASSERTION },
  },
};

const OIDC_PROVIDER = {
  displayName: 'Matrix IdP',
  issuer: 'https://idp.example.test',
  clientId: 'bdevault',
  enabled: false,
};
const LDAP_DIRECTORY = {
  displayName: 'Matrix directory',
  url: 'ldap://127.0.0.1:9',
  baseDn: 'DC=example,DC=test',
  enabled: false,
};
/** A sync against a closed port: a run fails at once, and the scheduler never starts one (disabled). */
const DIRECTORY_SYNC = {
  url: 'ldap://127.0.0.1:9',
  baseDn: 'DC=example,DC=test',
  bindDn: 'svc-bdevault@example.test',
  bindPassword: 'not a real bind password',
  enabled: false,
};
/** The age README's example recipient: a valid X25519 public key nobody here can decrypt for. */
const AGE_RECIPIENT = 'age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p';

/** A client-credentials request whose client is the caller's own API token (none: anonymous). */
function tokenRequest(url: string, caller?: Caller): InjectOptions {
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    scope: 'https://graph.microsoft.com/.default',
    ...(caller ? { client_id: caller.tokenId, client_secret: caller.token } : {}),
  });
  return {
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: form.toString(),
  };
}

const EXPECTATIONS: Record<string, Expectation> = {
  'GET /api/devices': {
    allow: DEVICE_READERS,
    level: 'list',
    ok: 200,
    request: (x) => ({ url: `/api/devices?name=${x.name}` }),
    lists: (b, x) => ids(b, 'devices').includes(x.deviceId),
  },
  'GET /api/devices/:deviceId': {
    allow: DEVICE_READERS,
    level: 'device',
    ok: 200,
    request: (x) => ({ url: `/api/devices/${x.deviceId}` }),
  },
  'PUT /api/devices/:deviceId/owner': {
    allow: DEVICE_WRITERS,
    level: 'device',
    ok: 204,
    fresh: true,
    request: (x) => ({
      method: 'PUT',
      url: `/api/devices/${x.deviceId}/owner`,
      payload: { ownerUserId: null },
    }),
  },
  'POST /api/devices/:deviceId/groups': {
    allow: DEVICE_WRITERS,
    level: 'device',
    ok: 200,
    fresh: true,
    // Removing it from the group the caller administers (the in-scope group) keeps the check simple.
    request: (x) => ({
      method: 'POST',
      url: `/api/devices/${x.deviceId}/groups`,
      payload: { remove: [shared.groupIn] },
    }),
  },
  'DELETE /api/devices/:deviceId': {
    allow: DEVICE_WRITERS,
    level: 'device',
    ok: 204,
    fresh: true,
    request: (x) => ({ method: 'DELETE', url: `/api/devices/${x.deviceId}` }),
  },
  'GET /api/recovery-keys': {
    allow: DEVICE_READERS,
    level: 'list',
    ok: 200,
    request: (x) => ({ url: `/api/recovery-keys?deviceId=${x.deviceId}` }),
    lists: (b, x) => ids(b, 'recoveryKeys').includes(x.keyRecordId),
  },
  'GET /api/recovery-keys?keyIdPrefix': {
    allow: KEY_ID_LOOKUP,
    level: 'list',
    ok: 200,
    request: (x) => ({ url: `/api/recovery-keys?keyIdPrefix=${x.keyId.slice(0, 8)}` }),
    lists: (b, x) => ids(b, 'recoveryKeys').includes(x.keyRecordId),
  },
  'GET /api/recovery-keys/:recoveryKeyId': {
    allow: DEVICE_READERS,
    level: 'device',
    ok: 200,
    request: (x) => ({ url: `/api/recovery-keys/${x.keyRecordId}` }),
  },
  'POST /api/recovery-keys/:recoveryKeyId/disclose': {
    allow: KEY_DISCLOSERS,
    level: 'device',
    ok: 200,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-keys/${x.keyRecordId}/disclose`,
      payload: { reason: 'matrix test' },
    }),
  },
  'GET /api/device-groups': {
    allow: DEVICE_READERS,
    level: 'list',
    ok: 200,
    request: () => ({ url: '/api/device-groups' }),
    lists: (b, x) => ids(b, 'deviceGroups').includes(x.groupId),
  },
  'POST /api/device-groups': {
    allow: ADMIN,
    level: 'org',
    ok: 201,
    request: () => ({ method: 'POST', url: '/api/device-groups', payload: { name: `Unit ${unique()}` } }),
  },
  'PATCH /api/device-groups/:deviceGroupId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 200,
    fresh: true,
    request: (x) => ({
      method: 'PATCH',
      url: `/api/device-groups/${x.groupId}`,
      payload: { name: `Unit ${unique()}` },
    }),
  },
  'DELETE /api/device-groups/:deviceGroupId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: true,
    request: (x) => ({ method: 'DELETE', url: `/api/device-groups/${x.groupId}` }),
  },
  'GET /api/device-groups/:deviceGroupId/members': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 200,
    request: (x) => ({ url: `/api/device-groups/${x.groupId}/members` }),
  },
  'POST /api/device-groups/:deviceGroupId/members': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 200,
    fresh: true,
    request: (x) => ({
      method: 'POST',
      url: `/api/device-groups/${x.groupId}/members`,
      payload: { userIds: [shared.bystander] },
    }),
  },
  'DELETE /api/device-groups/:deviceGroupId/devices/:deviceId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: true,
    request: (x) => ({ method: 'DELETE', url: `/api/device-groups/${x.groupId}/devices/${x.deviceId}` }),
  },
  'DELETE /api/device-groups/:deviceGroupId/users/:userId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: true,
    request: (x) => ({ method: 'DELETE', url: `/api/device-groups/${x.groupId}/users/${shared.bystander}` }),
  },
  'GET /api/roles': { allow: ADMIN, level: 'org', ok: 200, request: () => ({ url: '/api/roles' }) },
  'POST /api/roles': {
    allow: ADMIN,
    level: 'org',
    ok: 201,
    request: () => ({
      method: 'POST',
      url: '/api/roles',
      payload: { name: `Role ${unique()}`, permissions: ['devices:read'] },
    }),
  },
  'PATCH /api/roles/:roleId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 200,
    request: (x) => ({ method: 'PATCH', url: `/api/roles/${x.roleId}`, payload: { description: unique() } }),
  },
  'DELETE /api/roles/:roleId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: true,
    request: (x) => ({ method: 'DELETE', url: `/api/roles/${x.roleId}` }),
  },
  'GET /api/role-assignments': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/role-assignments' }),
  },
  'POST /api/role-assignments': {
    allow: ADMIN,
    level: 'org',
    ok: 201,
    request: () => ({
      method: 'POST',
      url: '/api/role-assignments',
      payload: { roleId: 'report-reader', userId: shared.bystander },
    }),
  },
  'DELETE /api/role-assignments/:roleAssignmentId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: true,
    request: (x) => ({ method: 'DELETE', url: `/api/role-assignments/${x.assignmentId}` }),
  },
  'POST /api/organization/members': {
    allow: ADMIN,
    level: 'org',
    ok: 202,
    // Each call invites a different existing user (from the other organization): never a direct add.
    request: () => ({
      method: 'POST',
      url: '/api/organization/members',
      payload: { username: shared.joiners.pop() ?? `pool-exhausted-${unique()}`, roleId: 'report-reader' },
    }),
  },
  'DELETE /api/organization/members/:userId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: true,
    request: (x) => ({ method: 'DELETE', url: `/api/organization/members/${x.guestId}` }),
  },
  'GET /api/organization/invitations': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/organization/invitations' }),
  },
  'POST /api/organization/invitations': {
    allow: ADMIN,
    level: 'org',
    ok: 202,
    request: () => ({
      method: 'POST',
      url: '/api/organization/invitations',
      payload: { username: `invitee-${unique()}`, roleId: 'report-reader' },
    }),
  },
  'DELETE /api/organization/invitations/:invitationId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: true,
    request: (x) => ({ method: 'DELETE', url: `/api/organization/invitations/${x.invitationId}` }),
  },
  'GET /api/auth/invitations': {
    allow: EVERYONE,
    level: 'own',
    ok: 200,
    tokenStatus: 403,
    request: () => ({ url: '/api/auth/invitations' }),
  },
  'POST /api/auth/invitations/:invitationId/accept': {
    allow: EVERYONE,
    level: 'own',
    ok: 404,
    tokenStatus: 403,
    request: (x) => ({ method: 'POST', url: `/api/auth/invitations/${x.invitationId}/accept` }),
  },
  'POST /api/auth/invitations/:invitationId/decline': {
    allow: EVERYONE,
    level: 'own',
    ok: 404,
    tokenStatus: 403,
    request: (x) => ({ method: 'POST', url: `/api/auth/invitations/${x.invitationId}/decline` }),
  },
  'GET /api/organization/settings': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/organization/settings' }),
  },
  'PATCH /api/organization/settings': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({
      method: 'PATCH',
      url: '/api/organization/settings',
      payload: { disclosureAlertThreshold: 50 },
    }),
  },
  'GET /api/account-suspensions': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/account-suspensions' }),
  },
  'POST /api/account-suspensions': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 201,
    fresh: true,
    request: (x) => ({
      method: 'POST',
      url: '/api/account-suspensions',
      payload: { userId: x.guestId, reason: 'matrix' },
    }),
  },
  'DELETE /api/account-suspensions/:suspensionId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: true,
    request: (x) => ({ method: 'DELETE', url: `/api/account-suspensions/${x.suspensionId}` }),
  },
  'GET /api/audit-log': {
    allow: AUDIT_READERS,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/audit-log' }),
  },
  'GET /api/audit-log/verify': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/audit-log/verify' }),
  },
  'GET /api/audit-log/actions': {
    allow: AUDIT_READERS,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/audit-log/actions' }),
  },
  'GET /api/audit-log/export': {
    allow: AUDIT_READERS,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/audit-log/export?format=csv' }),
  },
  'POST /api/api-tokens': {
    allow: ADMIN,
    level: 'org',
    ok: 201,
    request: () => ({
      method: 'POST',
      url: '/api/api-tokens',
      payload: { name: unique(), permissions: ['reports:read'] },
    }),
  },
  'GET /api/api-tokens': { allow: ADMIN, level: 'org', ok: 200, request: () => ({ url: '/api/api-tokens' }) },
  'DELETE /api/api-tokens/:apiTokenId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: true,
    request: (x) => ({ method: 'DELETE', url: `/api/api-tokens/${x.apiTokenId}` }),
  },
  'POST /api/enrollment-tokens': {
    allow: ADMIN,
    level: 'org',
    ok: 201,
    request: () => ({ method: 'POST', url: '/api/enrollment-tokens', payload: { maxUses: 1 } }),
  },
  'GET /api/enrollment-tokens': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/enrollment-tokens' }),
    lists: (b, x) => ids(b, 'enrollmentTokens').includes(x.enrollmentTokenId),
  },
  'DELETE /api/enrollment-tokens/:enrollmentTokenId': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: async (where) => ({ enrollmentTokenId: await enrollmentTokenOf(where) }),
    request: (x) => ({ method: 'DELETE', url: `/api/enrollment-tokens/${x.enrollmentTokenId}` }),
  },
  'GET /api/self-service/devices': {
    allow: EVERYONE,
    level: 'own',
    ok: 200,
    tokenStatus: 403,
    request: () => ({ url: '/api/self-service/devices' }),
  },
  'GET /api/self-service/devices/:deviceId/recovery-keys': {
    allow: EVERYONE,
    level: 'own',
    ok: 200,
    tokenStatus: 403,
    request: (x) => ({ url: `/api/self-service/devices/${x.deviceId}/recovery-keys` }),
  },
  'GET /api/self-service/recovery-keys': {
    allow: EVERYONE,
    level: 'own',
    ok: 200,
    tokenStatus: 403,
    request: (x) => ({ url: `/api/self-service/recovery-keys?keyIdPrefix=${x.keyId.slice(0, 8)}` }),
  },
  'POST /api/self-service/recovery-keys/:recoveryKeyId/disclose': {
    allow: EVERYONE,
    level: 'own',
    ok: 200,
    tokenStatus: 403,
    request: (x) => ({
      method: 'POST',
      url: `/api/self-service/recovery-keys/${x.keyRecordId}/disclose`,
      payload: { reason: 'matrix' },
    }),
  },
  'GET /api/me/organizations': {
    allow: EVERYONE,
    level: 'own',
    ok: 200,
    tokenStatus: 403,
    request: () => ({ url: '/api/me/organizations' }),
  },
  'POST /api/auth/switch-organization': {
    allow: EVERYONE,
    level: 'own',
    ok: 200,
    tokenStatus: 403,
    request: () => ({
      method: 'POST',
      url: '/api/auth/switch-organization',
      payload: { organizationId: shared.orgB },
    }),
  },
  'GET /api/devices/:deviceId/timeline': {
    allow: DEVICE_READERS,
    level: 'device',
    ok: 200,
    request: (x) => ({ url: `/api/devices/${x.deviceId}/timeline` }),
  },
  'GET /api/devices/:deviceId/bitlocker-events': {
    allow: DEVICE_READERS,
    level: 'device',
    ok: 200,
    request: (x) => ({ url: `/api/devices/${x.deviceId}/bitlocker-events` }),
  },
  'POST /api/devices/:deviceId/rotations': {
    allow: ROTATION_REQUESTERS,
    level: 'device',
    ok: 200,
    request: (x) => ({ method: 'POST', url: `/api/devices/${x.deviceId}/rotations`, payload: {} }),
  },
  'POST /api/recovery-keys/:recoveryKeyId/rotation': {
    allow: ROTATION_REQUESTERS,
    level: 'device',
    ok: 200,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-keys/${x.keyRecordId}/rotation`,
      payload: { reason: 'matrix' },
    }),
  },
  'POST /api/device-groups/:deviceGroupId/rotations': {
    allow: ROTATION_REQUESTERS,
    // A group the caller's scope covers behaves like an in-scope device; another group is 404.
    level: 'device',
    ok: 200,
    request: (x) => ({ method: 'POST', url: `/api/device-groups/${x.groupId}/rotations`, payload: {} }),
  },
  'GET /api/rotations': {
    allow: DEVICE_READERS,
    level: 'list',
    ok: 200,
    request: (x) => ({ url: `/api/rotations?deviceId=${x.deviceId}` }),
    lists: (b, x) => ids(b, 'rotations').includes(x.rotationId),
  },
  'GET /api/rotations/:rotationId': {
    allow: DEVICE_READERS,
    level: 'device',
    ok: 200,
    request: (x) => ({ url: `/api/rotations/${x.rotationId}` }),
  },
  'GET /api/rotation-policy': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/rotation-policy' }),
  },
  'PATCH /api/rotation-policy': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ method: 'PATCH', url: '/api/rotation-policy', payload: { deadlineDays: 7 } }),
  },
  'POST /api/escrow/check-in': {
    allow: NOBODY,
    level: 'org',
    ok: 200,
    tokenStatus: 403,
    request: () => ({ method: 'POST', url: '/api/escrow/check-in', payload: {} }),
  },
  'POST /api/escrow/rotations/:rotationId/result': {
    allow: NOBODY,
    level: 'org',
    ok: 200,
    tokenStatus: 403,
    request: (x) => ({
      method: 'POST',
      url: `/api/escrow/rotations/${x.rotationId}/result`,
      payload: { outcome: 'failed', reason: 'matrix' },
    }),
  },
  'POST /api/escrow/events': {
    allow: NOBODY,
    level: 'org',
    ok: 200,
    tokenStatus: 403,
    request: () => ({
      method: 'POST',
      url: '/api/escrow/events',
      payload: { events: [{ recordId: 1, eventId: 524, occurredAt: new Date().toISOString() }] },
    }),
  },
  'POST /api/escrow/recovery-keys': {
    allow: NOBODY,
    level: 'org',
    ok: 200,
    tokenStatus: 403,
    request: () => ({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      payload: escrowPayload(randomKeyId(), [newKey()]),
    }),
  },
  'GET /api/notifications/settings': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/notifications/settings' }),
  },
  'PUT /api/notifications/settings': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({
      method: 'PUT',
      url: '/api/notifications/settings',
      payload: { smtp: null, securityAddresses: ['security@example.test'] },
    }),
  },
  'POST /api/notifications/settings/test-mail': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    // No SMTP server is configured here: the answer says so (delivered: false), which is still a 200.
    request: () => ({
      method: 'POST',
      url: '/api/notifications/settings/test-mail',
      payload: { to: ['security@example.test'] },
    }),
  },
  'GET /api/notifications/webhooks': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/notifications/webhooks' }),
  },
  'POST /api/notifications/webhooks': {
    allow: ADMIN,
    level: 'org',
    ok: 201,
    request: () => ({
      method: 'POST',
      url: '/api/notifications/webhooks',
      payload: {
        name: `Hook ${unique()}`,
        url: 'http://127.0.0.1:9/hook',
        eventTypes: ['*'],
        enabled: false,
      },
    }),
  },
  'PATCH /api/notifications/webhooks/:webhookId': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    targeted: true,
    request: (x) => ({
      method: 'PATCH',
      url: `/api/notifications/webhooks/${x.webhookId}`,
      payload: { name: `Hook ${unique()}` },
    }),
  },
  'DELETE /api/notifications/webhooks/:webhookId': {
    allow: ADMIN,
    level: 'org',
    ok: 204,
    fresh: true,
    targeted: true,
    request: (x) => ({ method: 'DELETE', url: `/api/notifications/webhooks/${x.webhookId}` }),
  },
  'POST /api/notifications/webhooks/:webhookId/test': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    targeted: true,
    // Port 9 (discard) refuses at once on loopback: the answer reports delivered: false.
    request: (x) => ({ method: 'POST', url: `/api/notifications/webhooks/${x.webhookId}/test` }),
  },
  'GET /api/notifications/deliveries': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/notifications/deliveries' }),
  },
  'GET /api/reports/escrow-coverage': {
    allow: REPORT_READERS,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/reports/escrow-coverage' }),
  },
  'GET /api/reports/recoveries': {
    allow: REPORT_READERS,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/reports/recoveries?bucket=week' }),
  },
  'GET /api/reports/rotation-compliance': {
    allow: REPORT_READERS,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/reports/rotation-compliance' }),
  },
  'GET /api/reports/disclosures-by-operator': {
    allow: REPORT_READERS,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/reports/disclosures-by-operator' }),
  },
  'GET /api/reports/post-recovery': {
    allow: REPORT_READERS,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/reports/post-recovery?format=csv' }),
  },
  'GET /api/recovery-cases/policy': {
    allow: CASE_WORKERS,
    level: 'any',
    ok: 200,
    request: () => ({ url: '/api/recovery-cases/policy' }),
  },
  'PUT /api/recovery-cases/policy': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({
      method: 'PUT',
      url: '/api/recovery-cases/policy',
      payload: { allowRootCauseAfterDisclosure: false },
    }),
  },
  // Any case worker may open a case for any member, so finding the member is not device-scoped.
  'GET /api/recovery-cases/requesters': {
    allow: CASE_WORKERS,
    level: 'any',
    ok: 200,
    request: () => ({ url: '/api/recovery-cases/requesters?query=u-' }),
  },
  'POST /api/recovery-cases': {
    allow: CASE_WORKERS,
    level: 'any',
    ok: 201,
    request: () => ({
      method: 'POST',
      url: '/api/recovery-cases',
      payload: { requesterUserId: shared.bystander },
    }),
  },
  'GET /api/recovery-cases': {
    allow: CASE_WORKERS,
    level: 'list',
    ok: 200,
    request: (x) => ({ url: `/api/recovery-cases?deviceId=${x.deviceId}` }),
    lists: (b, x) => ids(b, 'recoveryCases').includes(x.caseId),
  },
  'GET /api/recovery-cases/:caseId': {
    allow: CASE_WORKERS,
    level: 'device',
    ok: 200,
    request: (x) => ({ url: `/api/recovery-cases/${x.caseId}` }),
  },
  // The target case has its identity verified and its device recorded, no key id yet: steps that
  // are out of order answer 409, which shows the caller got past authorization to the case's rules.
  'POST /api/recovery-cases/:caseId/identity': {
    allow: CASE_WORKERS,
    level: 'device',
    ok: 409,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-cases/${x.caseId}/identity`,
      payload: { method: 'attested', attestation: 'in-person', note: 'matrix: badge checked' },
    }),
  },
  'POST /api/recovery-cases/:caseId/identity/code': {
    allow: CASE_WORKERS,
    level: 'device',
    ok: 409,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-cases/${x.caseId}/identity/code`,
      payload: { code: '123456' },
    }),
  },
  'POST /api/recovery-cases/:caseId/device': {
    allow: CASE_WORKERS,
    level: 'device',
    ok: 200,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-cases/${x.caseId}/device`,
      payload: { deviceName: x.name },
    }),
  },
  'POST /api/recovery-cases/:caseId/key-id': {
    allow: CASE_WORKERS,
    level: 'device',
    ok: 200,
    // A key id nobody has: recorded as not found, so the case stays where it is.
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-cases/${x.caseId}/key-id`,
      payload: { keyId: '00000000' },
    }),
  },
  'POST /api/recovery-cases/:caseId/locate': {
    allow: CASE_WORKERS,
    level: 'device',
    ok: 409,
    request: (x) => ({ method: 'POST', url: `/api/recovery-cases/${x.caseId}/locate` }),
  },
  'POST /api/recovery-cases/:caseId/root-cause': {
    allow: CASE_WORKERS,
    level: 'device',
    ok: 409,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-cases/${x.caseId}/root-cause`,
      payload: {
        answers: {
          protectionMode: 'tpm',
          bootFileChange: 'unknown',
          pcrProfile: 'default',
          forgottenPinOrLostKey: 'no',
          changeCause: 'unknown',
          lastSuccessfulStart: { whatHappenedSince: '' },
          unattendedOrExposed: 'no',
        },
      },
    }),
  },
  'POST /api/recovery-cases/:caseId/approve': {
    allow: ADMIN,
    level: 'device',
    ok: 409,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-cases/${x.caseId}/approve`,
      payload: { subject: 'disclosure' },
    }),
  },
  'POST /api/recovery-cases/:caseId/owner-override': {
    allow: ADMIN,
    level: 'device',
    ok: 409,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-cases/${x.caseId}/owner-override`,
      payload: { note: 'matrix' },
    }),
  },
  'POST /api/recovery-cases/:caseId/disclose': {
    allow: CASE_WORKERS,
    level: 'device',
    ok: 409,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-cases/${x.caseId}/disclose`,
      payload: { reasonCode: 'lost-pin' },
    }),
  },
  'POST /api/recovery-cases/:caseId/read-back': {
    allow: CASE_WORKERS,
    level: 'device',
    ok: 409,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-cases/${x.caseId}/read-back`,
      payload: { typed: '000000' },
    }),
  },
  'POST /api/recovery-cases/:caseId/cancel': {
    allow: CASE_WORKERS,
    level: 'device',
    ok: 200,
    fresh: true,
    request: (x) => ({
      method: 'POST',
      url: `/api/recovery-cases/${x.caseId}/cancel`,
      payload: { note: 'matrix' },
    }),
  },
  // Accounts: organization administrators, on accounts their organization manages (the account's
  // home). Another organization's account is indistinguishable from none (404).
  'GET /api/users': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/users' }),
    lists: (b, x) => (b as { users: { userId: string }[] }).users.some((u) => u.userId === x.userId),
  },
  'POST /api/users': {
    allow: ADMIN,
    level: 'org',
    ok: 201,
    request: () => ({
      method: 'POST',
      url: '/api/users',
      payload: { username: `new-${unique().toLowerCase()}` },
    }),
  },
  'PATCH /api/users/:id': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    request: (x) => ({
      method: 'PATCH',
      url: `/api/users/${x.userId}`,
      payload: { displayName: `P ${unique()}` },
    }),
  },
  'POST /api/users/:id/reset-password': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 200,
    request: (x) => ({ method: 'POST', url: `/api/users/${x.userId}/reset-password` }),
  },
  'POST /api/users/:id/disable': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: async (where) => ({ userId: await createPerson(t, orgOf(where)) }),
    request: (x) => ({ method: 'POST', url: `/api/users/${x.userId}/disable` }),
  },
  'POST /api/users/:id/enable': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    request: (x) => ({ method: 'POST', url: `/api/users/${x.userId}/enable` }),
  },
  'POST /api/users/:id/revoke-sessions': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 200,
    request: (x) => ({ method: 'POST', url: `/api/users/${x.userId}/revoke-sessions` }),
  },
  'GET /api/auth/mfa-policy': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/auth/mfa-policy' }),
  },
  'PUT /api/auth/mfa-policy': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    // Off, as it was: the cookie sessions below sign in again and must not owe a second factor.
    request: () => ({
      method: 'PUT',
      url: '/api/auth/mfa-policy',
      payload: { requireMfaForDisclosure: false },
    }),
  },
  // Sign-in providers: organization administrators. Provider names are one namespace for every
  // organization (the sign-in page lists them), so saving under another organization's name is a
  // 409 "taken" that changes nothing there, while removing it is a 404 like a missing one.
  'GET /api/identity-providers': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ url: '/api/identity-providers' }),
    lists: (b, x) => {
      const body = b as { oidc: { slug: string }[]; ldap: { slug: string }[] };
      return body.oidc.some((p) => p.slug === x.oidcSlug) && body.ldap.some((p) => p.slug === x.ldapSlug);
    },
  },
  'PUT /api/identity-providers/oidc/:provider': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    otherStatus: 409,
    ok: 200,
    request: (x) => ({
      method: 'PUT',
      url: `/api/identity-providers/oidc/${x.oidcSlug}`,
      payload: OIDC_PROVIDER,
    }),
  },
  'DELETE /api/identity-providers/oidc/:provider': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: (where) => providersOf(where),
    request: (x) => ({ method: 'DELETE', url: `/api/identity-providers/oidc/${x.oidcSlug}` }),
  },
  'PUT /api/identity-providers/ldap/:provider': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    otherStatus: 409,
    ok: 200,
    request: (x) => ({
      method: 'PUT',
      url: `/api/identity-providers/ldap/${x.ldapSlug}`,
      payload: LDAP_DIRECTORY,
    }),
  },
  'DELETE /api/identity-providers/ldap/:provider': {
    allow: ADMIN,
    level: 'org',
    targeted: true,
    ok: 204,
    fresh: (where) => providersOf(where),
    request: (x) => ({ method: 'DELETE', url: `/api/identity-providers/ldap/${x.ldapSlug}` }),
  },
  // Directory sync, file import and the break-glass export: organization administrators, on their
  // own organization only (there is no target to name another one).
  'GET /api/directory-sync': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    setup: () => configureDirectorySync(),
    request: () => ({ url: '/api/directory-sync' }),
  },
  'PUT /api/directory-sync': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({ method: 'PUT', url: '/api/directory-sync', payload: DIRECTORY_SYNC }),
  },
  'DELETE /api/directory-sync': {
    allow: ADMIN,
    level: 'org',
    ok: 204,
    setup: () => configureDirectorySync(),
    request: () => ({ method: 'DELETE', url: '/api/directory-sync' }),
  },
  'POST /api/directory-sync/sync-now': {
    allow: ADMIN,
    level: 'org',
    ok: 202,
    // The previous run (against a closed port) has ended, so this one starts rather than a 409.
    setup: async () => {
      await configureDirectorySync();
      await directorySyncIdle();
    },
    request: () => ({ method: 'POST', url: '/api/directory-sync/sync-now' }),
  },
  'POST /api/import/recovery-keys': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    // The target's key id with another password, as a dry run: the caller's own organization already
    // holds it (a conflict); the other organization's key id is nothing to this one (created).
    request: (x) => ({
      method: 'POST',
      url: '/api/import/recovery-keys',
      payload: {
        format: 'json',
        dryRun: true,
        rows: [{ deviceName: x.name, keyId: x.keyId, recoveryPassword: newKey().password }],
      },
    }),
    check: (res, _x, where) => {
      const outcome = (res.json() as { rows: { outcome: string }[] }).rows[0]?.outcome;
      const want = where === 'other' ? 'created' : 'conflict';
      return outcome === want ? undefined : `import outcome ${outcome} (wanted ${want})`;
    },
  },
  'POST /api/export/recovery-keys': {
    allow: ADMIN,
    level: 'org',
    ok: 200,
    request: () => ({
      method: 'POST',
      url: '/api/export/recovery-keys',
      payload: { recipient: AGE_RECIPIENT },
    }),
    // Exactly the caller's organization's keys (the database holds the other organizations' too).
    check: async (res) => {
      const count = async (organizationId?: string) => {
        let q = t.vault.db.selectFrom('recovery_keys').select((eb) => eb.fn.countAll().as('n'));
        if (organizationId) q = q.where('organization_id', '=', organizationId);
        return Number((await q.executeTakeFirstOrThrow()).n);
      };
      const [mine, all] = [await count(shared.orgA), await count()];
      const exported = Number(res.headers['x-exported-keys']);
      return exported === mine && mine < all
        ? undefined
        : `exported ${exported} keys (own ${mine}, all ${all})`;
    },
  },
  // The OAuth client-credentials endpoint trades an API token for itself: any token may, whatever
  // its role; naming another organization as the tenant is refused like a wrong secret.
  'POST /oauth2/v2.0/token': {
    allow: EVERYONE,
    level: 'any',
    ok: 200,
    request: (_x, c) => tokenRequest('/oauth2/v2.0/token', c),
    check: (res, _x, _w, c) =>
      res.json().access_token === c.token ? undefined : 'not the client its own token',
  },
  'POST /:tenant/oauth2/v2.0/token': {
    allow: EVERYONE,
    level: 'any',
    targeted: true,
    otherStatus: 401,
    ok: 200,
    request: (x, c) => tokenRequest(`/${x.organizationId}/oauth2/v2.0/token`, c),
    check: (res, _x, _w, c) =>
      res.json().access_token === c.token ? undefined : 'not the client its own token',
  },
  // Own-account routes for people signed in: a token is refused (403); the cookie-session matrix
  // below checks what a session gets.
  'GET /api/auth/me': {
    allow: EVERYONE,
    level: 'own',
    ok: 200,
    tokenStatus: 403,
    request: () => ({ url: '/api/auth/me' }),
  },
  'POST /api/auth/change-password': {
    allow: EVERYONE,
    level: 'own',
    ok: 204,
    tokenStatus: 403,
    request: () => ({
      method: 'POST',
      url: '/api/auth/change-password',
      payload: {
        currentPassword: 'not the password at all',
        newPassword: `another long password ${unique()}`,
      },
    }),
  },
  'POST /api/auth/sign-out-everywhere': {
    allow: EVERYONE,
    level: 'own',
    ok: 200,
    tokenStatus: 403,
    request: () => ({ method: 'POST', url: '/api/auth/sign-out-everywhere' }),
  },
  // Public to the access hook because they read the session cookie themselves (also a session that
  // still owes its second factor): a token is no session, so every token gets 401.
  ...Object.fromEntries(
    Object.entries(COOKIE_READING_ROUTES).map(([route, request]) => [
      route,
      {
        allow: EVERYONE,
        level: 'own',
        ok: 200,
        tokenStatus: 401,
        request: () => request,
      } satisfies Expectation,
    ]),
  ),
};

const PASSWORD_SHAPE = /^\d{6}(-\d{6}){7}$/;
const graphKeys = (b: unknown) => (b as { value: { id: string }[] }).value.map((k) => k.id);
const graphDevices = graphKeys;

/**
 * The Graph-compatible routes, the same at /v1.0 and /beta. Reading one key is `authenticated` in
 * the route table and decided in the handler: its metadata needs keys:read-metadata, and
 * `$select=key` (a disclosure) keys:disclose, each on the key's device; out of scope or another
 * organization's key is 404, and every refusal is an OData error.
 */
for (const version of ['v1.0', 'beta']) {
  const keys = `/${version}/informationProtection/bitlocker/recoveryKeys`;
  const filter = (expression: string) => encodeURIComponent(expression);
  Object.assign(EXPECTATIONS, {
    [`GET ${keys}`]: {
      allow: DEVICE_READERS,
      level: 'list',
      ok: 200,
      odata: true,
      request: (x) => ({ url: `${keys}?$filter=${filter(`deviceId eq '${x.graphDeviceId}'`)}` }),
      lists: (b, x) => graphKeys(b).includes(x.keyId.toLowerCase()),
    },
    [`GET ${keys}/:recoveryKeyId`]: {
      allow: DEVICE_READERS,
      level: 'device',
      ok: 200,
      odata: true,
      request: (x) => ({ url: `${keys}/${x.keyId.toLowerCase()}` }),
      check: (res, x) => {
        const body = res.json() as { id: string; key?: string };
        if (body.id !== x.keyId.toLowerCase()) return `read key ${body.id}`;
        return 'key' in body ? 'the metadata read returned the key' : undefined;
      },
    },
    [`GET ${keys}/:recoveryKeyId?$select=key`]: {
      allow: KEY_DISCLOSERS,
      level: 'device',
      ok: 200,
      odata: true,
      request: (x) => ({ url: `${keys}/${x.keyId.toLowerCase()}?$select=${filter('id,key')}` }),
      check: (res, x) => {
        const body = res.json() as { key?: string };
        if (!PASSWORD_SHAPE.test(body.key ?? '') || body.key !== x.password) return 'not the target key';
        return res.headers['cache-control'] === 'no-store' ? undefined : 'a disclosure that may be cached';
      },
    },
    [`GET /${version}/devices`]: {
      allow: DEVICE_READERS,
      level: 'list',
      ok: 200,
      odata: true,
      request: (x) => ({ url: `/${version}/devices?$filter=${filter(`displayName eq '${x.name}'`)}` }),
      lists: (b, x) => graphDevices(b).includes(x.deviceId),
    },
    // By Graph device id: another lookup (one device in scope, not a name search).
    [`GET /${version}/devices?deviceId`]: {
      allow: DEVICE_READERS,
      level: 'list',
      ok: 200,
      odata: true,
      request: (x) => ({ url: `/${version}/devices?$filter=${filter(`deviceId eq '${x.graphDeviceId}'`)}` }),
      lists: (b, x) => graphDevices(b).includes(x.deviceId),
    },
  } satisfies Record<string, Expectation>);
}

/** Graph's error code for each refusal status (what Graph SDKs branch on). */
const ODATA_CODES: Record<number, string> = {
  400: 'BadRequest',
  401: 'InvalidAuthenticationToken',
  403: 'Authorization_RequestDenied',
  404: 'Request_ResourceNotFound',
};

function odataProblem(res: LightMyRequestResponse): string | undefined {
  if (res.statusCode < 400) return undefined;
  const error = (
    res.json() as { error?: { code?: unknown; message?: unknown; innerError?: Record<string, unknown> } }
  ).error;
  const ok =
    error?.code === ODATA_CODES[res.statusCode] &&
    typeof error?.message === 'string' &&
    typeof error.innerError?.['request-id'] === 'string';
  return ok ? undefined : `not Graph's OData error for ${res.statusCode}: ${res.body.slice(0, 160)}`;
}

/**
 * Routes outside the role matrix, each with why: nothing about them depends on a role or a scope.
 * All of them are `public` in the route table (checked), and each answers an anonymous request as
 * designed (checked). HEAD routes are not listed: Fastify makes one beside every GET route, with the
 * same hooks, so the GET's row covers it.
 */
const NOT_BY_ROLE: Record<string, { why: string; request: InjectOptions; status: number | number[] }> = {
  'GET /healthz': { why: 'liveness probe', request: { url: '/healthz' }, status: 200 },
  'GET /readyz': { why: 'readiness probe', request: { url: '/readyz' }, status: 200 },
  'GET /api/openapi.json': { why: 'the API description', request: { url: '/api/openapi.json' }, status: 200 },
  'GET /api/docs': { why: 'API documentation UI', request: { url: '/api/docs' }, status: 200 },
  'GET /api/docs/json': { why: 'API documentation UI', request: { url: '/api/docs/json' }, status: 200 },
  'GET /api/docs/yaml': { why: 'API documentation UI', request: { url: '/api/docs/yaml' }, status: 200 },
  // The documentation UI sends its index page's address on to the UI's root.
  'GET /api/docs/static/index.html': {
    why: 'API documentation UI',
    request: { url: '/api/docs/static/index.html' },
    status: 302,
  },
  'GET /api/docs/static/swagger-initializer.js': {
    why: 'API documentation UI',
    request: { url: '/api/docs/static/swagger-initializer.js' },
    status: 200,
  },
  'GET /api/docs/static/*': {
    why: 'API documentation UI',
    request: { url: '/api/docs/static/swagger-ui.css' },
    status: 200,
  },
  // 200 with the portal built, 503 "portal not built" without: never a credential question.
  'GET /*': { why: "the portal's static files", request: { url: '/' }, status: [200, 503] },
  'POST /api/auth/sign-in': {
    why: 'how a person gets a session',
    request: {
      method: 'POST',
      url: '/api/auth/sign-in',
      payload: { username: 'nobody', password: 'not it' },
    },
    status: 401,
  },
  'GET /api/auth/providers': {
    why: 'the sign-in page lists the SSO choices',
    request: { url: '/api/auth/providers' },
    status: 200,
  },
  // SSO needs the public URL, which this vault has not: 503 before any provider is looked up.
  'GET /api/auth/oidc/:provider/start': {
    why: 'SSO sign-in',
    request: { url: '/api/auth/oidc/no-such-idp/start' },
    status: 503,
  },
  'GET /api/auth/oidc/:provider/callback': {
    why: 'SSO sign-in',
    request: { url: '/api/auth/oidc/no-such-idp/callback?code=x&state=y' },
    status: 503,
  },
  'POST /api/auth/ldap/:provider/sign-in': {
    why: 'directory sign-in',
    request: {
      method: 'POST',
      url: '/api/auth/ldap/no-such-directory/sign-in',
      payload: { username: 'nobody', password: 'not it' },
    },
    status: 404,
  },
  'POST /api/escrow/enroll': {
    why: 'a device enrolls with an enrollment token, not a role',
    request: {
      method: 'POST',
      url: '/api/escrow/enroll',
      payload: { device: { name: 'PC-1', os: 'Windows 11' } },
    },
    status: 401,
  },
};

const shared = {
  orgA: '',
  orgB: '',
  /** A third organization: the home of the other organization's guests. */
  orgC: '',
  adminA: '',
  adminB: '',
  groupIn: '',
  groupOut: '',
  groupB: '',
  bystander: '',
  /** Usernames of users of the other organization, one per call of the add-member route. */
  joiners: [] as string[],
  /** A passkey of somebody else (a member of the first organization who is no caller). */
  othersPasskey: '',
  targets: {} as Record<Where, Target>,
};

let t: TestVault;

const orgOf = (where: Where) => (where === 'other' ? shared.orgB : shared.orgA);
const adminOf = (where: Where) => (where === 'other' ? shared.adminB : shared.adminA);

/** An SSO provider and an LDAP directory of the target's organization (disabled: no sign-in choice). */
async function providersOf(where: Where): Promise<Pick<Target, 'oidcSlug' | 'ldapSlug'>> {
  const slugs = { oidcSlug: `oidc-${unique().toLowerCase()}`, ldapSlug: `ldap-${unique().toLowerCase()}` };
  for (const [kind, slug, payload] of [
    ['oidc', slugs.oidcSlug, OIDC_PROVIDER],
    ['ldap', slugs.ldapSlug, LDAP_DIRECTORY],
  ] as const) {
    const res = await t.app.inject({
      method: 'PUT',
      url: `/api/identity-providers/${kind}/${slug}`,
      headers: bearer(adminOf(where)),
      payload,
    });
    expect(res.statusCode, res.body).toBe(200);
  }
  return slugs;
}

/** A new, unused enrollment token of the target's organization. */
async function enrollmentTokenOf(where: Where): Promise<string> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/enrollment-tokens',
    headers: bearer(adminOf(where)),
    payload: { maxUses: 1, description: 'matrix target' },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id as string;
}

/** The first organization's directory sync exists (the delete route removes it). */
async function configureDirectorySync() {
  const res = await t.app.inject({
    method: 'PUT',
    url: '/api/directory-sync',
    headers: bearer(shared.adminA),
    payload: DIRECTORY_SYNC,
  });
  expect(res.statusCode, res.body).toBe(200);
}

/** Waits until no directory sync run holds the first organization's lease. */
async function directorySyncIdle() {
  for (let i = 0; i < 100; i++) {
    const res = await t.app.inject({ url: '/api/directory-sync', headers: bearer(shared.adminA) });
    if (res.statusCode !== 200 || res.json().running !== true) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('the directory sync run did not end');
}

async function makeTarget(where: Where): Promise<Target> {
  const admin = where === 'other' ? shared.adminB : shared.adminA;
  const organizationId = where === 'other' ? shared.orgB : shared.orgA;
  const groupName = where === 'in' ? 'Unit In' : where === 'out' ? 'Unit Out' : 'Unit B';
  const device = await deviceWithKey(t, admin, groupName);
  const group = await t.app.inject({
    method: 'POST',
    url: '/api/device-groups',
    headers: bearer(admin),
    payload: { name: `Target ${unique()}` },
  });
  const role = await t.app.inject({
    method: 'POST',
    url: '/api/roles',
    headers: bearer(admin),
    payload: { name: `Target ${unique()}`, permissions: ['reports:read'] },
  });
  const person = await createPerson(t, organizationId);
  const assignment = await t.vault.services.access.createAssignment(
    organizationId,
    { roleId: 'report-reader', userId: person },
    { type: 'cli', id: null },
  );
  const token = await t.app.inject({
    method: 'POST',
    url: '/api/api-tokens',
    headers: bearer(admin),
    payload: { name: unique(), permissions: ['reports:read'] },
  });
  const suspensionId = `sus_${randomKeyId()
    .replace(/-/g, '')
    .toLowerCase()
    .slice(0, 26)
    .replace(/[ilou]/g, '0')}`;
  await t.vault.db
    .insertInto('account_suspensions')
    .values({
      id: suspensionId,
      organization_id: organizationId,
      subject_type: 'user',
      subject_id: person,
      reason: 'test',
      created_at: new Date().toISOString(),
      lifted_at: null,
    })
    .execute();
  // A member whose account the other organization manages (an invited technician), and an invitation.
  const guest = await createPerson(t, where === 'other' ? shared.orgC : shared.orgB);
  await joinOrganization(t, organizationId, guest, 'report-reader');
  const invitation = await t.vault.services.invitations.invite(
    organizationId,
    { username: `invitee-${unique()}`, roleId: 'report-reader' },
    { type: 'cli', id: null },
  );
  const rotation = await t.app.inject({
    method: 'POST',
    url: `/api/recovery-keys/${device.keyRecordId}/rotation`,
    headers: bearer(admin),
    payload: { reason: 'matrix target' },
  });
  expect(rotation.statusCode, rotation.body).toBe(200);
  const rotationId = rotation.json().rotations[0].id as string;
  const webhook = await t.app.inject({
    method: 'POST',
    url: '/api/notifications/webhooks',
    headers: bearer(admin),
    payload: { name: unique(), url: 'http://127.0.0.1:9/hook', eventTypes: ['*'], enabled: false },
  });
  // A case on the target device, its identity verified and its device recorded by the organization's admin.
  const opened = await t.app.inject({
    method: 'POST',
    url: '/api/recovery-cases',
    headers: bearer(admin),
    payload: { requesterUserId: person },
  });
  const caseId = opened.json().id as string;
  for (const [path, payload] of [
    ['identity', { method: 'attested', attestation: 'call-back', note: 'matrix: called back' }],
    ['device', { deviceName: device.name }],
  ] as const) {
    const step = await t.app.inject({
      method: 'POST',
      url: `/api/recovery-cases/${caseId}/${path}`,
      headers: bearer(admin),
      payload,
    });
    expect(step.statusCode, step.body).toBe(200);
  }
  return {
    ...shared.targets[where],
    organizationId,
    userId: person,
    password: device.password,
    webhookId: webhook.json().id,
    deviceId: device.deviceId,
    keyRecordId: device.keyRecordId,
    keyId: device.keyId,
    name: device.name,
    groupId: where === 'in' ? shared.groupIn : where === 'out' ? shared.groupOut : group.json().id,
    roleId: role.json().id,
    assignmentId: assignment.id,
    apiTokenId: token.json().id,
    suspensionId,
    rotationId,
    caseId,
    guestId: guest,
    invitationId: invitation.id,
  };
}

/**
 * Fresh targets for mutating routes keep the in-scope group's identity (a device stays in scope).
 * A route with its own builder gets the shared target with only those parts made anew.
 */
async function freshTarget(where: Where, route: string, e: Expectation): Promise<Target> {
  if (typeof e.fresh === 'function') return { ...shared.targets[where], ...(await e.fresh(where)) };
  const target = await makeTarget(where);
  if (
    route.startsWith('PATCH /api/device-groups') ||
    route.startsWith('DELETE /api/device-groups/:deviceGroupId')
  ) {
    // Group routes are org-level: a throwaway group of the right organization.
    const admin = where === 'other' ? shared.adminB : shared.adminA;
    const g = await t.app.inject({
      method: 'POST',
      url: '/api/device-groups',
      headers: bearer(admin),
      payload: { name: `Fresh ${unique()}` },
    });
    return { ...target, groupId: g.json().id };
  }
  return target;
}

interface OwnedDevice {
  deviceId: string;
  keyRecordId: string;
  keyId: string;
  password: string;
}

interface Caller {
  role: RoleKey;
  scope: 'organization' | 'group';
  token: string;
  tokenId: string;
  address: string;
  person: Person;
  /** The person's cookie session in the first organization (signed in again when a route ends it). */
  session: CookieSession;
  /** A device the person owns in the first organization (in the out-of-scope group) and one in the other. */
  ownA: OwnedDevice;
  ownB: OwnedDevice;
}
const callers: Caller[] = [];

/** Signs the caller in (over HTTP, password and cookie) in the first organization, its home. */
async function sessionOf(person: Person): Promise<CookieSession> {
  const session = await signIn(t.app, person);
  expect(session.organizationId).toBe(shared.orgA);
  return session;
}

async function ownedDevice(where: 'in' | 'other', userId: string): Promise<OwnedDevice> {
  const admin = where === 'other' ? shared.adminB : shared.adminA;
  const device = await deviceWithKey(t, admin, where === 'other' ? 'Unit B' : 'Unit Out');
  await setOwner(t, admin, device.deviceId, userId);
  return device;
}

beforeAll(async () => {
  t = await createTestVault();
  shared.orgA = t.organizationId;
  shared.adminA = t.adminToken;
  shared.orgB = await createOrganization(t, 'Other org');
  shared.adminB = await adminTokenFor(t, shared.orgB);
  shared.orgC = await createOrganization(t, 'Third org');
  shared.groupIn = await groupId(t, shared.adminA, 'Unit In');
  shared.groupOut = await groupId(t, shared.adminA, 'Unit Out');
  shared.groupB = await groupId(t, shared.adminB, 'Unit B');
  shared.bystander = await createPerson(t, shared.orgA);
  for (let i = 0; i < 40; i++) {
    const username = `joiner-${i}-${unique().toLowerCase()}`;
    await createPerson(t, shared.orgB, username);
    shared.joiners.push(username);
  }
  for (const where of ['in', 'out', 'other'] as Where[]) {
    const target = await makeTarget(where);
    const found = await t.app.inject({
      url: `/v1.0/devices?$filter=${encodeURIComponent(`displayName eq '${target.name}'`)}`,
      headers: bearer(adminOf(where)),
    });
    expect(found.statusCode, found.body).toBe(200);
    const graphDeviceId = found.json().value[0].deviceId as string;
    shared.targets[where] = {
      ...target,
      graphDeviceId,
      enrollmentTokenId: await enrollmentTokenOf(where),
      ...(await providersOf(where)),
    };
  }
  // Somebody else's passkey (the row as registration stores it): nobody else may remove it.
  const passkeyOwner = await createPerson(t, shared.orgA);
  shared.othersPasskey = fakeId('wac');
  await t.vault.db
    .insertInto('webauthn_credentials')
    .values({
      id: shared.othersPasskey,
      user_id: passkeyOwner,
      credential_id: 'AAAA',
      public_key: 'AAAA',
      counter: 0,
      transports: '[]',
      name: 'Not yours',
      created_at: new Date().toISOString(),
      last_used_at: null,
    })
    .execute();
  for (const role of ROLE_KEYS) {
    for (const scope of ['organization', 'group'] as const) {
      const person = await personWithPassword(t, shared.orgA);
      // Every caller is also a member of the other organization (invited, accepted), with no role there.
      const there = await joinOrganization(t, shared.orgB, person.userId, 'report-reader');
      await t.vault.services.access.deleteAssignment(shared.orgB, there.id, { type: 'cli', id: null });
      await assignRole(t, shared.orgA, person.userId, role, scope === 'group' ? [shared.groupIn] : undefined);
      const token = await personalToken(t, shared.orgA, person.userId);
      callers.push({
        role,
        scope,
        token: token.token,
        tokenId: token.id,
        address: nextAddress(),
        person,
        session: await sessionOf(person),
        ownA: await ownedDevice('in', person.userId),
        ownB: await ownedDevice('other', person.userId),
      });
    }
  }
}, 180_000);

afterAll(async () => {
  await t?.close();
});

function expected(e: Expectation, caller: Caller, where: Where): { status: number; listed?: boolean } {
  if (e.tokenStatus !== undefined) return { status: e.tokenStatus };
  if (!e.allow.includes(caller.role)) return { status: 403 };
  const orgWide = caller.scope === 'organization';
  switch (e.level) {
    case 'org':
      if (!orgWide) return { status: 403 };
      if (e.targeted && where === 'other') return { status: e.otherStatus ?? 404 };
      return e.lists ? { status: e.ok, listed: where !== 'other' } : { status: e.ok };
    case 'device':
      return { status: where === 'in' || (where === 'out' && orgWide) ? e.ok : 404 };
    case 'list':
      return { status: e.ok, listed: where === 'in' || (where === 'out' && orgWide) };
    case 'any':
      return { status: e.targeted && where === 'other' ? (e.otherStatus ?? 404) : e.ok };
    case 'own':
      return { status: e.ok };
  }
}

function routeKey(method: string, url: string) {
  return `${method} ${url}`;
}

/** The route-table row of an expectation key (`?…` marks a variant of one route). */
const routeOf = (key: string) =>
  routeTableOf(t.app).find((r) => routeKey(r.method, r.url) === key.split('?')[0]);

describe('role x route x target matrix', () => {
  it('has an expectation or a reasoned exclusion for every route of the route table', () => {
    const table = routeTableOf(t.app)
      .filter((r) => r.method !== 'HEAD')
      .map((r) => routeKey(r.method, r.url));
    const missing = table.filter((k) => !(k in EXPECTATIONS) && !(k in NOT_BY_ROLE));
    const both = table.filter((k) => k in EXPECTATIONS && k in NOT_BY_ROLE);
    const unknown = [...Object.keys(EXPECTATIONS), ...Object.keys(NOT_BY_ROLE)].filter((k) => !routeOf(k));
    expect({ missing, both, unknown }).toEqual({ missing: [], both: [], unknown: [] });
  });

  it('the routes outside it are public and answer an anonymous request as designed', async () => {
    const problems: string[] = [];
    for (const [route, x] of Object.entries(NOT_BY_ROLE)) {
      const permission = routeOf(route)?.permission;
      if (permission !== 'public') problems.push(`${route}: ${permission} in the route table, not public`);
      const res = await t.app.inject({ ...x.request, remoteAddress: nextAddress() } as InjectOptions);
      if (![x.status].flat().includes(res.statusCode)) {
        problems.push(`${route}: ${res.statusCode} (wanted ${String(x.status)}) ${res.body.slice(0, 120)}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every route in it refuses an anonymous caller (401)', async () => {
    const problems: string[] = [];
    for (const [route, e] of Object.entries(EXPECTATIONS)) {
      const res = await t.app.inject({ ...e.request(shared.targets.in), remoteAddress: nextAddress() });
      if (res.statusCode !== 401) problems.push(`${route}: ${res.statusCode} ${res.body.slice(0, 120)}`);
      else if (e.odata) {
        const problem = odataProblem(res);
        if (problem) problems.push(`${route}: ${problem}`);
        if (res.headers['www-authenticate'] !== 'Bearer') problems.push(`${route}: no WWW-Authenticate`);
      }
    }
    expect(problems).toEqual([]);
  });

  for (const [route, e] of Object.entries(EXPECTATIONS)) {
    it(route, async () => {
      const failures: string[] = [];
      for (const caller of callers) {
        for (const where of ['in', 'out', 'other'] as Where[]) {
          if (e.setup) await e.setup();
          const target = e.fresh ? await freshTarget(where, route, e) : shared.targets[where];
          const want = expected(e, caller, where);
          const req = e.request(target, caller);
          const res = await t.app.inject({
            ...req,
            remoteAddress: caller.address,
            headers: { ...(req.headers ?? {}), ...bearer(caller.token) },
          } as InjectOptions);
          const label = `${caller.role}/${caller.scope} -> ${where}`;
          if (res.statusCode !== want.status) {
            failures.push(`${label}: ${res.statusCode} (wanted ${want.status}) ${res.body.slice(0, 160)}`);
            continue;
          }
          const problem = e.odata ? odataProblem(res) : undefined;
          if (problem) failures.push(`${label}: ${problem}`);
          if (want.listed !== undefined && e.lists && e.lists(res.json(), target) !== want.listed) {
            failures.push(`${label}: listed=${!want.listed} (wanted ${want.listed})`);
          }
          const wrong =
            e.check && res.statusCode < 300 ? await e.check(res, target, where, caller) : undefined;
          if (wrong) failures.push(`${label}: ${wrong}`);
        }
      }
      expect(failures).toEqual([]);
    });
  }
});

/**
 * The cookie-session path: what a person signed in gets on the routes a token cannot use. The
 * callers are the same people as above, each signed in with its password in the first
 * organization; their roles must not matter here, ownership and membership do. Targets:
 * `mine` is the caller's own device (in the first organization, in a group its role scope does not
 * cover), a fresh invitation to the caller, or an organization it belongs to; `in` is the first
 * organization's target (somebody else's or nobody's); `other` is the caller's own device in the
 * other organization (not the organization of the session), another organization's invitation to
 * somebody else, or an organization it does not belong to.
 */
type SessionWhere = 'mine' | 'in' | 'other';

interface SessionTarget extends OwnedDevice {
  invitationId: string;
  organizationId: string;
  passkeyId: string;
}

interface SessionExpectation {
  /** The status per target; a target not named is not tried (own-account routes have only `mine`). */
  status: Partial<Record<SessionWhere, number>>;
  /** The error code of a refusal where the status alone says too little. */
  code?: string;
  /** `fresh`: a session signed in for this call (the route ends or replaces it); `ends-all` ends every one. */
  session?: 'fresh' | 'ends-all';
  /** `mine` is a pending invitation to the caller from an organization it has not joined. */
  invitation?: boolean;
  before?: (session: CookieSession) => Promise<void>;
  request: (target: SessionTarget, caller: Caller) => InjectOptions;
  /** Lists: the target must be listed for `mine` only. */
  lists?: (body: unknown, target: SessionTarget) => boolean;
  /** More about an answer with the expected status (a refusal too); returns what is wrong, if anything. */
  check?: (
    res: LightMyRequestResponse,
    target: SessionTarget,
    caller: Caller,
    session: CookieSession,
  ) => string | undefined | Promise<string | undefined>;
}

const own = (ok: number) => ({ mine: ok, in: 404, other: 404 });
const everywhere = (ok: number) => ({ mine: ok, in: ok, other: ok });
const nextPassword = (password: string) => `${password} again`;

async function enrollTotp(session: CookieSession) {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/auth/mfa/totp/enroll',
    headers: session.write,
  });
  expect(res.statusCode, res.body).toBe(200);
}

const me = (session: CookieSession) => t.app.inject({ url: '/api/auth/me', headers: session.read });

const SESSION_EXPECTATIONS: Record<string, SessionExpectation> = {
  'GET /api/self-service/devices': {
    status: everywhere(200),
    request: () => ({ url: '/api/self-service/devices' }),
    lists: (b, x) => ids(b, 'devices').includes(x.deviceId),
  },
  'GET /api/self-service/devices/:deviceId/recovery-keys': {
    status: own(200),
    request: (x) => ({ url: `/api/self-service/devices/${x.deviceId}/recovery-keys` }),
    check: (res, x) =>
      res.statusCode !== 200 || ids(res.json(), 'recoveryKeys').includes(x.keyRecordId)
        ? undefined
        : 'key not listed',
  },
  'GET /api/self-service/recovery-keys': {
    status: everywhere(200),
    request: (x) => ({ url: `/api/self-service/recovery-keys?keyIdPrefix=${x.keyId.slice(0, 8)}` }),
    lists: (b, x) => ids(b, 'recoveryKeys').includes(x.keyRecordId),
  },
  'POST /api/self-service/recovery-keys/:recoveryKeyId/disclose': {
    status: own(200),
    request: (x) => ({
      method: 'POST',
      url: `/api/self-service/recovery-keys/${x.keyRecordId}/disclose`,
      payload: { reason: 'matrix: locked out' },
    }),
    check: (res, x) =>
      res.statusCode !== 200 || res.json().recoveryPassword === x.password
        ? undefined
        : 'not the key of the device',
  },
  'GET /api/me/organizations': {
    status: { mine: 200 },
    request: () => ({ url: '/api/me/organizations' }),
    check: (res) => {
      const mine = (res.json().organizations as { organizationId: string }[]).map((o) => o.organizationId);
      return mine.includes(shared.orgA) && mine.includes(shared.orgB) && !mine.includes(shared.orgC)
        ? undefined
        : `organizations ${mine.join(', ')}`;
    },
  },
  'POST /api/auth/switch-organization': {
    status: { mine: 200, other: 404 },
    session: 'fresh',
    request: (x) => ({
      method: 'POST',
      url: '/api/auth/switch-organization',
      payload: { organizationId: x.organizationId },
    }),
    check: (res, x) =>
      res.statusCode !== 200 || res.json().organizationId === x.organizationId
        ? undefined
        : 'another organization',
  },
  'GET /api/auth/invitations': {
    status: everywhere(200),
    invitation: true,
    request: () => ({ url: '/api/auth/invitations' }),
    lists: (b, x) => ids(b, 'invitations').includes(x.invitationId),
  },
  'POST /api/auth/invitations/:invitationId/accept': {
    status: own(200),
    invitation: true,
    request: (x) => ({ method: 'POST', url: `/api/auth/invitations/${x.invitationId}/accept` }),
  },
  'POST /api/auth/invitations/:invitationId/decline': {
    status: own(204),
    invitation: true,
    request: (x) => ({ method: 'POST', url: `/api/auth/invitations/${x.invitationId}/decline` }),
  },
  'GET /api/auth/me': {
    status: { mine: 200 },
    request: () => ({ url: '/api/auth/me' }),
    check: (res, _x, c) => {
      const body = res.json() as { userId: string; organizationId: string };
      return body.userId === c.person.userId && body.organizationId === shared.orgA ? undefined : res.body;
    },
  },
  'POST /api/auth/change-password': {
    status: { mine: 204 },
    request: (_x, c) => ({
      method: 'POST',
      url: '/api/auth/change-password',
      payload: { currentPassword: c.person.password, newPassword: nextPassword(c.person.password) },
    }),
    // Later sessions sign in with the new password, which shows it took.
    check: (_res, _x, c) => {
      c.person.password = nextPassword(c.person.password);
      return undefined;
    },
  },
  'POST /api/auth/sign-out-everywhere': {
    status: { mine: 200 },
    session: 'ends-all',
    request: () => ({ method: 'POST', url: '/api/auth/sign-out-everywhere' }),
    check: async (_res, _x, c) =>
      (await me(c.session)).statusCode === 401 ? undefined : 'a session lives on',
  },
  'GET /api/auth/session': {
    status: { mine: 200 },
    request: () => ({ url: '/api/auth/session' }),
    check: (res, _x, c) =>
      res.json().userId === c.person.userId && res.json().state === 'active' ? undefined : res.body,
  },
  'POST /api/auth/sign-out': {
    status: { mine: 204 },
    session: 'fresh',
    request: () => ({ method: 'POST', url: '/api/auth/sign-out' }),
    check: async (_res, _x, _c, session) =>
      (await me(session)).statusCode === 401 ? undefined : 'the session lives on',
  },
  'GET /api/auth/mfa': {
    status: { mine: 200 },
    request: () => ({ url: '/api/auth/mfa' }),
    check: (res) => (res.body.includes(shared.othersPasskey) ? "shows somebody else's passkey" : undefined),
  },
  'POST /api/auth/mfa/totp/enroll': {
    status: { mine: 200 },
    request: () => ({ method: 'POST', url: '/api/auth/mfa/totp/enroll' }),
  },
  'POST /api/auth/mfa/totp/confirm': {
    status: { mine: 401 },
    code: 'MFA_INVALID',
    before: enrollTotp,
    request: () => ({ method: 'POST', url: '/api/auth/mfa/totp/confirm', payload: { code: '000000' } }),
  },
  'DELETE /api/auth/mfa/totp': {
    status: { mine: 204 },
    // Removing a factor needs a recent sign-in.
    session: 'fresh',
    before: enrollTotp,
    request: () => ({ method: 'DELETE', url: '/api/auth/mfa/totp' }),
  },
  'DELETE /api/auth/mfa/webauthn/credentials/:credentialId': {
    status: { in: 404 },
    session: 'fresh',
    request: (x) => ({ method: 'DELETE', url: `/api/auth/mfa/webauthn/credentials/${x.passkeyId}` }),
    check: async () => {
      const row = await t.vault.db
        .selectFrom('webauthn_credentials')
        .select('id')
        .where('id', '=', shared.othersPasskey)
        .executeTakeFirst();
      return row ? undefined : "somebody else's passkey was removed";
    },
  },
  // Passkeys need the public URL, which this vault has not.
  'POST /api/auth/mfa/webauthn/registration/options': {
    status: { mine: 503 },
    code: 'NOT_READY',
    request: () => ({ method: 'POST', url: '/api/auth/mfa/webauthn/registration/options' }),
  },
  'POST /api/auth/mfa/webauthn/registration/verify': {
    status: { mine: 503 },
    code: 'NOT_READY',
    request: () => ({
      method: 'POST',
      url: '/api/auth/mfa/webauthn/registration/verify',
      payload: { credential: FAKE_REGISTRATION },
    }),
  },
  // The second step of a sign-in: a session that owes none (active) is not one these serve.
  'POST /api/auth/mfa/verify': {
    status: { mine: 401 },
    code: 'UNAUTHENTICATED',
    request: () => ({ method: 'POST', url: '/api/auth/mfa/verify', payload: { code: '000000' } }),
  },
  'POST /api/auth/mfa/webauthn/authentication/options': {
    status: { mine: 401 },
    code: 'UNAUTHENTICATED',
    request: () => ({ method: 'POST', url: '/api/auth/mfa/webauthn/authentication/options' }),
  },
  'POST /api/auth/mfa/webauthn/authentication/verify': {
    status: { mine: 401 },
    code: 'UNAUTHENTICATED',
    request: () => ({
      method: 'POST',
      url: '/api/auth/mfa/webauthn/authentication/verify',
      payload: { credential: FAKE_ASSERTION },
    }),
  },
};

/** A pending invitation to the caller from a new organization (an MSP's new customer). */
async function invitationFor(caller: Caller): Promise<string> {
  const organizationId = await createOrganization(t, `Inviting ${unique()}`);
  const invitation = await t.vault.services.invitations.invite(
    organizationId,
    { username: caller.person.username, roleId: 'report-reader' },
    { type: 'cli', id: null },
  );
  return invitation.id;
}

async function sessionTarget(
  caller: Caller,
  where: SessionWhere,
  e: SessionExpectation,
): Promise<SessionTarget> {
  const x = shared.targets;
  switch (where) {
    case 'mine':
      return {
        ...caller.ownA,
        invitationId: e.invitation ? await invitationFor(caller) : '',
        organizationId: shared.orgB,
        passkeyId: '',
      };
    case 'in':
      return {
        deviceId: x.in.deviceId,
        keyRecordId: x.in.keyRecordId,
        keyId: x.in.keyId,
        password: x.in.password,
        invitationId: x.in.invitationId,
        organizationId: shared.orgA,
        passkeyId: shared.othersPasskey,
      };
    case 'other':
      return {
        ...caller.ownB,
        invitationId: x.other.invitationId,
        organizationId: shared.orgC,
        passkeyId: '',
      };
  }
}

describe('cookie sessions: own account, self-service, organizations, invitations, MFA', () => {
  it('has a session expectation for every route a person signed in uses and a token cannot', () => {
    const sessionRoutes = Object.entries(EXPECTATIONS)
      .filter(([k, e]) => e.tokenStatus !== undefined && routeOf(k)?.principals.includes('user'))
      .map(([k]) => k);
    expect(sessionRoutes.filter((k) => !(k in SESSION_EXPECTATIONS))).toEqual([]);
    expect(Object.keys(SESSION_EXPECTATIONS).filter((k) => !sessionRoutes.includes(k))).toEqual([]);
  });

  for (const [route, e] of Object.entries(SESSION_EXPECTATIONS)) {
    it(route, async () => {
      const failures: string[] = [];
      for (const caller of callers) {
        for (const [where, status] of Object.entries(e.status) as [SessionWhere, number][]) {
          const target = await sessionTarget(caller, where, e);
          const session = e.session ? await sessionOf(caller.person) : caller.session;
          if (e.before) await e.before(session);
          const req = e.request(target, caller);
          const res = await t.app.inject({
            ...req,
            remoteAddress: caller.address,
            headers: {
              ...(req.headers ?? {}),
              ...((req.method ?? 'GET') === 'GET' ? session.read : session.write),
            },
          } as InjectOptions);
          const label = `${caller.role}/${caller.scope} session -> ${where}`;
          if (res.statusCode !== status) {
            failures.push(`${label}: ${res.statusCode} (wanted ${status}) ${res.body.slice(0, 160)}`);
          } else if (e.code !== undefined && res.json().error?.code !== e.code) {
            failures.push(`${label}: ${res.json().error?.code} (wanted ${e.code})`);
          } else {
            if (e.lists && e.lists(res.json(), target) !== (where === 'mine')) {
              failures.push(`${label}: listed=${where !== 'mine'} (wanted ${where === 'mine'})`);
            }
            const wrong = e.check ? await e.check(res, target, caller, session) : undefined;
            if (wrong) failures.push(`${label}: ${wrong}`);
          }
          if (e.session === 'ends-all') caller.session = await sessionOf(caller.person);
        }
      }
      expect(failures).toEqual([]);
    });
  }

  it("a session acts with the person's roles and their scope, which owning a device does not widen", async () => {
    const failures: string[] = [];
    for (const caller of callers) {
      const orgWide = caller.scope === 'organization';
      // The caller's own device is in the group its group-scoped assignments do not cover.
      const scoped = (allowed: RoleKey[], ok: number) =>
        !allowed.includes(caller.role) ? 403 : orgWide ? ok : 404;
      for (const [req, want] of [
        [{ url: `/api/devices/${caller.ownA.deviceId}` }, scoped(DEVICE_READERS, 200)],
        [
          {
            method: 'POST',
            url: `/api/recovery-keys/${caller.ownA.keyRecordId}/disclose`,
            payload: { reason: 'matrix: session' },
          },
          scoped(KEY_DISCLOSERS, 200),
        ],
        [{ url: '/api/audit-log' }, AUDIT_READERS.includes(caller.role) && orgWide ? 200 : 403],
      ] as [InjectOptions, number][]) {
        const res = await t.app.inject({
          ...req,
          remoteAddress: caller.address,
          headers: req.method === 'POST' ? caller.session.write : caller.session.read,
        } as InjectOptions);
        if (res.statusCode !== want) {
          failures.push(
            `${caller.role}/${caller.scope} session ${String(req.url)}: ${res.statusCode} (wanted ${want})`,
          );
        }
      }
    }
    expect(failures).toEqual([]);
  });
});

describe('shared security helper on device and key routes', () => {
  it('no credential, wrong credential, missing permission, other organization', async () => {
    const reportReader = callers.find((c) => c.role === 'report-reader' && c.scope === 'organization')!;
    const x = shared.targets.in;
    for (const request of [
      { url: `/api/devices/${x.deviceId}` },
      { url: `/api/recovery-keys/${x.keyRecordId}` },
      {
        method: 'POST' as const,
        url: `/api/recovery-keys/${x.keyRecordId}/disclose`,
        payload: { reason: 'sec' },
      },
      { method: 'DELETE' as const, url: `/api/devices/${x.deviceId}` },
      { method: 'PUT' as const, url: `/api/devices/${x.deviceId}/owner`, payload: { ownerUserId: null } },
    ]) {
      await checkRouteSecurity(t, {
        request,
        missingPermission: reportReader.token,
        otherOrganization: shared.adminB,
      });
    }
  });
});
