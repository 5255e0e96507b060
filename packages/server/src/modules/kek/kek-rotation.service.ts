/**
 * KEK rotation: a new KEK file is made (`<kek>.next`), every data key is re-wrapped under it, then
 * the old KEK is kept as `<kek>.<id>.backup` and the new one takes the file's place. Re-running
 * after an interruption resumes with the same next KEK; rows already re-wrapped are skipped.
 */
import { copyFileSync, existsSync, renameSync } from 'node:fs';
import type { Db } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { createEnvelope } from '../../lib/envelope.js';
import { AppError } from '../../lib/errors.js';
import {
  createKekFile,
  kekBackupPath,
  kekNextPath,
  KekRing,
  readKekFile,
  siblingKeks,
  type KekSource,
} from '../../lib/kek.js';
import type { RandomSource } from '../../lib/random.js';
import type { AuditWriter } from '../audit/audit.service.js';
import { SEALED_COLUMN_SETS, sealedSecretsRepo } from './sealed-secrets.js';

const BATCH = 500;

export interface KekRotationResult {
  previousKekId: string;
  kekId: string;
  rewrapped: number;
}

export async function rotateKek(deps: {
  db: Db;
  clock: Clock;
  random: RandomSource;
  auditWriter: AuditWriter;
  kekSource: KekSource;
}): Promise<KekRotationResult> {
  const { db, random, auditWriter, kekSource } = deps;
  if (kekSource.kind !== 'file') {
    throw new AppError(
      'VALIDATION_FAILED',
      'KEK rotation needs a file-based KEK (the data directory or BDEVAULT_KEK_FILE), not BDEVAULT_KEK',
    );
  }
  const path = kekSource.path;
  const previous = readKekFile(path);
  // The old KEK is copied aside before anything is re-wrapped, so no data key is ever orphaned.
  const backup = kekBackupPath(path, previous.id);
  if (!existsSync(backup)) copyFileSync(path, backup);
  const nextPath = kekNextPath(path);
  const next = existsSync(nextPath) ? readKekFile(nextPath) : createKekFile(nextPath, random);
  const ring = new KekRing(next, [previous, ...siblingKeks(path)]);
  const envelope = createEnvelope({ kekRing: ring, random });

  let rewrapped = 0;
  for (const set of SEALED_COLUMN_SETS) {
    const repo = sealedSecretsRepo(db, set);
    for (;;) {
      const rows = await repo.notWrappedBy(next.id, BATCH);
      if (rows.length === 0) break;
      await db.transaction().execute(async (trx) => {
        for (const row of rows) {
          const to = envelope.rewrap(set.binding(row.bindingRow), row.sealed, next);
          if (await repo.replaceWrapping(row.key, row.sealed, to, trx)) rewrapped += 1;
        }
      });
    }
  }

  await db.transaction().execute((trx) =>
    auditWriter.append(
      {
        organizationId: null,
        actor: { type: 'cli', id: null },
        action: 'kek.rotated',
        outcome: 'success',
        details: { previousKekId: previous.id, kekId: next.id, rewrapped },
      },
      trx,
    ),
  );
  renameSync(nextPath, path);
  return { previousKekId: previous.id, kekId: next.id, rewrapped };
}
