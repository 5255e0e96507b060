/** Schemas of the device lookup routes; responses whitelist fields so a row never leaks. */
import { z } from 'zod';
import { boundedString, recordId, timestamp } from '../../lib/schemas.js';

export const volumeType = z.enum(['os', 'fixed', 'removable']);

export const deviceSummary = z.object({
  id: z.string(),
  name: z.string(),
  dnsName: z.string().nullable(),
  os: z.string().nullable(),
  serialNumber: z.string().nullable(),
  registeredOwner: z.string().nullable().describe('As the agent reported it; informational'),
  ownerUserId: z
    .string()
    .nullable()
    .describe('The owning user: self-service and user-member groups go by this'),
  firstSeenAt: timestamp,
  lastSeenAt: timestamp,
  deletedAt: timestamp.nullable(),
});

export const volumeSummary = z.object({
  id: z.string(),
  volumeGuid: z.string(),
  volumeType,
  driveLetter: z.string().nullable(),
  encryptionMethod: z.string().nullable(),
  protectionStatus: z.string().nullable(),
  updatedAt: timestamp,
});

export const deviceDetail = deviceSummary.extend({
  groupIds: z.array(z.string()),
  volumes: z.array(volumeSummary),
});

export const searchDevicesQuery = z
  .strictObject({
    name: boundedString(255).optional(),
    match: z.enum(['exact', 'prefix']).default('exact'),
    owner: boundedString(100)
      .optional()
      .describe("Prefix of the owning user's username or display name, or of the agent-reported owner"),
    includeDeleted: z.enum(['true', 'false']).default('false'),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  // An unfiltered listing is not a search: one of the two filters narrows it.
  .refine((q) => q.name !== undefined || q.owner !== undefined, { message: 'name or owner is required' });

export const deviceParams = z.strictObject({ deviceId: recordId('device') });

export const setOwnerBody = z.strictObject({ ownerUserId: recordId('user').nullable() });

export const moveDeviceBody = z
  .strictObject({
    add: z.array(recordId('deviceGroup')).max(50).default([]),
    remove: z.array(recordId('deviceGroup')).max(50).default([]),
  })
  .refine((b) => b.add.length + b.remove.length > 0, { message: 'add or remove at least one group' });
