/** Schemas of the API-token routes. */
import { z } from 'zod';
import { boundedString, recordId, timestamp } from '../../lib/schemas.js';
import { isPermissionGrant } from '../access/permissions.js';

export const permissionGrant = z.string().max(64).refine(isPermissionGrant, 'unknown permission');

export const createApiTokenBody = z.strictObject({
  name: boundedString(200),
  permissions: z.array(permissionGrant).min(1).max(32),
  /** Absent: organization-wide. Present: only devices in these groups (directly or through their owner). */
  deviceGroupIds: z.array(recordId('deviceGroup')).min(1).max(50).optional(),
  /** `personal` (default for people) acts as you, never beyond your current rights; `service` stands alone. */
  kind: z.enum(['personal', 'service']).optional(),
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});

export const apiTokenSummary = z.object({
  id: z.string(),
  name: z.string(),
  permissions: z.array(z.string()),
  kind: z.enum(['personal', 'service']),
  deviceGroupIds: z.array(z.string()).nullable(),
  createdByUserId: z.string().nullable(),
  expiresAt: timestamp.nullable(),
  lastUsedAt: timestamp.nullable(),
  createdAt: timestamp,
  revokedAt: timestamp.nullable(),
});

export const createdApiToken = apiTokenSummary.extend({
  /** Shown once; only its hash is stored. */
  token: z.string(),
});

export const apiTokenParams = z.strictObject({ apiTokenId: recordId('apiToken') });
