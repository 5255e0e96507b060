/** Schemas of the recovery-key lookup and disclosure routes. */
import { z } from 'zod';
import { boundedString, guidInput, recordId, timestamp } from '../../lib/schemas.js';
import { volumeType } from '../devices/devices.schemas.js';

export const recoveryKeyMetadata = z.object({
  id: z.string(),
  recoveryKeyId: z.string().describe('The protector GUID, uppercase, without braces'),
  status: z.enum(['active', 'superseded', 'rotation_pending']),
  source: z.enum(['agent', 'import', 'api', 'manual']),
  createdAt: timestamp,
  supersededAt: timestamp.nullable(),
  lastDisclosedAt: timestamp.nullable(),
  device: z.object({ id: z.string(), name: z.string(), deleted: z.boolean() }),
  volume: z.object({
    id: z.string(),
    volumeGuid: z.string(),
    volumeType,
    driveLetter: z.string().nullable(),
  }),
});

/**
 * A device (the lookup's context), a key id or its first 8 hex digits, or a device with either. A
 * key id without a device needs `keys:lookup-by-id`.
 */
export const lookupQuery = z
  .strictObject({
    keyId: guidInput.optional(),
    keyIdPrefix: z
      .string()
      .max(10)
      .regex(/^\{?[0-9a-fA-F]{8}$/, 'must be the first 8 hex digits of a key id')
      .optional(),
    deviceId: recordId('device').optional(),
    limit: z.coerce.number().int().min(1).max(200).default(50),
  })
  .refine((q) => !(q.keyId !== undefined && q.keyIdPrefix !== undefined), {
    message: 'give keyId or keyIdPrefix, not both',
  })
  .refine((q) => [q.keyId, q.keyIdPrefix, q.deviceId].some((v) => v !== undefined), {
    message: 'give a deviceId, a keyId or a keyIdPrefix',
  });

export const recoveryKeyParams = z.strictObject({ recoveryKeyId: recordId('recoveryKey') });

export const discloseBody = z.strictObject({
  reason: boundedString(500, 3).describe('Why the password is needed; recorded in the audit log'),
});

export const discloseResponse = z.object({
  id: z.string(),
  recoveryKeyId: z.string(),
  recoveryPassword: z.string(),
  auditEntryId: z.string(),
});
