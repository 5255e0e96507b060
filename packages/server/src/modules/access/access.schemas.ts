/** Schemas of the access routes: roles, role assignments, members, device groups, settings, suspensions, organizations. */
import { z } from 'zod';
import { boundedString, recordId, timestamp } from '../../lib/schemas.js';
import { isPermissionGrant } from './permissions.js';

const permissionGrant = z.string().max(64).refine(isPermissionGrant, 'unknown permission');
/** A built-in role key or a custom role id. */
export const roleId = z
  .string()
  .max(40)
  .regex(/^([a-z]+(-[a-z]+)*|rol_[0-9a-z]{26})$/, 'must be a role id');

export const role = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  permissions: z.array(z.string()),
  builtIn: z.boolean(),
});

export const roleParams = z.strictObject({ roleId: recordId('role') });

export const createRoleBody = z.strictObject({
  name: boundedString(100),
  description: boundedString(500, 0).default(''),
  permissions: z.array(permissionGrant).min(1).max(32),
});

export const updateRoleBody = z
  .strictObject({
    name: boundedString(100).optional(),
    description: boundedString(500, 0).optional(),
    permissions: z.array(permissionGrant).min(1).max(32).optional(),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), { message: 'change at least one field' });

export const roleAssignment = z.object({
  id: z.string(),
  roleId: z.string(),
  userId: z.string().nullable(),
  externalGroup: z.string().nullable(),
  /** null: organization-wide. */
  deviceGroupIds: z.array(z.string()).nullable(),
  createdAt: timestamp,
});

export const roleAssignmentParams = z.strictObject({ roleAssignmentId: recordId('roleAssignment') });

export const createRoleAssignmentBody = z
  .strictObject({
    roleId,
    userId: recordId('user').optional(),
    /** An SSO claim value or LDAP group name; compared case-insensitively. */
    externalGroup: boundedString(256).optional(),
    /** Absent: organization-wide. Present: only devices in these groups (directly or through their owner). */
    deviceGroupIds: z.array(recordId('deviceGroup')).min(1).max(50).optional(),
  })
  .refine((b) => (b.userId === undefined) !== (b.externalGroup === undefined), {
    message: 'give exactly one of userId, externalGroup',
  });

/** A member of the organization (removing the membership acts here only, never on the account). */
export const memberParams = z.strictObject({ userId: recordId('user') });

export const deviceGroup = z.object({ id: z.string(), name: z.string(), createdAt: timestamp });
export const deviceGroupParams = z.strictObject({ deviceGroupId: recordId('deviceGroup') });
export const deviceGroupBody = z.strictObject({ name: boundedString(200) });
export const deviceGroupMembers = z.object({ deviceIds: z.array(z.string()), userIds: z.array(z.string()) });
export const addMembersBody = z
  .strictObject({
    deviceIds: z.array(recordId('device')).max(500).default([]),
    userIds: z.array(recordId('user')).max(500).default([]),
  })
  .refine((b) => b.deviceIds.length + b.userIds.length > 0, { message: 'add at least one member' });
export const groupDeviceParams = deviceGroupParams.extend({ deviceId: recordId('device') });
export const groupUserParams = deviceGroupParams.extend({ userId: recordId('user') });

export const settings = z.object({
  restrictOwnerKeyRecovery: z
    .boolean()
    .describe('Restrict users from recovering the BitLocker key(s) for their owned devices'),
  disclosureAlertThreshold: z.number().int(),
  disclosureAlertWindowMinutes: z.number().int(),
  suspendOnDisclosureAlert: z.boolean(),
  selfServiceContactText: z.string().nullable().describe('Shown to users when self-service is restricted'),
  selfServiceContactLink: z.string().nullable().describe('An https: or mailto: link shown with it'),
});

/** Only https: and mailto: links: a javascript: or http: link on the refusal page would be a trap. */
export const contactLink = z
  .string()
  .trim()
  .max(500)
  .refine(
    (v) => {
      try {
        const u = new URL(v);
        return (
          (u.protocol === 'https:' && u.hostname !== '') || (u.protocol === 'mailto:' && u.pathname !== '')
        );
      } catch {
        return false;
      }
    },
    { message: 'must be an https: or mailto: link' },
  );

export const updateSettingsBody = z.strictObject({
  restrictOwnerKeyRecovery: z.boolean().optional(),
  disclosureAlertThreshold: z.number().int().min(1).max(10_000).optional(),
  disclosureAlertWindowMinutes: z.number().int().min(1).max(10_080).optional(),
  suspendOnDisclosureAlert: z.boolean().optional(),
  selfServiceContactText: boundedString(500).nullable().optional(),
  selfServiceContactLink: contactLink.nullable().optional(),
});

export const suspension = z.object({
  id: z.string(),
  subjectType: z.enum(['user', 'api-token']),
  subjectId: z.string(),
  reason: z.string(),
  createdAt: timestamp,
  liftedAt: timestamp.nullable(),
});
export const suspensionParams = z.strictObject({ suspensionId: recordId('suspension') });
/** Suspends a member in this organization only; their other organizations are unaffected. */
export const createSuspensionBody = z.strictObject({
  userId: recordId('user'),
  reason: boundedString(500),
});

export const myOrganization = z.object({
  organizationId: z.string(),
  name: z.string(),
  current: z.boolean(),
  roleIds: z.array(z.string()),
});

export const switchOrganizationBody = z.strictObject({ organizationId: recordId('organization') });
export const switchOrganizationResponse = z.object({ organizationId: z.string(), expiresAt: timestamp });
