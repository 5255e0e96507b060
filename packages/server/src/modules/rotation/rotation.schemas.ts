/** Schemas of the rotation, agent (check-in, result, events) and device-timeline routes; all bounded. */
import { z } from 'zod';
import { boundedString, guidInput, recordId, timestamp } from '../../lib/schemas.js';
import { deviceFacts } from '../escrow/escrow.schemas.js';
import { ACCEPTED_EVENT_IDS } from './bitlocker-events.js';

export const rotationStatus = z.enum(['requested', 'delivered', 'completed', 'failed', 'overdue']);

export const rotation = z.object({
  id: z.string(),
  status: rotationStatus,
  trigger: z.enum(['disclosure', 'on-demand']),
  reason: z.string().nullable(),
  recoveryKey: z.object({ id: z.string(), recoveryKeyId: z.string() }),
  device: z.object({ id: z.string(), name: z.string() }),
  volume: z.object({ id: z.string(), volumeGuid: z.string() }),
  requestedBy: z.object({ type: z.string(), id: z.string().nullable() }),
  requestedAt: timestamp,
  dueAt: timestamp,
  deliveredAt: timestamp.nullable(),
  lastDeliveredAt: timestamp.nullable(),
  completedAt: timestamp.nullable(),
  failedAt: timestamp.nullable(),
  failureReason: z.string().nullable(),
  overdueAt: timestamp.nullable(),
  newRecoveryKey: z.object({ id: z.string(), recoveryKeyId: z.string() }).nullable(),
});

export const rotationParams = z.strictObject({ rotationId: recordId('rotationRequest') });

export const listRotationsQuery = z.strictObject({
  status: rotationStatus.optional(),
  deviceId: recordId('device').optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: boundedString(400).optional(),
});

export const listRotationsResponse = z.object({
  rotations: z.array(rotation),
  nextCursor: z.string().nullable(),
});

export const requestRotationBody = z
  .strictObject({ reason: boundedString(500).optional() })
  .optional()
  .describe('Why the rotation is requested (recorded in the audit log)');

export const requestRotationResponse = z.object({
  created: z.number().describe('Requests opened by this call'),
  alreadyOpen: z.number().describe('Keys that already had an open request (nothing changed for them)'),
  truncated: z.boolean().describe('More keys are left: call again to continue'),
  rotations: z.array(rotation).describe('The requests concerned (at most 200 listed)'),
});

export const recoveryKeyParams = z.strictObject({ recoveryKeyId: recordId('recoveryKey') });
export const deviceParams = z.strictObject({ deviceId: recordId('device') });
export const deviceGroupParams = z.strictObject({ deviceGroupId: recordId('deviceGroup') });

export const rotationPolicy = z.object({
  singleUsePasswords: z.boolean().describe('A disclosed password is rotated (default on)'),
  deadlineDays: z.number().describe('Days a device has to complete a rotation before it is overdue'),
});

export const rotationPolicyPatch = z
  .strictObject({
    singleUsePasswords: z.boolean().optional(),
    deadlineDays: z.number().int().min(1).max(365).optional(),
  })
  .refine((b) => b.singleUsePasswords !== undefined || b.deadlineDays !== undefined, {
    message: 'change at least one setting',
  });

// --- Agent protocol (device credential) ---

export const checkInBody = z.strictObject({
  agentVersion: boundedString(40).optional(),
  device: deviceFacts.partial().omit({ name: true }).optional(),
});

export const checkInResponse = z.object({
  serverTime: timestamp,
  actions: z.array(
    z.object({
      type: z.literal('rotate-recovery-password'),
      rotationId: z.string(),
      recoveryKeyId: z.string().describe('The numerical-password protector to replace'),
      volumeGuid: z.string(),
      requestedAt: timestamp,
      dueAt: timestamp,
    }),
  ),
});

export const rotationResultBody = z.discriminatedUnion('outcome', [
  z.strictObject({
    outcome: z.literal('completed'),
    newRecoveryKeyId: guidInput.describe('The new protector, escrowed before this report'),
    oldProtectorRemoved: z.literal(true),
  }),
  z.strictObject({
    outcome: z.literal('failed'),
    reason: boundedString(500),
  }),
]);

export const agentRotationResponse = z.object({
  rotationId: z.string(),
  status: rotationStatus,
  completedAt: timestamp.nullable(),
  failedAt: timestamp.nullable(),
});

const acceptedEventIds = new Set(ACCEPTED_EVENT_IDS);

export const deviceEventsBody = z.strictObject({
  events: z
    .array(
      z.strictObject({
        recordId: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
        eventId: z
          .number()
          .int()
          .refine((id) => acceptedEventIds.has(id), {
            message: `must be one of ${ACCEPTED_EVENT_IDS.join(', ')}`,
          }),
        occurredAt: z.iso.datetime({ offset: true }).max(40),
        level: boundedString(32).optional(),
        message: boundedString(4000).optional(),
      }),
    )
    .min(1)
    .max(200),
});

export const likelyCauseSchema = z.object({
  cause: z.enum([
    'unknown-pin',
    'lost-startup-key',
    'boot-or-firmware-change',
    'tpm-change',
    'malware-suspected',
    'unknown',
  ]),
  confidence: z.enum(['high', 'medium', 'low']),
  evidence: z.array(z.number()),
});

export const deviceEventsResponse = z.object({
  accepted: z.number(),
  duplicates: z.number(),
  likelyCause: likelyCauseSchema.nullable(),
});

// --- Device history ---

export const deviceEvent = z.object({
  id: z.string(),
  recordId: z.number(),
  eventId: z.number(),
  role: z.enum(['cause', 'unlock', 'protector-change']).nullable(),
  summary: z.string().nullable(),
  occurredAt: timestamp,
  receivedAt: timestamp,
  level: z.string().nullable(),
  protectorId: z.string().nullable(),
  message: z.string().nullable(),
});

export const deviceEventsQuery = z.strictObject({
  since: z.iso.datetime({ offset: true }).max(40).optional(),
});

export const deviceEventsListResponse = z.object({
  events: z.array(deviceEvent),
  likelyCause: likelyCauseSchema.nullable(),
});

export const timelineQuery = z.strictObject({
  order: z.enum(['asc', 'desc']).default('desc'),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: boundedString(400).optional(),
});

const postRecovery = z.object({
  flagged: z.boolean(),
  recoveriesInWindow: z.number(),
  windowDays: z.number(),
});

export const timelineResponse = z.object({
  entries: z.array(
    z.object({
      at: timestamp,
      kind: z.enum([
        'key.escrowed',
        'key.superseded',
        'key.disclosed',
        'rotation.requested',
        'rotation.delivered',
        'rotation.completed',
        'rotation.failed',
        'rotation.overdue',
        'agent.event',
      ]),
      id: z.string(),
      details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
    }),
  ),
  nextCursor: z.string().nullable(),
  postRecovery,
});
