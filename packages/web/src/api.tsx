/**
 * The portal's only way to the server: same-origin JSON calls with the session cookie, the CSRF
 * token held in memory (never in web storage), and errors turned into sentences people understand.
 */

let csrfToken: string | undefined;
let onSignedOut: (() => void) | undefined;

export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/** Called when the server says the session is gone, so the app can go back to sign-in. */
export function onSessionLost(handler: (() => void) | undefined): void {
  onSignedOut = handler;
}

/** What the server's error bodies carry: `{ error: { code, message, requestId } }`. */
export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly requestId: string | undefined;
  readonly serverMessage: string;
  /** The error's structured details as the server sent them (e.g. the self-service contact). */
  readonly details: unknown;

  constructor(
    status: number,
    code: string,
    serverMessage: string,
    requestId: string | undefined,
    details?: unknown,
  ) {
    super(friendlyMessage(code, serverMessage, status));
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.serverMessage = serverMessage;
    this.requestId = requestId;
    this.details = details;
  }
}

const FRIENDLY: Record<string, string> = {
  UNAUTHENTICATED: 'Your session has ended. Sign in again.',
  INVALID_CREDENTIALS: 'The user name or password is not right.',
  SIGN_IN_LOCKED: 'Too many failed sign-ins. Wait a little and try again.',
  MFA_INVALID: 'That code did not work. Check the time on your authenticator and try again.',
  CSRF_TOKEN_INVALID: 'The page was open too long. Reload it and try again.',
  PASSWORD_CHANGE_REQUIRED: 'Choose a new password before you continue.',
  ACCOUNT_SUSPENDED:
    'This account is suspended in this organization. Contact your administrator, or switch to another organization under My account.',
  RATE_LIMITED: 'Too many requests in a short time. Wait a minute and try again.',
  DEVICE_NOT_FOUND: 'This device was not found, or you may not see it.',
  KEY_NOT_FOUND: 'No recovery key was found, or you may not see it.',
  NOT_FOUND: 'Not found, or you may not see it.',
  AUDIT_WRITE_FAILED: 'The audit log could not be written, so nothing was disclosed. Try again later.',
  DECRYPTION_FAILED: 'The stored key could not be decrypted. Contact your administrator.',
  INTERNAL_ERROR: 'Something went wrong on the server.',
  NOT_READY: 'This feature is not set up on the server yet.',
  MAIL_NOT_CONFIGURED: 'E-mail is not set up for this organization yet.',
  DATABASE_UNAVAILABLE:
    'The server cannot reach its database right now. Nothing was changed; try again in a moment.',
  CONCURRENT_CHANGE:
    'Someone changed the same thing at the same moment. Nothing was changed; reload and try again.',
  ACCOUNT_MANAGED_ELSEWHERE:
    'Another organization manages this account, so only its administrators can change the account itself. Here you can suspend or remove the membership.',
  NETWORK: 'The server could not be reached. Check your connection and try again.',
};

/**
 * Validation, conflict and re-authentication messages are written for people already (the last
 * names the server's own time limit); the others get our sentence.
 */
function friendlyMessage(code: string, serverMessage: string, status: number): string {
  if (
    code === 'VALIDATION_FAILED' ||
    code === 'CONFLICT' ||
    code === 'FORBIDDEN' ||
    code === 'REAUTHENTICATION_REQUIRED'
  ) {
    return serverMessage;
  }
  return FRIENDLY[code] ?? (serverMessage || `The server answered ${status}.`);
}

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export async function api<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken !== undefined) headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', '', undefined);
  }
  const requestId = res.headers.get('x-request-id') ?? undefined;
  if (res.status === 204) return null as T;
  const text = await res.text();
  let json: unknown = undefined;
  try {
    json = text.length > 0 ? JSON.parse(text) : null;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const err = (
      json as
        { error?: { code?: string; message?: string; requestId?: string; details?: unknown } } | undefined
    )?.error;
    const e = new ApiError(
      res.status,
      err?.code ?? `HTTP_${res.status}`,
      err?.message ?? '',
      err?.requestId ?? requestId,
      err?.details,
    );
    // Any call may find the session gone or demoted (e.g. /api/auth/mfa-policy right after turning
    // the policy on); only the two calls the session check itself makes are left out, so it never loops.
    if (e.code === 'UNAUTHENTICATED' && path !== '/api/auth/session' && path !== '/api/auth/me') {
      onSignedOut?.();
    }
    throw e;
  }
  return json as T;
}

export const get = <T,>(path: string) => api<T>('GET', path);
export const post = <T,>(path: string, body: unknown = {}) => api<T>('POST', path, body);

/** Query string from defined values only. */
export function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
}

// ---- shapes the portal reads (the server's OpenAPI document is the source) ----

export type SessionState = 'active' | 'mfa-pending' | 'mfa-enrollment-required';

export interface SignInResult {
  userId: string;
  username: string;
  organizationId: string;
  expiresAt: string;
  mustChangePassword: boolean;
  state: SessionState;
  mfaMethods: ('totp' | 'webauthn' | 'recovery-code')[];
  csrfToken: string;
}

export interface Me {
  userId: string;
  username: string;
  displayName: string | null;
  organizationId: string;
  permissions: string[];
  mustChangePassword: boolean;
}

export interface Device {
  id: string;
  name: string;
  dnsName: string | null;
  os: string | null;
  serialNumber: string | null;
  registeredOwner: string | null;
  ownerUserId: string | null;
  firstSeenAt: string;
  lastSeenAt: string | null;
  deletedAt: string | null;
}

export interface Volume {
  id: string;
  volumeGuid: string;
  volumeType: 'os' | 'fixed' | 'removable';
  driveLetter: string | null;
  encryptionMethod: string | null;
  protectionStatus: string | null;
  updatedAt: string;
}

export interface DeviceDetail extends Device {
  groupIds: string[];
  volumes: Volume[];
}

export interface RecoveryKey {
  id: string;
  recoveryKeyId: string;
  status: 'active' | 'superseded' | 'rotation_pending';
  source: string;
  createdAt: string;
  supersededAt: string | null;
  lastDisclosedAt: string | null;
  device: { id: string; name: string; deleted: boolean };
  volume: { id: string; volumeGuid: string; volumeType: string; driveLetter: string | null };
}

export interface Disclosure {
  id: string;
  recoveryKeyId: string;
  recoveryPassword: string;
  auditEntryId: string;
}

export interface AuditEntry {
  seq: number;
  id: string;
  occurredAt: string;
  actorType: string;
  actorId: string | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  outcome: string;
  reason: string | null;
  details: Record<string, unknown>;
  requestId: string | null;
  hash: string;
}

export interface User {
  userId: string;
  username: string;
  displayName: string | null;
  email?: string | null;
  authSource: 'local' | 'oidc' | 'ldap';
  permissions: string[];
  mustChangePassword: boolean;
  disabledAt: string | null;
  createdAt: string;
  /**
   * False when another organization (the one that created the account) manages it: then only that
   * one can reset its password, change its profile or e-mail, disable it or end all its sessions.
   * Absent on servers older than invitations, which managed every member's account.
   */
  managedHere?: boolean;
}

/** An invitation of this organization, as its administrators see it. */
export interface Invitation {
  id: string;
  username: string;
  roleId: string;
  deviceGroupIds: string[] | null;
  status: 'pending' | 'accepted' | 'declined' | 'revoked' | 'expired';
  createdAt: string;
  expiresAt: string;
  answeredAt: string | null;
}

/** An invitation to the signed-in account, to join another organization. */
export interface MyInvitation {
  id: string;
  organizationId: string;
  organizationName: string;
  roleId: string;
  roleName: string;
  deviceGroupNames: string[] | null;
  invitedBy: string | null;
  createdAt: string;
  expiresAt: string;
}

export interface Role {
  id: string;
  name: string;
  description: string | null;
  permissions: string[];
  builtIn: boolean;
}

export interface RoleAssignment {
  id: string;
  roleId: string;
  userId: string | null;
  externalGroup: string | null;
  deviceGroupIds: string[] | null;
  createdAt: string;
}

export interface DeviceGroup {
  id: string;
  name: string;
  createdAt: string;
}

export interface OrgSettings {
  restrictOwnerKeyRecovery: boolean;
  disclosureAlertThreshold: number;
  disclosureAlertWindowMinutes: number;
  suspendOnDisclosureAlert: boolean;
  selfServiceContactText: string | null;
  selfServiceContactLink: string | null;
}

export interface ApiToken {
  id: string;
  name: string;
  permissions: string[];
  kind: 'personal' | 'service';
  deviceGroupIds: string[] | null;
  createdByUserId: string | null;
  expiresAt: string | null;
  lastUsedAt: string | null;
  createdAt: string;
  revokedAt: string | null;
}

/** An enrollment token as listed (the token itself is shown once, at creation). */
export interface EnrollmentTokenSummary {
  id: string;
  description: string;
  deviceGroupId: string | null;
  createdAt: string;
  expiresAt: string;
  maxUses: number;
  useCount: number;
  revokedAt: string | null;
  status: 'active' | 'expired' | 'used-up' | 'revoked';
}

export const PERMISSIONS = [
  'keys:read-metadata',
  'keys:disclose',
  'keys:lookup-by-id',
  'devices:read',
  'devices:write',
  'devices:delete',
  'rotation:request',
  'cases:work',
  'cases:approve',
  'cases:override-owner',
  'escrow:write',
  'enrollment:manage',
  'api-tokens:manage',
  'audit:read',
  'reports:read',
  'org:admin',
] as const;

/**
 * Permissions about devices and their keys, which a device-group scope narrows. The others are about
 * the whole organization (its audit log, settings, tokens): the server grants them only through a
 * whole-organization assignment, never through one limited to device groups.
 */
export const DEVICE_SCOPED_PERMISSIONS: readonly string[] = [
  'keys:read-metadata',
  'keys:disclose',
  'keys:lookup-by-id',
  'devices:read',
  'devices:write',
  'devices:delete',
  'rotation:request',
  'cases:work',
  'cases:approve',
  'cases:override-owner',
];

/** The grants of a role that an assignment limited to device groups does not give. */
export function organizationWideGrants(grants: readonly string[]): string[] {
  return grants.filter((g) =>
    g.endsWith(':*')
      ? PERMISSIONS.some((p) => p.startsWith(g.slice(0, -1)) && !DEVICE_SCOPED_PERMISSIONS.includes(p))
      : !DEVICE_SCOPED_PERMISSIONS.includes(g),
  );
}

/** The server's rule: a grant is the permission, its `area:*`, or `*`. */
export function can(grants: readonly string[] | undefined, permission: string): boolean {
  if (!grants) return false;
  const area = permission.slice(0, permission.indexOf(':'));
  return grants.some((g) => g === '*' || g === permission || g === `${area}:*`);
}
