/** Schemas of the invitation routes: an organization invites an existing account, the account answers. */
import { z } from 'zod';
import { boundedString, recordId, timestamp } from '../../lib/schemas.js';
import { roleAssignment, roleId } from '../access/access.schemas.js';

/** An existing account (an MSP technician, say) is invited to join with one role assignment. */
export const createInvitationBody = z.strictObject({
  username: boundedString(100),
  roleId,
  /** Absent: organization-wide. Present: only devices in these groups. */
  deviceGroupIds: z.array(recordId('deviceGroup')).min(1).max(50).optional(),
});

export const invitationStatus = z.enum(['pending', 'accepted', 'declined', 'revoked', 'expired']);

/** What the inviting organization sees: the same whether or not an account has that user name. */
export const invitation = z.object({
  id: z.string(),
  username: z.string().describe('As typed; whether such an account exists is not disclosed'),
  roleId: z.string(),
  /** null: organization-wide. */
  deviceGroupIds: z.array(z.string()).nullable(),
  status: invitationStatus,
  invitedBy: z.object({ type: z.string(), id: z.string().nullable() }),
  createdAt: timestamp,
  expiresAt: timestamp,
  /** When it was accepted, declined or revoked. */
  answeredAt: timestamp.nullable(),
});

export const invitationParams = z.strictObject({ invitationId: recordId('invitation') });

/** What the invited account sees: who invites it, where, with which role. */
export const myInvitation = z.object({
  id: z.string(),
  organizationId: z.string(),
  organizationName: z.string(),
  roleId: z.string(),
  roleName: z.string(),
  /** null: organization-wide. */
  deviceGroupNames: z.array(z.string()).nullable(),
  /** The inviting administrator's user name; null when a service token sent it. */
  invitedBy: z.string().nullable(),
  createdAt: timestamp,
  expiresAt: timestamp,
});

export const acceptedInvitation = z.object({
  organizationId: z.string(),
  organizationName: z.string(),
  roleAssignment,
});
