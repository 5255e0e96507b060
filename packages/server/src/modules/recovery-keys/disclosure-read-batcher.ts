/**
 * The read every disclosure starts with (the key in the caller's scope, with the organization's
 * policy), batched on PostgreSQL: the reads of disclosures that arrive while one runs go together
 * in the next statement (lib/statement-batcher.ts; `findForKeys`, one JSON parameter). A read on a
 * quiet server runs at once, alone, as before. Nothing is cached: each disclosure reads the key as
 * the database has it at that moment.
 */
import { createStatementBatcher } from '../../lib/statement-batcher.js';
import type { DisclosurePolicyRepo, KeyAndPolicy, KeyRead } from './disclosure-policy.repo.js';

export type DisclosureReads = Pick<DisclosurePolicyRepo, 'findForKey'>;

export function createDisclosureReadBatcher(
  repo: Pick<DisclosurePolicyRepo, 'findForKey' | 'findForKeys'>,
  options: { maxInFlight?: number; maxBatch?: number } = {},
): DisclosureReads {
  const read = createStatementBatcher<KeyRead, KeyAndPolicy>({
    runBatch: (reads) => repo.findForKeys(reads),
    runAlone: ({ organizationId, keyRecordId, scope }) => repo.findForKey(organizationId, keyRecordId, scope),
    // Reads wait for nothing but each other; a second slot keeps one slow read from holding up
    // every disclosure.
    maxInFlight: options.maxInFlight ?? 2,
    maxBatch: options.maxBatch ?? 64,
  });
  return {
    findForKey(organizationId, keyRecordId, scope, trx) {
      if (trx) return repo.findForKey(organizationId, keyRecordId, scope, trx);
      return read({ organizationId, keyRecordId, scope });
    },
  };
}
