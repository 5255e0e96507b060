/** Schemas of the directory-sync, file-import routes; every string and array is bounded, responses whitelisted. */
import { z } from 'zod';
import { boundedString } from '../../lib/schemas.js';
import { MAX_IMPORT_CHARS, MAX_IMPORT_ROWS } from './file-import.js';

const dn = boundedString(1024).describe('A distinguished name, e.g. OU=Workstations,DC=example,DC=com');

export const syncSettingsBody = z.strictObject({
  url: z
    .string()
    .max(500)
    .regex(/^ldaps?:\/\/[^\s/]+\/?$/i, 'must be ldaps://host[:port] or ldap://host[:port] (StartTLS)'),
  caCertificate: z
    .string()
    .max(64 * 1024)
    .regex(/-----BEGIN CERTIFICATE-----/, 'must be PEM')
    .nullable()
    .optional()
    .describe('PEM CA certificate(s) of the directory; the system store when absent'),
  baseDn: dn,
  bindDn: boundedString(1024).describe('DN, UPN or DOMAIN\\user of the service account'),
  bindPassword: boundedString(1024)
    .optional()
    .describe('Required when creating; omit to keep the stored one (it is never returned)'),
  intervalMinutes: z
    .number()
    .int()
    .min(15)
    .max(7 * 24 * 60)
    .default(24 * 60),
  enabled: z.boolean().default(true),
});

const counts = z.object({
  records: z.number(),
  devices: z.object({ created: z.number(), updated: z.number(), unchanged: z.number() }),
  volumes: z.object({ created: z.number(), updated: z.number(), unchanged: z.number() }),
  keys: z.object({
    created: z.number(),
    updated: z.number(),
    unchanged: z.number(),
    conflicts: z.number(),
    invalid: z.number(),
    notReadable: z.number(),
  }),
});

const directoryCounts = z.object({
  computers: z.number(),
  computersWithRecoveryInformation: z.number(),
  recoveryObjects: z.number(),
  passwordsReadable: z.number(),
  passwordsNotReadable: z.number(),
  skipped: z.number(),
});

export const syncView = z.object({
  url: z.string(),
  caCertificate: z.string().nullable(),
  baseDn: z.string(),
  bindDn: z.string(),
  bindPasswordSet: z.boolean(),
  intervalMinutes: z.number(),
  enabled: z.boolean(),
  nextRunAt: z.string().nullable(),
  running: z.boolean(),
  lastRun: z
    .object({
      status: z.enum(['running', 'succeeded', 'failed']),
      trigger: z.enum(['schedule', 'manual']).nullable(),
      startedAt: z.string().nullable(),
      finishedAt: z.string().nullable(),
      summary: z.object({ counts, directory: directoryCounts.nullable() }).nullable(),
      error: z.string().nullable(),
    })
    .nullable(),
});

export const syncNowResponse = z.object({
  started: z.boolean().describe('false when a run is already in progress (here or on another server)'),
});

export const fileImportBody = z
  .strictObject({
    format: z.enum(['csv', 'json']),
    dryRun: z.boolean().default(false),
    csv: z.string().max(MAX_IMPORT_CHARS).optional().describe('The CSV file as text (format csv)'),
    rows: z
      .array(z.record(z.string().max(64), z.union([z.string().max(300), z.number(), z.null()])))
      .max(MAX_IMPORT_ROWS)
      .optional()
      .describe('Row objects with the column names as keys (format json)'),
  })
  .refine(
    (b) =>
      b.format === 'csv'
        ? b.csv !== undefined && b.rows === undefined
        : b.rows !== undefined && b.csv === undefined,
    {
      message: 'give csv for format csv, rows for format json',
    },
  );

export const fileImportResponse = z.object({
  source: z.enum(['ad', 'csv', 'json']),
  dryRun: z.boolean(),
  startedAt: z.string(),
  finishedAt: z.string(),
  counts,
  invalidPasswords: z.array(
    z.object({ deviceName: z.string(), keyId: z.string(), reason: z.string(), row: z.number().optional() }),
  ),
  conflicts: z.array(z.object({ deviceName: z.string(), keyId: z.string(), row: z.number().optional() })),
  listsTruncated: z.boolean(),
  ignoredColumns: z.array(z.string()),
  rows: z.array(
    z.object({
      row: z.number(),
      outcome: z.enum(['created', 'updated', 'unchanged', 'conflict', 'invalid', 'not-readable']),
      deviceName: z.string().optional(),
      keyId: z.string().optional(),
      reason: z.string().optional(),
    }),
  ),
});
