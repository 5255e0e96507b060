/** Appending to, verifying and exporting the hash-chained audit log. */
import type { Transaction } from 'kysely';
import type { Db } from '../../db/database.js';
import type { AuditLogRow, AuditLogTable, Database } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import { csvField } from '../../lib/csv.js';
import { AppError } from '../../lib/errors.js';
import type { IdGenerator } from '../../lib/ids.js';
import { canonicalDetails, entryHash, verifyRows, type ChainVerdict } from './audit.chain.js';
import type { AuditFilter, AuditRepo, PendingAuditRow } from './audit.repo.js';

export type AuditActorType = 'user' | 'api-token' | 'device' | 'system' | 'cli';

/** What a caller records; fields are a contract, so exports and SIEMs can rely on them. */
export interface AuditEntry {
  organizationId: string | null;
  actor: { type: AuditActorType; id: string | null };
  action: string;
  target?: { type: string; id: string };
  outcome: 'success' | 'failure';
  reason?: string;
  details?: Record<string, string | number | boolean | null>;
  requestId?: string;
}

/**
 * Appends one entry inside the caller's transaction: it commits or rolls back with the change it
 * records. Its place in the chain (`seq`) is fixed when the transaction commits.
 */
export interface AuditWriter {
  append(entry: AuditEntry, trx: Transaction<Database>): Promise<{ id: string }>;
  /**
   * The row `append` would insert (content and its digest; no place in the chain yet), for a
   * statement that writes it together with the change it records (recovery-keys'
   * one-statement disclosure on PostgreSQL, where the chain trigger links it at commit).
   */
  prepare(entry: AuditEntry): PendingAuditRow;
}

export function createAuditWriter(deps: {
  auditRepo: AuditRepo;
  clock: Clock;
  ids: IdGenerator;
}): AuditWriter {
  const { auditRepo, clock, ids } = deps;
  function prepare(entry: AuditEntry): PendingAuditRow {
    const content = {
      id: ids('auditEntry'),
      organization_id: entry.organizationId,
      occurred_at: clock.now().toISOString(),
      actor_type: entry.actor.type,
      actor_id: entry.actor.id,
      action: entry.action,
      target_type: entry.target?.type ?? null,
      target_id: entry.target?.id ?? null,
      outcome: entry.outcome,
      reason: entry.reason ?? null,
      details: canonicalDetails(entry.details),
      request_id: entry.requestId ?? null,
    };
    return { ...content, entry_hash: entryHash(content) };
  }
  return {
    prepare,
    async append(entry, trx) {
      const row = prepare(entry);
      try {
        await auditRepo.append(row, trx);
      } catch (cause) {
        throw new AppError('AUDIT_WRITE_FAILED', 'The audit log could not be written; nothing was done', {
          cause,
        });
      }
      return { id: row.id };
    },
  };
}

export type AuditExportFormat = 'jsonl' | 'csv';

export const AUDIT_COLUMNS = [
  'seq',
  'id',
  'organization_id',
  'occurred_at',
  'actor_type',
  'actor_id',
  'action',
  'target_type',
  'target_id',
  'outcome',
  'reason',
  'details',
  'request_id',
  'prev_hash',
  'hash',
  'entry_hash',
] as const satisfies readonly (keyof AuditLogTable)[];

/** What callers filter by, as the routes take it: an action or prefix, an actor id or name. */
export interface AuditFilterInput {
  /** An action, or a prefix ending in `.` or `*` (the `*` is not part of it). */
  action?: string | undefined;
  outcome?: string | undefined;
  actorType?: string | undefined;
  /** An actor id, or the name of a user (user name or display name), API token or device. */
  actor?: string | undefined;
  targetType?: string | undefined;
  targetId?: string | undefined;
  deviceId?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

export interface AuditPageRequest {
  organizationId: string;
  filter: AuditFilterInput;
  order?: 'asc' | 'desc' | undefined;
  /** A nextCursor this service returned; it carries the order. */
  cursor?: string | undefined;
  /** Ascending from after this seq (what the API took before cursors). */
  afterSeq?: number | undefined;
  limit: number;
}

export interface AuditService {
  verifyChain(): Promise<ChainVerdict>;
  /** One organization's rows after `afterSeq`, oldest first (what the API answered before filters). */
  list(options: { organizationId: string; afterSeq: number; limit: number }): Promise<AuditLogRow[]>;
  /** One page of one organization's log, filtered; nextCursor continues in the same order. */
  page(request: AuditPageRequest): Promise<{ rows: AuditLogRow[]; nextCursor: string | null }>;
  /** The distinct actions of one organization's log, sorted. */
  actions(organizationId: string): Promise<string[]>;
  /**
   * The export's lines in chain order (a CSV header first), a page of rows at a time: rows up to the
   * chain head as it was when the walk began, of one organization when given, filtered.
   */
  exportLines(
    format: AuditExportFormat,
    scope: { organizationId?: string | undefined; filter?: AuditFilterInput },
  ): AsyncGenerator<string[]>;
  /** Streams every row (optionally of one organization) as lines; returns the number of rows. */
  exportRows(
    format: AuditExportFormat,
    write: (line: string) => void | Promise<void>,
    organizationId?: string,
  ): Promise<number>;
}

const PAGE = 1000;
/** How many distinct actions `actions` lists at most. */
const MAX_ACTIONS = 500;

/** The list's cursor: opaque to callers, the order and the last seq they were given. */
export function encodeAuditCursor(order: 'asc' | 'desc', seq: number): string {
  return Buffer.from(`${order}:${seq}`, 'utf8').toString('base64url');
}

export function decodeAuditCursor(text: string): { order: 'asc' | 'desc'; seq: number } {
  const match = /^(asc|desc):(0|[1-9][0-9]{0,15})$/.exec(Buffer.from(text, 'base64url').toString('utf8'));
  const seq = Number(match?.[2]);
  if (!match || !Number.isSafeInteger(seq)) {
    throw new AppError('VALIDATION_FAILED', 'The cursor is not one this server returned', {
      details: [{ in: 'querystring', path: '/cursor', message: 'not a cursor this server returned' }],
    });
  }
  return { order: match[1] as 'asc' | 'desc', seq };
}

export function createAuditService(deps: { auditRepo: AuditRepo }): AuditService {
  const { auditRepo } = deps;

  /** The repository's filter: the action split into exact or prefix, an actor name into ids. */
  async function resolveFilter(
    organizationId: string | undefined,
    input: AuditFilterInput = {},
  ): Promise<AuditFilter> {
    const filter: AuditFilter = {};
    if (organizationId !== undefined) filter.organizationId = organizationId;
    if (input.action !== undefined) {
      if (input.action.endsWith('*')) filter.actionPrefix = input.action.slice(0, -1);
      else if (input.action.endsWith('.')) filter.actionPrefix = input.action;
      else filter.action = input.action;
    }
    if (input.outcome !== undefined) filter.outcome = input.outcome;
    if (input.actorType !== undefined) filter.actorType = input.actorType;
    if (input.actor !== undefined) {
      // The text itself is tried as an id too; a name that names nobody then matches nothing.
      const named =
        organizationId === undefined ? [] : await auditRepo.actorIdsNamed(organizationId, input.actor);
      filter.actorIds = [...new Set([input.actor, ...named])];
    }
    if (input.targetType !== undefined) filter.targetType = input.targetType;
    if (input.targetId !== undefined) filter.targetId = input.targetId;
    if (input.deviceId !== undefined) filter.targets = await auditRepo.deviceTargets(input.deviceId);
    if (input.from !== undefined) filter.from = input.from;
    if (input.to !== undefined) filter.to = input.to;
    return filter;
  }

  /** Rows up to `upToSeq` in chain order, a page at a time; rows appended meanwhile are left out. */
  async function* pagesUpTo(upToSeq: number, filter: AuditFilter): AsyncGenerator<AuditLogRow[]> {
    let after = 0;
    for (;;) {
      const rows = await auditRepo.rows({ filter, order: 'asc', beyondSeq: after, upToSeq, limit: PAGE });
      if (rows.length > 0) yield rows;
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  async function* rowsUpTo(upToSeq: number): AsyncGenerator<AuditLogRow> {
    for await (const rows of pagesUpTo(upToSeq, {})) yield* rows;
  }

  const encodeLine = (format: AuditExportFormat, row: AuditLogRow) =>
    format === 'jsonl'
      ? JSON.stringify(Object.fromEntries(AUDIT_COLUMNS.map((c) => [c, row[c]])))
      : AUDIT_COLUMNS.map((c) => csvField(row[c])).join(',');

  async function* exportLines(
    format: AuditExportFormat,
    scope: { organizationId?: string | undefined; filter?: AuditFilterInput },
  ): AsyncGenerator<string[]> {
    const filter = await resolveFilter(scope.organizationId, scope.filter);
    if (format === 'csv') yield [AUDIT_COLUMNS.join(',')];
    const head = await auditRepo.head();
    for await (const rows of pagesUpTo(head.seq, filter)) yield rows.map((row) => encodeLine(format, row));
  }

  return {
    async verifyChain() {
      // Page by page, never the whole log in memory. Every row at or below the head read first was
      // committed with (or before) that head, so concurrent appends cannot look like tampering.
      const head = await auditRepo.head();
      return verifyRows(rowsUpTo(head.seq), (hash) => auditRepo.hashExists(hash), head);
    },
    list: ({ organizationId, afterSeq, limit }) =>
      auditRepo.rows({ filter: { organizationId }, order: 'asc', beyondSeq: afterSeq, limit }),
    async page(request) {
      const from = request.cursor === undefined ? undefined : decodeAuditCursor(request.cursor);
      if (from !== undefined && request.order !== undefined && request.order !== from.order) {
        throw new AppError('VALIDATION_FAILED', `The cursor pages in ${from.order} order`, {
          details: [{ in: 'querystring', path: '/order', message: 'differs from the cursor’s order' }],
        });
      }
      const order = from?.order ?? request.order ?? 'asc';
      const beyondSeq = from?.seq ?? request.afterSeq;
      const filter = await resolveFilter(request.organizationId, request.filter);
      // One row more than asked tells whether there is a next page.
      const rows = await auditRepo.rows({
        filter,
        order,
        ...(beyondSeq === undefined ? {} : { beyondSeq }),
        limit: request.limit + 1,
      });
      const page = rows.slice(0, request.limit);
      const last = page[page.length - 1];
      return {
        rows: page,
        nextCursor: rows.length > request.limit && last ? encodeAuditCursor(order, last.seq) : null,
      };
    },
    async actions(organizationId) {
      const actions = await auditRepo.actions(organizationId, MAX_ACTIONS);
      return actions.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    },
    exportLines,
    async exportRows(format, write, organizationId) {
      let lines = 0;
      for await (const page of exportLines(format, { organizationId })) {
        for (const line of page) await write(line);
        lines += page.length;
      }
      // The CSV header is a line, not a row.
      return format === 'csv' ? lines - 1 : lines;
    },
  };
}

/** The export over HTTP: recorded in the audit log, committed, before the first row is read. */
export function createAuditExportService(deps: {
  db: Db;
  auditWriter: AuditWriter;
  audit: Pick<AuditService, 'exportLines'>;
}) {
  const { db, auditWriter, audit } = deps;
  return {
    async start(request: {
      organizationId: string;
      format: AuditExportFormat;
      filter: AuditFilterInput;
      actor: { type: AuditActorType; id: string | null };
      requestId: string;
    }): Promise<{ auditEntryId: string; lines: AsyncGenerator<string[]> }> {
      const given = Object.entries(request.filter).filter(
        (e): e is [string, string] => typeof e[1] === 'string',
      );
      const { id } = await db.transaction().execute((trx) =>
        auditWriter.append(
          {
            organizationId: request.organizationId,
            actor: request.actor,
            action: 'audit-log.exported',
            target: { type: 'organization', id: request.organizationId },
            outcome: 'success',
            details: { format: request.format, ...Object.fromEntries(given) },
            requestId: request.requestId,
          },
          trx,
        ),
      );
      return {
        auditEntryId: id,
        lines: audit.exportLines(request.format, {
          organizationId: request.organizationId,
          filter: request.filter,
        }),
      };
    },
  };
}
