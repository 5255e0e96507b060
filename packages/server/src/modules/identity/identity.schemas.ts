/** Request and response schemas of the sign-in, session, account and user-administration routes. */
import { z } from 'zod';
import { boundedString, recordId, timestamp } from '../../lib/schemas.js';
import { isPermissionGrant } from '../access/permissions.js';
import { MAX_PASSWORD_LENGTH } from './password-policy.js';

export const usernameSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[^\s\p{Cc}][^\p{Cc}]*$/u, 'must not start with a space or contain control characters');

export const signInBody = z.strictObject({
  username: boundedString(100),
  password: boundedString(MAX_PASSWORD_LENGTH),
});

const sessionState = z.enum(['active', 'mfa-pending', 'mfa-enrollment-required']);
const mfaMethod = z.enum(['totp', 'webauthn', 'recovery-code']);

export const signInResponse = z.object({
  userId: z.string(),
  username: z.string(),
  organizationId: z.string(),
  expiresAt: timestamp,
  /** While true, only the password change, sign-out and `me` routes answer. */
  mustChangePassword: z.boolean(),
  /** `active`, or the MFA step owed before the session grants anything. */
  state: sessionState,
  mfaMethods: z.array(mfaMethod),
  /** Send it in `x-csrf-token` with every state-changing request made with the session cookie. */
  csrfToken: z.string(),
});

export const sessionResponse = z.object({
  userId: z.string(),
  organizationId: z.string(),
  state: sessionState,
  expiresAt: timestamp,
  csrfToken: z.string(),
});

export const changePasswordBody = z.strictObject({
  currentPassword: boundedString(MAX_PASSWORD_LENGTH),
  newPassword: boundedString(MAX_PASSWORD_LENGTH),
});

export const meResponse = z.object({
  userId: z.string(),
  username: z.string(),
  displayName: z.string(),
  organizationId: z.string(),
  permissions: z.array(z.string()),
  mustChangePassword: z.boolean(),
});

export const revokedResponse = z.object({ revoked: z.number().int() });

export const userIdParams = z.strictObject({ id: recordId('user') });

const grant = z.string().max(64).refine(isPermissionGrant, 'must be a permission, area:* or *');

/** Where one-time identity codes and notifications for the person go. */
const emailSchema = z.email().max(254);

export const createUserBody = z.strictObject({
  username: usernameSchema,
  displayName: boundedString(200).optional(),
  email: emailSchema.optional(),
  permissions: z.array(grant).max(50).default([]),
});

export const updateUserBody = z
  .strictObject({
    displayName: boundedString(200).optional(),
    email: emailSchema.nullable().optional(),
  })
  .refine((b) => b.displayName !== undefined || b.email !== undefined, 'nothing to change');

export const createdUserResponse = z.object({ userId: z.string(), oneTimePassword: z.string() });

export const oneTimePasswordResponse = z.object({ oneTimePassword: z.string() });

export const userSummary = z.object({
  userId: z.string(),
  username: z.string(),
  displayName: z.string(),
  email: z.string().nullable(),
  authSource: z.enum(['local', 'oidc', 'ldap']),
  permissions: z.array(z.string()),
  mustChangePassword: z.boolean(),
  disabledAt: timestamp.nullable(),
  createdAt: timestamp,
  managedHere: z
    .boolean()
    .describe(
      'True when this organization manages the account (its home): only then can it reset the password, change the profile or e-mail, disable the account or end all its sessions',
    ),
});

export const userListResponse = z.object({ users: z.array(userSummary) });

export const mfaPolicyBody = z.strictObject({ requireMfaForDisclosure: z.boolean() });
export const mfaPolicyResponse = z.object({ requireMfaForDisclosure: z.boolean() });
