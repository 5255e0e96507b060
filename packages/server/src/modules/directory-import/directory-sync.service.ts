/** Scheduled Active Directory sync: per-organization settings (bind password encrypted), leased runs, last-run status. */
import type { Db } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import type { Envelope } from '../../lib/envelope.js';
import { AppError } from '../../lib/errors.js';
import { base32 } from '../../lib/ids.js';
import type { RandomSource } from '../../lib/random.js';
import type { AuditWriter } from '../audit/audit.service.js';
import type { DirectoryImportRepo, DirectorySyncConfigRow } from './directory-import.repo.js';
import type { DirectoryImportService, ImportActor, ImportReport } from './directory-import.service.js';

/** How long a run's lease lasts without renewal; renewed after every batch. */
const LEASE_MS = 10 * 60_000;
/** A failed run is retried after this, or the interval if shorter. */
const RETRY_MS = 15 * 60_000;

export interface DirectorySyncSettings {
  url: string;
  caCertificate?: string | null | undefined;
  baseDn: string;
  bindDn: string;
  /** Required when creating; omitted on update keeps the stored one. */
  bindPassword?: string | undefined;
  intervalMinutes: number;
  enabled: boolean;
}

export type SyncTrigger = 'schedule' | 'manual';

export function toSyncView(row: DirectorySyncConfigRow) {
  return {
    url: row.url,
    caCertificate: row.ca_certificate,
    baseDn: row.base_dn,
    bindDn: row.bind_dn,
    bindPasswordSet: true,
    intervalMinutes: row.interval_minutes,
    enabled: row.enabled === 1,
    nextRunAt: row.next_run_at,
    running: row.lease_holder !== null,
    lastRun:
      row.last_run_status === null
        ? null
        : {
            status: row.last_run_status,
            trigger: row.last_run_trigger,
            startedAt: row.last_run_started_at,
            finishedAt: row.last_run_finished_at,
            summary:
              row.last_run_summary === null
                ? null
                : (JSON.parse(row.last_run_summary) as {
                    counts: ImportReport['counts'];
                    directory: NonNullable<ImportReport['directory']> | null;
                  }),
            error: row.last_run_error,
          },
  };
}

export type DirectorySyncView = ReturnType<typeof toSyncView>;
export type DirectorySyncService = ReturnType<typeof createDirectorySyncService>;

export function createDirectorySyncService(deps: {
  db: Db;
  clock: Clock;
  random: RandomSource;
  envelope: Envelope;
  auditWriter: AuditWriter;
  directoryImportRepo: DirectoryImportRepo;
  importService: DirectoryImportService;
}) {
  const { db, clock, random, envelope, auditWriter, directoryImportRepo: repo, importService } = deps;
  /** Runs started by this process, so shutdown can wait for them. */
  const inFlight = new Map<string, Promise<void>>();
  const at = (ms: number) => new Date(clock.now().getTime() + ms).toISOString();
  const bindBinding = (organizationId: string) =>
    ({
      organizationId,
      recordId: `directory-sync:${organizationId}`,
      purpose: 'directory-bind-password',
    }) as const;

  async function run(organizationId: string, trigger: SyncTrigger, holder: string): Promise<void> {
    const startedAt = clock.now().toISOString();
    let config = await repo.findSyncConfig(organizationId);
    if (!config) return;
    await repo.updateSyncConfig(organizationId, {
      last_run_status: 'running',
      last_run_trigger: trigger,
      last_run_started_at: startedAt,
      last_run_finished_at: null,
      last_run_error: null,
    });
    let report: ImportReport | undefined;
    let error: string | undefined;
    try {
      const bindPassword = envelope.open(bindBinding(organizationId), {
        ciphertext: config.bind_password_ciphertext,
        wrappedKey: config.bind_password_wrapped_key,
        kekId: config.bind_password_kek_id,
      });
      report = await importService.importFromAd({
        organizationId,
        directory: {
          url: config.url,
          ...(config.ca_certificate ? { tlsCa: config.ca_certificate } : {}),
          baseDn: config.base_dn,
          bindDn: config.bind_dn,
          bindPassword,
        },
        actor: { type: 'system', id: 'directory-sync' },
        trigger,
        betweenBatches: async () => {
          await repo.renewLease(organizationId, holder, at(LEASE_MS));
        },
      });
    } catch (err) {
      // Directory and app errors carry a code and a message without secrets; anything else stays generic.
      const code = (err as { code?: unknown }).code;
      error =
        typeof code === 'string' && err instanceof Error
          ? `${code}: ${err.message}`.slice(0, 500)
          : 'The sync failed unexpectedly';
    }
    config = (await repo.findSyncConfig(organizationId)) ?? config;
    const intervalMs = config.interval_minutes * 60_000;
    await repo.updateSyncConfig(organizationId, {
      last_run_status: error === undefined ? 'succeeded' : 'failed',
      last_run_finished_at: clock.now().toISOString(),
      last_run_summary:
        report === undefined
          ? null
          : JSON.stringify({ counts: report.counts, directory: report.directory ?? null }),
      last_run_error: error ?? null,
      next_run_at: at(error === undefined ? intervalMs : Math.min(intervalMs, RETRY_MS)),
    });
  }

  return {
    async get(organizationId: string): Promise<DirectorySyncView> {
      const row = await repo.findSyncConfig(organizationId);
      if (!row) throw new AppError('NOT_FOUND', 'No directory sync is configured');
      return toSyncView(row);
    },

    async put(
      organizationId: string,
      settings: DirectorySyncSettings,
      actor: ImportActor,
      requestId?: string,
    ): Promise<DirectorySyncView> {
      const now = clock.now().toISOString();
      await db.transaction().execute(async (trx) => {
        const existing = await repo.findSyncConfig(organizationId, trx);
        if (!existing && settings.bindPassword === undefined) {
          throw new AppError('VALIDATION_FAILED', 'bindPassword is required when creating the sync');
        }
        const sealed =
          settings.bindPassword === undefined
            ? undefined
            : envelope.seal(bindBinding(organizationId), settings.bindPassword);
        const fields = {
          url: settings.url,
          ca_certificate: settings.caCertificate ?? null,
          base_dn: settings.baseDn,
          bind_dn: settings.bindDn,
          interval_minutes: settings.intervalMinutes,
          enabled: settings.enabled ? 1 : 0,
          // A changed schedule starts counting now: the first run comes right away when enabled.
          next_run_at: existing?.next_run_at ?? now,
          updated_at: now,
          ...(sealed
            ? {
                bind_password_ciphertext: sealed.ciphertext,
                bind_password_wrapped_key: sealed.wrappedKey,
                bind_password_kek_id: sealed.kekId,
              }
            : {}),
        };
        if (existing) await repo.updateSyncConfig(organizationId, fields, trx);
        else {
          await repo.insertSyncConfig(
            {
              organization_id: organizationId,
              ...fields,
              bind_password_ciphertext: sealed!.ciphertext,
              bind_password_wrapped_key: sealed!.wrappedKey,
              bind_password_kek_id: sealed!.kekId,
              lease_holder: null,
              lease_expires_at: null,
              last_run_started_at: null,
              last_run_finished_at: null,
              last_run_status: null,
              last_run_trigger: null,
              last_run_summary: null,
              last_run_error: null,
              created_at: now,
            },
            trx,
          );
        }
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: existing ? 'directory-sync.updated' : 'directory-sync.created',
            target: { type: 'organization', id: organizationId },
            outcome: 'success',
            details: {
              url: settings.url,
              baseDn: settings.baseDn,
              bindDn: settings.bindDn,
              intervalMinutes: settings.intervalMinutes,
              enabled: settings.enabled,
              bindPasswordChanged: sealed !== undefined,
            },
            ...(requestId === undefined ? {} : { requestId }),
          },
          trx,
        );
      });
      return this.get(organizationId);
    },

    async remove(organizationId: string, actor: ImportActor, requestId?: string): Promise<void> {
      await db.transaction().execute(async (trx) => {
        if (!(await repo.deleteSyncConfig(organizationId, trx))) {
          throw new AppError('NOT_FOUND', 'No directory sync is configured');
        }
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'directory-sync.deleted',
            target: { type: 'organization', id: organizationId },
            outcome: 'success',
            ...(requestId === undefined ? {} : { requestId }),
          },
          trx,
        );
      });
    },

    /**
     * Starts a run in the background if this organization's lease is free (no run here or on another
     * server instance); false when one is already running. The lease is released when the run ends.
     */
    async start(organizationId: string, trigger: SyncTrigger): Promise<boolean> {
      if (inFlight.has(organizationId)) return false;
      const config = await repo.findSyncConfig(organizationId);
      if (!config) throw new AppError('NOT_FOUND', 'No directory sync is configured');
      const holder = `sync_${base32(random.bytes(10))}`;
      const now = clock.now().toISOString();
      if (!(await repo.acquireLease(organizationId, holder, now, at(LEASE_MS)))) return false;
      const done = run(organizationId, trigger, holder)
        .catch(() => undefined)
        .finally(async () => {
          await repo.releaseLease(organizationId, holder).catch(() => undefined);
          inFlight.delete(organizationId);
        });
      inFlight.set(organizationId, done);
      return true;
    },

    /** Starts every enabled sync whose next run is due; returns the organizations started. */
    async startDue(): Promise<string[]> {
      const due = await repo.dueSyncConfigs(clock.now().toISOString(), 100);
      const started: string[] = [];
      for (const config of due) {
        if (await this.start(config.organization_id, 'schedule')) started.push(config.organization_id);
      }
      return started;
    },

    /** Resolves when every run this process started has ended. */
    async idle(): Promise<void> {
      while (inFlight.size > 0) await Promise.all([...inFlight.values()]);
    },
  };
}
