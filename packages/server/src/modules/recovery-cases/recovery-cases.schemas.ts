/** Schemas of the recovery-case routes: strict, bounded inputs and whitelisted responses. */
import { z } from 'zod';
import { boundedString, recordId, timestamp } from '../../lib/schemas.js';
import { disclosureReasonCode } from './reason-codes.js';
import { ROOT_CAUSE_CLASSES, rootCauseAnswers } from './root-causes.js';

export const IDENTITY_METHODS = ['email-code', 'second-person', 'attested'] as const;
export type IdentityMethod = (typeof IDENTITY_METHODS)[number];

export const CASE_STATUSES = [
  'open',
  'awaiting-approval',
  'disclosed',
  'awaiting-rotation',
  'closed',
  'cancelled',
] as const;

export const CASE_STEPS = [
  'identity',
  'device',
  'key-id',
  'locate',
  'root-cause',
  'disclose',
  'rotate',
] as const;
export type CaseStep = (typeof CASE_STEPS)[number];

export const caseParams = z.strictObject({ caseId: recordId('recoveryCase') });

export const createCaseBody = z.strictObject({
  requesterUserId: recordId('user').describe('The locked-out user'),
  reference: boundedString(200).optional().describe('Ticket or call reference'),
});

export const requestersQuery = z.strictObject({
  query: boundedString(100).describe('Start of the username or display name (case-insensitive)'),
  limit: z.coerce.number().int().min(1).max(20).default(20),
});

/** Who may be the requester of a case: whether an e-mail is registered, never the address. */
export const requestersResponse = z.object({
  requesters: z.array(
    z.object({
      userId: z.string(),
      username: z.string(),
      displayName: z.string(),
      hasEmail: z.boolean(),
    }),
  ),
});

export const listCasesQuery = z.strictObject({
  status: z.enum([...CASE_STATUSES, 'active', 'all']).default('active'),
  deviceId: recordId('device').optional(),
  requesterUserId: recordId('user').optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

export const identityBody = z.discriminatedUnion('method', [
  z.strictObject({ method: z.literal('email-code') }),
  z.strictObject({
    method: z.literal('second-person'),
    note: boundedString(1000).optional(),
  }),
  z.strictObject({
    method: z.literal('attested'),
    attestation: z.enum(['in-person', 'call-back']),
    note: boundedString(1000, 10).describe('What was checked, and how'),
  }),
]);

export const identityCodeBody = z.strictObject({
  code: z
    .string()
    .max(20)
    .regex(/^[0-9 -]+$/, 'the digits of the code'),
});

export const deviceBody = z.strictObject({ deviceName: boundedString(255) });

export const keyIdBody = z.strictObject({
  keyId: z
    .string()
    .max(40)
    .regex(
      /^\{?(?:[0-9a-fA-F]{8}|[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})\}?$/,
      'the 8 or 32 hex digits of the key id the recovery screen shows',
    ),
});

export const rootCauseBody = z.strictObject({
  answers: rootCauseAnswers,
  note: boundedString(1000).optional(),
});

export const approveBody = z.strictObject({
  subject: z.enum(['identity', 'disclosure']),
  note: boundedString(1000).optional(),
});

export const discloseCaseBody = z
  .strictObject({
    reasonCode: disclosureReasonCode,
    reason: boundedString(500).optional().describe('Free text; required with reason code `other`'),
  })
  .refine((b) => b.reasonCode !== 'other' || (b.reason !== undefined && b.reason.trim().length >= 3), {
    message: 'reason code other needs a reason of at least 3 characters',
    path: ['reason'],
  });

export const readBackBody = z.strictObject({
  typed: boundedString(200).describe('What the user typed or read back, any separators'),
});

export const noteBody = z.strictObject({ note: boundedString(1000, 3) });

export const policyBody = z.strictObject({
  identityMethods: z.array(z.enum(IDENTITY_METHODS)).min(1).max(3).optional(),
  requireDisclosureApproval: z.boolean().optional(),
  allowRootCauseAfterDisclosure: z.boolean().optional(),
});

export const policyResponse = z.object({
  identityMethods: z.array(z.enum(IDENTITY_METHODS)),
  requireDisclosureApproval: z.boolean(),
  allowRootCauseAfterDisclosure: z.boolean(),
});

const actor = z.object({ type: z.string(), id: z.string().nullable() });

const stepRecord = z.object({
  step: z.enum([...CASE_STEPS, 'approval', 'owner-override', 'read-back', 'cancel']),
  action: z.string(),
  actor,
  occurredAt: timestamp,
  auditEntryId: z.string(),
  details: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
});

const resolution = z.object({
  class: z.enum(ROOT_CAUSE_CLASSES),
  title: z.string(),
  steps: z.array(z.string()),
});

/** A BitLocker event as a case shows it: what it means and when, never the event's text. */
const caseDeviceEvent = z.object({
  id: z.string(),
  eventId: z.number(),
  role: z.enum(['cause', 'unlock', 'protector-change']).nullable(),
  summary: z.string().nullable(),
  occurredAt: timestamp,
  level: z.string().nullable(),
  protectorId: z.string().nullable(),
});

export const caseResponse = z.object({
  id: z.string(),
  status: z.enum(CASE_STATUSES),
  reference: z.string().nullable(),
  requester: z.object({ id: z.string(), username: z.string(), displayName: z.string() }),
  operator: actor,
  createdAt: timestamp,
  updatedAt: timestamp,
  closedAt: timestamp.nullable(),
  /** The next checklist step the case is waiting for, or null when nothing is owed. */
  nextStep: z.string().nullable(),
  warnings: z.array(z.string()),
  identity: z.object({
    method: z.enum(IDENTITY_METHODS).nullable(),
    verified: z.boolean(),
    verifiedAt: timestamp.nullable(),
    ownerMatch: z.enum(['match', 'mismatch', 'unknown']).nullable(),
    ownerOverridden: z.boolean(),
  }),
  device: z.object({ id: z.string(), name: z.string() }).nullable(),
  key: z.object({
    entered: z.string().nullable(),
    match: z.enum(['this-device', 'other-device', 'not-found']).nullable(),
    recoveryKeyRecordId: z.string().nullable(),
    located: z.boolean(),
  }),
  /**
   * Once a device is recorded: its BitLocker events since a week before the case was opened (newest
   * first, at most 50) and the root cause they suggest, shown beside the root-cause questions.
   */
  deviceEvents: z
    .object({
      since: timestamp,
      events: z.array(caseDeviceEvent),
      suggestedRootCause: z
        .object({
          cause: z.enum(ROOT_CAUSE_CLASSES),
          title: z.string(),
          confidence: z.enum(['high', 'medium', 'low']),
          evidence: z.array(z.number()),
        })
        .nullable(),
    })
    .nullable(),
  rootCause: z.object({ answers: rootCauseAnswers, resolution }).nullable(),
  approval: z.object({
    required: z.boolean(),
    approved: z.boolean(),
    approvedBy: actor.nullable(),
  }),
  disclosure: z
    .object({
      disclosedAt: timestamp,
      reasonCode: z.string().nullable(),
      auditEntryId: z.string().nullable(),
    })
    .nullable(),
  rotation: z
    .object({
      requestId: z.string().nullable(),
      state: z.enum(['pending', 'completed', 'failed', 'not-required']),
    })
    .nullable(),
  steps: z.array(stepRecord),
});

export const caseListResponse = z.object({
  recoveryCases: z.array(
    z.object({
      id: z.string(),
      status: z.enum(CASE_STATUSES),
      reference: z.string().nullable(),
      requesterUserId: z.string(),
      deviceId: z.string().nullable(),
      nextStep: z.string().nullable(),
      createdAt: timestamp,
      updatedAt: timestamp,
    }),
  ),
});

export const keyIdResponse = z.object({
  case: caseResponse,
  match: z.enum(['this-device', 'other-device', 'not-found']),
  /** When the key id belongs to another device: that device when you may see it, else null. */
  otherDevice: z.object({ id: z.string(), name: z.string() }).nullable(),
  message: z.string(),
});

export const locateResponse = z.object({
  case: caseResponse,
  recoveryKey: z.object({
    id: z.string(),
    recoveryKeyId: z.string(),
    status: z.enum(['active', 'superseded', 'rotation_pending']),
    createdAt: timestamp,
    lastDisclosedAt: timestamp.nullable(),
    volume: z.object({
      id: z.string(),
      volumeGuid: z.string(),
      volumeType: z.enum(['os', 'fixed', 'removable']),
      driveLetter: z.string().nullable(),
    }),
  }),
});

export const rootCauseResponse = z.object({ case: caseResponse, resolution });

export const discloseCaseResponse = z.object({
  case: caseResponse,
  recoveryKeyRecordId: z.string(),
  recoveryKeyId: z.string(),
  recoveryPassword: z.string(),
  groups: z.array(z.string()),
  readAloud: z.array(z.string()),
  auditEntryId: z.string(),
});

export const readBackResponse = z.object({
  ok: z.boolean(),
  groups: z.array(
    z.object({ group: z.number(), verdict: z.enum(['ok', 'checksum', 'mismatch', 'missing']) }),
  ),
  extraGroups: z.boolean(),
});

export const codeSentResponse = z.object({
  case: caseResponse,
  sentTo: z.string().describe('The address, masked'),
  expiresAt: timestamp,
});
