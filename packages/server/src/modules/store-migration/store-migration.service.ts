/**
 * Copies an installation from embedded SQLite to PostgreSQL: every table in foreign-key order, in
 * batches, ciphertexts byte for byte (the KEK never needs to be loaded), inside one target
 * transaction so a failed copy leaves nothing half-written; then checks counts and the audit chain.
 */
import { existsSync } from 'node:fs';
import { sql } from 'kysely';
import { openDatabase, type Db } from '../../db/database.js';
import { migrateToLatest } from '../../db/migrations.js';
import { AppError } from '../../lib/errors.js';
import { createAuditRepo } from '../audit/audit.repo.js';
import { createAuditService } from '../audit/audit.service.js';
import type { ChainVerdict } from '../audit/audit.chain.js';

export interface StoreMigrationResult {
  tables: { name: string; rows: number }[];
  auditChain: ChainVerdict;
}

/** PostgreSQL takes at most 65535 bind parameters per statement. */
const MAX_PARAMETERS = 60_000;

interface TableInfo {
  name: string;
  columns: string[];
  parents: string[];
}

async function sourceTables(source: Db): Promise<TableInfo[]> {
  const { rows } = await sql<{ name: string }>`
    select name from sqlite_master
    where type = 'table' and name not like 'sqlite_%' and name not like 'kysely_%'
    order by name`.execute(source);
  const tables: TableInfo[] = [];
  for (const { name } of rows) {
    const columns = await sql<{
      name: string;
    }>`select name from pragma_table_info(${name}) order by cid`.execute(source);
    const fks = await sql<{ table: string }>`select "table" from pragma_foreign_key_list(${name})`.execute(
      source,
    );
    tables.push({
      name,
      columns: columns.rows.map((c) => c.name),
      parents: [...new Set(fks.rows.map((f) => f.table))].filter((p) => p !== name),
    });
  }
  return tables;
}

/** Parents before children (Kahn); the schema's foreign keys form no cycle between tables. */
export function foreignKeyOrder(tables: readonly TableInfo[]): TableInfo[] {
  const ordered: TableInfo[] = [];
  const placed = new Set<string>();
  let pending = [...tables];
  while (pending.length > 0) {
    const ready = pending.filter((t) =>
      t.parents.every((p) => placed.has(p) || !tables.some((x) => x.name === p)),
    );
    if (ready.length === 0)
      throw new Error(`foreign keys form a cycle among ${pending.map((t) => t.name).join(', ')}`);
    for (const t of ready) {
      ordered.push(t);
      placed.add(t.name);
    }
    pending = pending.filter((t) => !placed.has(t.name));
  }
  return ordered;
}

async function count(db: Db, table: string): Promise<number> {
  const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(
    db,
  );
  return Number(rows[0]!.n);
}

export async function migrateStore(options: {
  fromSqlitePath: string;
  toPostgresUrl: string;
  force?: boolean;
  batchSize?: number;
  onProgress?: (table: string, copied: number) => void;
}): Promise<StoreMigrationResult> {
  if (!existsSync(options.fromSqlitePath)) {
    throw new AppError('VALIDATION_FAILED', `No SQLite database at ${options.fromSqlitePath}`);
  }
  if (!/^postgres(ql)?:\/\//i.test(options.toPostgresUrl)) {
    throw new AppError('VALIDATION_FAILED', 'The target must be a postgres:// URL');
  }
  const batchSize = options.batchSize ?? 1000;
  const source = openDatabase({ dialect: 'sqlite', path: options.fromSqlitePath });
  const target = openDatabase({ dialect: 'postgres', url: options.toPostgresUrl });
  try {
    // Both sides at the current schema, so the column lists match (the source migrates as any command opening it would).
    await migrateToLatest(source);
    await migrateToLatest(target);
    const tables = foreignKeyOrder(await sourceTables(source));

    const occupied = (await count(target, 'organizations')) + (await count(target, 'audit_log'));
    if (occupied > 0 && !options.force) {
      throw new AppError(
        'CONFLICT',
        'The target database already holds an installation; pass --force to replace it',
      );
    }

    await target.transaction().execute(async (trx) => {
      // Rows the migrations seeded (the audit chain's genesis head) and, with --force, an old installation.
      for (const table of [...tables].reverse()) await sql`delete from ${sql.table(table.name)}`.execute(trx);
      for (const table of tables) {
        const perBatch = Math.max(1, Math.min(batchSize, Math.floor(MAX_PARAMETERS / table.columns.length)));
        const columnList = sql.join(table.columns.map((c) => sql.ref(c)));
        let lastRowId = -Infinity;
        let copied = 0;
        for (;;) {
          // Keyset on rowid: each batch is one indexed range read, however large the table.
          const { rows } = await sql<Record<string, unknown>>`
            select rowid as "__rowid", ${columnList} from ${sql.table(table.name)}
            where rowid > ${lastRowId === -Infinity ? -1 : lastRowId} order by rowid limit ${perBatch}`.execute(
            source,
          );
          if (rows.length === 0) break;
          lastRowId = Number(rows[rows.length - 1]!.__rowid);
          const values = rows.map(
            (row) => sql`(${sql.join(table.columns.map((c) => sql`${row[c] as never}`))})`,
          );
          await sql`insert into ${sql.table(table.name)} (${columnList}) values ${sql.join(values)}`.execute(
            trx,
          );
          copied += rows.length;
          options.onProgress?.(table.name, copied);
          if (rows.length < perBatch) break;
        }
      }
    });

    const result: StoreMigrationResult['tables'] = [];
    for (const table of tables) {
      const [from, to] = [await count(source, table.name), await count(target, table.name)];
      if (from !== to)
        throw new AppError('INTERNAL_ERROR', `Row counts differ for ${table.name}: ${from} copied as ${to}`);
      result.push({ name: table.name, rows: to });
    }
    const auditChain = await createAuditService({ auditRepo: createAuditRepo(target) }).verifyChain();
    // Planner statistics for the copied tables now, not when autovacuum gets round to them: each
    // server connection plans a prepared statement once, and a plan made on the statistics of
    // empty tables scans whole tables where it should probe an index.
    await sql`analyze`.execute(target);
    return { tables: result, auditChain };
  } finally {
    await source.destroy();
    await target.destroy();
  }
}
