/** MBAM's disclosure reason codes, shared by the helpdesk case and self-service so reports can group by them. */
import { z } from 'zod';

export const DISCLOSURE_REASON_CODES = [
  'boot-order-changed',
  'bios-changed',
  'os-files-changed',
  'lost-startup-key',
  'lost-pin',
  'tpm-reset',
  'lost-passphrase',
  'lost-smart-card',
  'other',
] as const;

export type DisclosureReasonCode = (typeof DISCLOSURE_REASON_CODES)[number];

/** The wording MBAM's helpdesk and self-service portals show. */
export const DISCLOSURE_REASON_LABELS: Record<DisclosureReasonCode, string> = {
  'boot-order-changed': 'Operating system boot order changed',
  'bios-changed': 'BIOS changed',
  'os-files-changed': 'Operating system files changed',
  'lost-startup-key': 'Lost startup key',
  'lost-pin': 'Lost PIN',
  'tpm-reset': 'TPM reset',
  'lost-passphrase': 'Lost passphrase',
  'lost-smart-card': 'Lost smart card',
  other: 'Other',
};

export const disclosureReasonCode = z.enum(DISCLOSURE_REASON_CODES);

/** The audit row's reason: the code's wording, then the person's own words when given. */
export function disclosureReasonText(code: DisclosureReasonCode, text: string | undefined): string {
  const label = DISCLOSURE_REASON_LABELS[code];
  return text === undefined || text.trim() === '' ? label : `${label}: ${text.trim()}`;
}
