/** Schemas of the self-service routes: the caller's own devices and their keys. */
import { z } from 'zod';
import { boundedString, recordId } from '../../lib/schemas.js';
import { disclosureReasonCode } from '../recovery-cases/reason-codes.js';

export const myDeviceParams = z.strictObject({ deviceId: recordId('device') });

export const myKeysQuery = z.strictObject({
  keyIdPrefix: z
    .string()
    .max(10)
    .regex(/^\{?[0-9a-fA-F]{8}$/, 'must be the first 8 hex digits of the key id the recovery screen shows'),
});

/** Why the owner needs the password: MBAM's reason code (as the helpdesk records it) and their own words. */
export const selfServiceDiscloseBody = z.strictObject({
  reasonCode: disclosureReasonCode.default('other'),
  reason: boundedString(500, 3).describe('Why the password is needed; recorded in the audit log'),
});
