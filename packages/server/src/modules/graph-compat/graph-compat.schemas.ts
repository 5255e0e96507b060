/** Schemas of the Graph-compatible routes: OData query options in, Microsoft's property names out. */
import { z } from 'zod';

const odataString = (max: number) => z.string().min(1).max(max);

/** `$top` as Graph bounds it for directory lists. */
const top = z.coerce.number().int().min(1).max(999).optional();

export const listKeysQuery = z.strictObject({
  $filter: odataString(300).optional(),
  $top: top,
  $skiptoken: odataString(400).optional(),
  $select: odataString(200).optional(),
});

export const keyParams = z.strictObject({ recoveryKeyId: z.string().min(1).max(40) });

export const getKeyQuery = z.strictObject({ $select: odataString(200).optional() });

export const listDevicesQuery = z.strictObject({
  $filter: odataString(600),
  $top: top,
  $select: odataString(200).optional(),
});

export const graphRecoveryKey = z.object({
  id: z.string(),
  createdDateTime: z.string(),
  deviceId: z.string().nullable(),
  volumeType: z.enum(['1', '2', '3']),
});

export const graphRecoveryKeyWithKey = graphRecoveryKey.extend({ key: z.string().optional() });

export const recoveryKeyEntity = graphRecoveryKeyWithKey.extend({ '@odata.context': z.string() });

export const recoveryKeyCollection = z.object({
  '@odata.context': z.string(),
  '@odata.nextLink': z.string().optional(),
  value: z.array(graphRecoveryKey),
});

export const deviceCollection = z.object({
  '@odata.context': z.string(),
  value: z.array(
    z.object({
      id: z.string().optional(),
      deviceId: z.string().nullable().optional(),
      displayName: z.string().optional(),
    }),
  ),
});

export const odataError = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      innerError: z.object({
        date: z.string(),
        'request-id': z.string(),
        'client-request-id': z.string().optional(),
      }),
    }),
  })
  .describe('OData error');

export function odataErrors(...statuses: number[]) {
  return Object.fromEntries(statuses.map((s) => [s, odataError]));
}
