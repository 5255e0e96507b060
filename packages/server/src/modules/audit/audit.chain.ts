/**
 * The audit hash chain: how a row's content is digested and linked to its predecessor, and the walk
 * that verifies it. docs/audit-log.md describes both encodings for anyone verifying an export.
 *
 * Encoding 2 (every row written now) splits the hash in two so that the link can be made by the
 * database at commit time without re-encoding the row there:
 *   entry_hash = SHA-256(JSON [2, id, organization_id, …, request_id])   (computed by the writer)
 *   hash       = SHA-256(prev_hash ‖ entry_hash)                          (hex strings, concatenated)
 * Encoding 1 (rows written before migration 0011, `entry_hash` null) hashed the content and
 * prev_hash together; those rows still verify as they were written.
 */
import { createHash } from 'node:crypto';
import type { AuditLogRow } from '../../db/schema.js';

export const GENESIS_HASH = '0'.repeat(64);

/** The hashed content of a row: every column except the chain's own (`seq`, links, hashes). */
export type EntryContent = Omit<AuditLogRow, 'seq' | 'prev_hash' | 'hash' | 'entry_hash'>;

const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

/** Fixed-order JSON array: one unambiguous byte string per row, whatever the column values hold. */
function contentFields(row: EntryContent): unknown[] {
  return [
    row.id,
    row.organization_id,
    row.occurred_at,
    row.actor_type,
    row.actor_id,
    row.action,
    row.target_type,
    row.target_id,
    row.outcome,
    row.reason,
    row.details,
    row.request_id,
  ];
}

/** Encoding 2: the digest of a row's content alone. */
export function entryHash(row: EntryContent): string {
  return sha256Hex(JSON.stringify([2, ...contentFields(row)]));
}

/** Encoding 2: the link of a row to its predecessor (what PostgreSQL's chain trigger computes too). */
export function linkHash(prevHash: string, rowEntryHash: string): string {
  return sha256Hex(prevHash + rowEntryHash);
}

/** Encoding 1, for rows written before entry hashes existed. */
export function legacyChainHash(row: EntryContent & { prev_hash: string }): string {
  return sha256Hex(JSON.stringify([1, ...contentFields(row), row.prev_hash]));
}

/** Whether a stored row's own hashes match its content and its recorded predecessor. */
function rowIsIntact(row: AuditLogRow): boolean {
  if (row.entry_hash === null) return legacyChainHash(row) === row.hash;
  return entryHash(row) === row.entry_hash && linkHash(row.prev_hash, row.entry_hash) === row.hash;
}

/** Sorted-key JSON of flat details, so equal details always encode to equal text. */
export function canonicalDetails(
  details: Record<string, string | number | boolean | null> | undefined,
): string {
  const entries = Object.entries(details ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify(Object.fromEntries(entries));
}

export type ChainProblem = 'edited' | 'reordered' | 'missing' | 'truncated';

export interface ChainVerdict {
  ok: boolean;
  rowsChecked: number;
  firstProblem?: { seq: number; id: string | null; problem: ChainProblem; message: string };
}

/**
 * Walks rows in `seq` order and reports the first break. `hashExists` tells a reordering (a row
 * links to another row that exists) from a deletion (it links to none); it is asked only once, at
 * the first broken link, so the walk itself needs no memory beyond the current row.
 */
export async function verifyRows(
  rows: AsyncIterable<AuditLogRow> | Iterable<AuditLogRow>,
  hashExists: (hash: string) => Promise<boolean>,
  head: { seq: number; last_hash: string },
): Promise<ChainVerdict> {
  let previous = GENESIS_HASH;
  let count = 0;
  let lastSeq = 0;
  for await (const row of rows) {
    count += 1;
    const seq = Number(row.seq);
    lastSeq = seq;
    if (!rowIsIntact(row)) {
      return fail(count - 1, seq, row.id, 'edited', `audit row ${seq} was edited after it was written`);
    }
    if (row.prev_hash !== previous) {
      if (await hashExists(row.prev_hash)) {
        return fail(count - 1, seq, row.id, 'reordered', `audit row ${seq} is out of order`);
      }
      return fail(
        count - 1,
        seq,
        row.id,
        'missing',
        `a row before audit row ${seq} was deleted or rewritten`,
      );
    }
    previous = row.hash;
  }
  if (Number(head.seq) !== lastSeq || head.last_hash !== previous) {
    return fail(count, lastSeq + 1, null, 'truncated', `audit rows after ${lastSeq} were deleted`);
  }
  return { ok: true, rowsChecked: count };
}

function fail(
  rowsChecked: number,
  seq: number,
  id: string | null,
  problem: ChainProblem,
  message: string,
): ChainVerdict {
  return { ok: false, rowsChecked, firstProblem: { seq, id, problem, message } };
}
