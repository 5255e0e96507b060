/** Schemas of the notification routes: bounded inputs, and responses that whitelist fields (no secret). */
import { z } from 'zod';
import { boundedString, recordId, timestamp } from '../../lib/schemas.js';

const emailAddress = z.email().max(254);
const hostname = boundedString(253).regex(/^[A-Za-z0-9.:[\]-]+$/, 'must be a host name or address');
const eventType = z
  .string()
  .max(100)
  .regex(/^(\*|[a-z0-9-]+(\.[a-z0-9_-]+)*(\.\*)?)$/, 'must be an event type, `area.*` or `*`');

export const smtpInput = z.strictObject({
  host: hostname,
  port: z.number().int().min(1).max(65535),
  tls: z.enum(['implicit', 'starttls', 'none']),
  username: boundedString(254).nullable().default(null),
  /** Omitted: keep the stored password; null: remove it. */
  password: boundedString(512).nullable().optional(),
  from: emailAddress,
});

export const settingsBody = z.strictObject({
  smtp: smtpInput.nullable(),
  securityAddresses: z.array(emailAddress).max(50),
});

export const settingsResponse = z.object({
  smtp: z
    .object({
      host: z.string(),
      port: z.number(),
      tls: z.enum(['implicit', 'starttls', 'none']),
      username: z.string().nullable(),
      passwordSet: z.boolean(),
      from: z.string(),
    })
    .nullable(),
  securityAddresses: z.array(z.string()),
  updatedAt: timestamp.nullable(),
});

const webhookUrl = z
  .url({ protocol: /^https?$/ })
  .max(2048)
  .refine((u) => !/^[a-z]+:\/\/[^/]*@/i.test(u), 'must not carry credentials');

export const createWebhookBody = z.strictObject({
  name: boundedString(100),
  url: webhookUrl,
  eventTypes: z.array(eventType).min(1).max(30),
  enabled: z.boolean().default(true),
});

export const updateWebhookBody = z.strictObject({
  name: boundedString(100).optional(),
  url: webhookUrl.optional(),
  eventTypes: z.array(eventType).min(1).max(30).optional(),
  enabled: z.boolean().optional(),
  /** A new signing secret, returned once in the response. */
  rotateSecret: z.boolean().optional(),
});

export const webhookParams = z.strictObject({ webhookId: recordId('webhook') });

export const webhookSummary = z.object({
  id: z.string(),
  name: z.string(),
  url: z.string(),
  eventTypes: z.array(z.string()),
  enabled: z.boolean(),
  createdAt: timestamp,
  updatedAt: timestamp,
});

/** Creation and secret rotation answer the signing secret once; it is never shown again. */
export const webhookWithSecret = webhookSummary.extend({ secret: z.string().optional() });

export const testMailBody = z.strictObject({
  /** Default: the organization's security addresses. */
  to: z.array(emailAddress).min(1).max(10).optional(),
});

export const testResult = z.object({
  delivered: z.boolean(),
  status: z.string().nullable(),
  error: z.string().nullable(),
});

export const deliveriesQuery = z.strictObject({
  status: z.enum(['pending', 'delivered', 'failed']).optional(),
  channel: z.enum(['email', 'webhook']).optional(),
  eventType: z.string().max(100).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

export const deliverySummary = z.object({
  id: z.string(),
  channel: z.enum(['email', 'webhook']),
  recipient: z.string(),
  eventType: z.string(),
  eventKey: z.string(),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number(),
  nextAttemptAt: timestamp.nullable(),
  lastStatus: z.string().nullable(),
  lastError: z.string().nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
  deliveredAt: timestamp.nullable(),
});
