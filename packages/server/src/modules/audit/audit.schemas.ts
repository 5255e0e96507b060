/** Schemas of the audit-log routes. */
import { z } from 'zod';
import { boundedString, recordId } from '../../lib/schemas.js';

export const auditEntry = z.object({
  seq: z.number(),
  id: z.string(),
  occurredAt: z.string(),
  actorType: z.string(),
  actorId: z.string().nullable(),
  action: z.string(),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  outcome: z.string(),
  reason: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  requestId: z.string().nullable(),
  hash: z.string(),
});

/** A date (midnight UTC) or an ISO-8601 instant with its offset, as the UTC text the log stores. */
const instant = z
  .string()
  .max(40)
  .pipe(z.union([z.iso.datetime({ offset: true }), z.iso.date()]))
  .transform((s) => new Date(s).toISOString());

/** What the list and the export narrow the organization's log by; all optional, all combined with AND. */
const filterFields = {
  action: z
    .string()
    .min(1)
    .max(100)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*\*?$/, 'must be an action name, or a prefix ending in . or *')
    .optional()
    .describe('An action (`recovery-key.disclosed`), or a prefix ending in `.` or `*` (`recovery-key.`)'),
  outcome: z.enum(['success', 'failure']).optional(),
  actorType: z.enum(['user', 'api-token', 'device', 'system', 'cli']).optional(),
  actor: boundedString(200)
    .optional()
    .describe("An actor id, or a user's user name or display name, an API token's or a device's name"),
  targetType: z
    .string()
    .max(40)
    .regex(/^[a-z][a-z0-9-]*$/, 'must be a target type such as device or recovery-key')
    .optional(),
  targetId: boundedString(100).optional(),
  deviceId: recordId('device')
    .optional()
    .describe('Entries about the device, its recovery keys, its rotations and its recovery cases'),
  from: instant.optional().describe('Entries at or after this date or instant (ISO 8601)'),
  to: instant.optional().describe('Entries before this date or instant (ISO 8601; not included)'),
};

const rangeInOrder = (q: { from?: string | undefined; to?: string | undefined }) =>
  q.from === undefined || q.to === undefined || q.from < q.to;
const rangeMessage = { message: 'from must be before to', path: ['to'] };

export const listAuditQuery = z
  .strictObject({
    order: z
      .enum(['asc', 'desc'])
      .optional()
      .describe('desc: newest first; asc (the default): in chain order, oldest first'),
    cursor: boundedString(100)
      .optional()
      .describe('The nextCursor of the previous page; it carries the order'),
    afterSeq: z.coerce
      .number()
      .int()
      .min(0)
      .max(Number.MAX_SAFE_INTEGER)
      .optional()
      .describe('Oldest first from after this sequence number (the cursor of earlier versions)'),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    ...filterFields,
  })
  .refine(rangeInOrder, rangeMessage)
  .refine((q) => q.cursor === undefined || q.afterSeq === undefined, {
    message: 'send cursor or afterSeq, not both',
    path: ['afterSeq'],
  })
  .refine((q) => q.afterSeq === undefined || q.order !== 'desc', {
    message: 'afterSeq pages oldest first; page newest first with cursor',
    path: ['afterSeq'],
  });

export const listAuditResponse = z.object({
  entries: z.array(auditEntry),
  nextCursor: z.string().nullable().describe('Pass it as cursor for the next page; null when there is none'),
});

export const exportAuditQuery = z
  .strictObject({
    format: z.enum(['jsonl', 'csv']).default('jsonl'),
    ...filterFields,
  })
  .refine(rangeInOrder, rangeMessage);

export const auditActionsResponse = z.object({
  actions: z.array(z.string()).describe('Every action in the organization’s log, sorted'),
});

export const verifyResponse = z.object({
  ok: z.boolean(),
  rowsChecked: z.number(),
  firstProblem: z
    .object({
      seq: z.number(),
      id: z.string().nullable(),
      problem: z.enum(['edited', 'reordered', 'missing', 'truncated']),
      message: z.string(),
    })
    .optional(),
});
