/** Zod building blocks shared by route schemas: bounded strings, ids, GUIDs, the error body. */
import { z } from 'zod';
import { codeToStatus } from './errors.js';
import { idPattern, type IdKind } from './ids.js';

/** A string with an upper bound, always: `z.string()` alone accepts megabytes. */
export const boundedString = (max: number, min = 1) => z.string().min(min).max(max);

export const recordId = (kind: IdKind) => z.string().max(40).regex(idPattern(kind), `must be a ${kind} id`);

/** A GUID as Windows prints it, braces optional, any case; normalised by the service. */
export const guidInput = z
  .string()
  .max(40)
  .regex(
    /^\{?[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\}?$/,
    'must be a GUID',
  );

export const timestamp = z.string().max(40);

export const errorResponse = z
  .object({
    error: z.object({
      code: z.enum(
        Object.keys(codeToStatus) as [keyof typeof codeToStatus, ...(keyof typeof codeToStatus)[]],
      ),
      message: z.string(),
      requestId: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .describe('Error');

/** Response entries for the error statuses a route can answer with. */
export function errorResponses(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, errorResponse]));
}
