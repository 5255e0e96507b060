/** Schemas of the enrollment and escrow routes; every string and array is bounded. */
import { z } from 'zod';
import { boundedString, guidInput, timestamp } from '../../lib/schemas.js';
import { volumeType } from '../devices/devices.schemas.js';

export const createEnrollmentTokenBody = z.strictObject({
  description: boundedString(200).default('enrollment token'),
  deviceGroupName: boundedString(200).optional(),
  expiresInHours: z
    .number()
    .int()
    .min(1)
    .max(24 * 365)
    .default(24),
  maxUses: z.number().int().min(1).max(1_000_000).default(1),
});

export const enrollmentTokenResponse = z.object({
  id: z.string(),
  /** Shown once; only its hash is stored. */
  enrollmentToken: z.string(),
  deviceGroupId: z.string().nullable(),
  expiresAt: timestamp,
  maxUses: z.number(),
});

export const enrollmentTokenSummary = z.object({
  id: z.string(),
  description: z.string(),
  deviceGroupId: z.string().nullable(),
  createdAt: timestamp,
  expiresAt: timestamp,
  maxUses: z.number(),
  useCount: z.number(),
  revokedAt: timestamp.nullable(),
  /** `active` while it can still enroll a device. */
  status: z.enum(['active', 'expired', 'used-up', 'revoked']),
});

export const enrollmentTokenList = z.object({ enrollmentTokens: z.array(enrollmentTokenSummary) });

export const enrollmentTokenParams = z.strictObject({ enrollmentTokenId: boundedString(64) });

export const deviceFacts = z.strictObject({
  name: boundedString(255),
  dnsName: boundedString(255).optional(),
  os: boundedString(200).optional(),
  serialNumber: boundedString(200).optional(),
  registeredOwner: boundedString(320).optional(),
});

export const enrollBody = z.strictObject({ device: deviceFacts });

export const enrollResponse = z.object({
  deviceId: z.string(),
  /** Shown once; good for the escrow routes only. */
  deviceCredential: z.string(),
});

export const escrowBody = z.strictObject({
  device: deviceFacts.partial().omit({ name: true }).optional(),
  volumes: z
    .array(
      z.strictObject({
        volumeGuid: guidInput,
        volumeType,
        driveLetter: z
          .string()
          .max(3)
          .regex(/^[A-Za-z]:?$/, 'must be a drive letter')
          .optional(),
        encryptionMethod: boundedString(64).optional(),
        protectionStatus: boundedString(64).optional(),
        recoveryKeys: z
          .array(
            z.strictObject({
              recoveryKeyId: guidInput,
              // Loose here (length only): the service reports per-group problems itself.
              recoveryPassword: boundedString(128),
            }),
          )
          .min(1)
          .max(16),
      }),
    )
    .min(1)
    .max(64),
});

export const escrowResponse = z.object({
  deviceId: z.string(),
  volumes: z.array(
    z.object({
      volumeId: z.string(),
      volumeGuid: z.string(),
      recoveryKeys: z.array(
        z.object({
          id: z.string(),
          recoveryKeyId: z.string(),
          status: z.enum(['active', 'superseded', 'rotation_pending']),
          created: z.boolean(),
        }),
      ),
    }),
  ),
});

export type EscrowInput = z.infer<typeof escrowBody>;
export type DeviceFacts = z.infer<typeof deviceFacts>;
