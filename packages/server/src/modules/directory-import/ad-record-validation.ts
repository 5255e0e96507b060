/** Decides, per AD recovery record, whether it can be imported, without ever exposing a password's digits. */
import { checkRecoveryPassword, describeProblems, type GroupProblemReason } from '@bdevault/bde';
import type { AdRecoveryRecord } from './ad-recovery-object.js';

/** A record without its secrets, safe to report, log or store in an import report. */
export type AdRecordMetadata = Omit<AdRecoveryRecord, 'recoveryPassword' | 'keyPackage'>;

/** A problem with one group of a password: its position and kind, never its digits. */
export interface AdPasswordProblem {
  /** 1-based group position; 0 when the number of groups is wrong. */
  group: number;
  reason: GroupProblemReason;
}

export type AdRecordOutcome =
  | {
      status: 'valid';
      metadata: AdRecordMetadata;
      /** Canonical `xxxxxx-xxxxxx-…` form, for the vault only. */
      recoveryPassword: string;
      keyPackage: Uint8Array | undefined;
    }
  | {
      status: 'invalid-password';
      metadata: AdRecordMetadata;
      problems: AdPasswordProblem[];
      /** e.g. `group 3: checksum; group 7: out-of-range`. */
      message: string;
    }
  | { status: 'password-not-readable'; metadata: AdRecordMetadata };

/** Strips the secrets from a record. */
export function adRecordMetadata(record: AdRecoveryRecord): AdRecordMetadata {
  const { recoveryPassword: _password, keyPackage: _keyPackage, ...metadata } = record;
  return metadata;
}

/**
 * Validates one record's recovery password (8 groups, each a multiple of 11 below 720896). Invalid
 * and unreadable ones carry only metadata; suggestions from the checker are dropped because a
 * "one typo away" group would reveal digits of the stored password.
 */
export function validateAdRecoveryRecord(record: AdRecoveryRecord): AdRecordOutcome {
  const metadata = adRecordMetadata(record);
  if (record.recoveryPassword === undefined) return { status: 'password-not-readable', metadata };
  const check = checkRecoveryPassword(record.recoveryPassword);
  if (check.valid && check.password) {
    return { status: 'valid', metadata, recoveryPassword: check.password, keyPackage: record.keyPackage };
  }
  const problems = check.problems.map(({ group, reason }) => ({ group, reason }));
  return { status: 'invalid-password', metadata, problems, message: describeProblems(check.problems) };
}

/** Validates a stream of records, one outcome per record, in order. */
export async function* validateAdRecoveryRecords(
  records: AsyncIterable<AdRecoveryRecord>,
): AsyncGenerator<AdRecordOutcome> {
  for await (const record of records) yield validateAdRecoveryRecord(record);
}
