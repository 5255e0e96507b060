/** Schemas of the report routes: bounded periods and options, and the figures each report answers. */
import { z } from 'zod';
import { POST_RECOVERY_THRESHOLD, POST_RECOVERY_WINDOW_DAYS } from '../rotation/device-events.service.js';

const instant = z
  .string()
  .max(40)
  .regex(/^\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?$/, 'must be a date or an ISO-8601 instant');
const format = z.enum(['json', 'csv']).default('json');

export const formatQuery = z.strictObject({ format });
export const periodQuery = z.strictObject({ format, from: instant.optional(), to: instant.optional() });
export const recoveriesQuery = periodQuery.extend({ bucket: z.enum(['day', 'week']).default('day') });
export const postRecoveryQuery = z.strictObject({
  format,
  // The defaults are the rule the device timeline flags by (rotation/device-events.service.ts).
  windowDays: z.coerce.number().int().min(1).max(365).default(POST_RECOVERY_WINDOW_DAYS),
  minDisclosures: z.coerce.number().int().min(2).max(100).default(POST_RECOVERY_THRESHOLD),
});

const figures = {
  devices: z.number(),
  devicesWithCurrentKey: z.number(),
  devicesWithoutCurrentKey: z.number(),
  volumes: z.number(),
  volumesWithCurrentKey: z.number(),
  volumesWithoutCurrentKey: z.number(),
  volumesAwaitingRotation: z.number(),
};

export const coverageReport = z.object({
  generatedAt: z.string(),
  overall: z.object(figures),
  groups: z.array(z.object({ deviceGroupId: z.string(), name: z.string(), ...figures })),
});

export const recoveriesReport = z.object({
  from: z.string(),
  to: z.string(),
  bucket: z.enum(['day', 'week']),
  total: z.number(),
  byPath: z.record(z.string(), z.number()),
  byRootCause: z.record(z.string(), z.number()),
  series: z.array(
    z.object({ period: z.string(), path: z.string(), rootCause: z.string(), count: z.number() }),
  ),
});

export const operatorsReport = z.object({
  from: z.string(),
  to: z.string(),
  operators: z.array(
    z.object({
      actorType: z.string(),
      actorId: z.string().nullable(),
      actorName: z.string().nullable(),
      disclosures: z.number(),
      devices: z.number(),
      firstAt: z.string(),
      lastAt: z.string(),
    }),
  ),
});

export const rotationReport = z.object({
  from: z.string(),
  to: z.string(),
  requested: z.number(),
  completed: z.number(),
  failed: z.number(),
  overdue: z.number(),
  open: z.number(),
  medianSecondsToComplete: z.number().nullable(),
});

export const postRecoveryReport = z.object({
  windowDays: z.number(),
  minDisclosures: z.number(),
  from: z.string(),
  to: z.string(),
  devices: z.array(
    z.object({
      deviceId: z.string(),
      deviceName: z.string(),
      disclosures: z.number(),
      firstAt: z.string(),
      lastAt: z.string(),
      paths: z.array(z.string()),
      rootCauses: z.array(z.string()),
    }),
  ),
});
