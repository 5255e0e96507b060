/** Importing recovery keys into the vault from Active Directory or from rows (CSV / JSON), idempotently and in batches. */
import type { Db, Executor } from '../../db/database.js';
import type { VolumesTable } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import type { Envelope } from '../../lib/envelope.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { AuditActorType, AuditWriter } from '../audit/audit.service.js';
import { deviceNameKey, type DevicesRepo } from '../devices/devices.repo.js';
import { createRecoveryKeyWriter } from '../recovery-keys/recovery-key-writer.js';
import type { RecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import { readAdRecoveryKeys, type AdReadCounts, type ReadAdRecoveryKeysOptions } from './ad-reader.js';
import type { AdRecoveryRecord } from './ad-recovery-object.js';
import { validateAdRecoveryRecord } from './ad-record-validation.js';
import type { DirectoryImportRepo } from './directory-import.repo.js';

/** Used for keys whose volume GUID the source does not know (AD objects written without one). */
export const UNKNOWN_VOLUME_GUID = '00000000-0000-0000-0000-000000000000';
/** Records written per transaction: big enough to be quick, small enough not to hold the write lock long. */
export const IMPORT_BATCH_SIZE = 200;
/** Entries kept in a report's problem lists; the counts stay exact beyond it. */
const REPORT_LIST_LIMIT = 1000;

export type ImportSource = 'ad' | 'csv' | 'json';
export type VolumeType = VolumesTable['volume_type'];

/** One key to import, already normalised; `password` holds the only secret. */
export interface ImportItem {
  /** Row number in a file (1-based, header counted), for per-row reports. */
  row?: number;
  device: {
    name: string;
    dnsName?: string | undefined;
    os?: string | undefined;
    /** Directory object the device stands for; without one, devices are matched by name. */
    externalRef?: { source: 'ad'; id: string; dn: string } | undefined;
  };
  volumeGuid: string | undefined;
  volumeType: VolumeType | undefined;
  keyId: string;
  createdAt: string;
  password:
    | { state: 'valid'; value: string; keyPackage?: Uint8Array | undefined }
    | { state: 'not-readable' }
    | { state: 'invalid'; reason: string };
}

export type RowOutcome = 'created' | 'updated' | 'unchanged' | 'conflict' | 'invalid' | 'not-readable';

export interface RowReport {
  row: number;
  outcome: RowOutcome;
  deviceName?: string;
  keyId?: string;
  reason?: string;
}

export interface ImportCounts {
  records: number;
  devices: { created: number; updated: number; unchanged: number };
  volumes: { created: number; updated: number; unchanged: number };
  keys: {
    created: number;
    /** Already stored with the same password; a missing key package was added. */
    updated: number;
    unchanged: number;
    conflicts: number;
    invalid: number;
    notReadable: number;
  };
}

export interface ImportReport {
  source: ImportSource;
  dryRun: boolean;
  startedAt: string;
  finishedAt: string;
  counts: ImportCounts;
  /** What the directory reader saw (AD imports only). */
  directory?: AdReadCounts;
  /** By device and key id with the reason (positions and kinds only, never digits). */
  invalidPasswords: { deviceName: string; keyId: string; reason: string; row?: number }[];
  conflicts: { deviceName: string; keyId: string; row?: number }[];
  /** True when the lists above were cut at their limit. */
  listsTruncated: boolean;
}

export interface ImportActor {
  type: AuditActorType;
  id: string | null;
}

export interface ImportProgress {
  records: number;
  counts: ImportCounts;
}

function emptyCounts(): ImportCounts {
  return {
    records: 0,
    devices: { created: 0, updated: 0, unchanged: 0 },
    volumes: { created: 0, updated: 0, unchanged: 0 },
    keys: { created: 0, updated: 0, unchanged: 0, conflicts: 0, invalid: 0, notReadable: 0 },
  };
}

/** Thrown inside a dry run's transaction to roll it back after computing exact outcomes. */
class DryRunRollback extends Error {}

/** An AD record as an import item: the computer's objectGUID (else its DN) identifies the device. */
export function itemFromAdRecord(record: AdRecoveryRecord): ImportItem {
  const outcome = validateAdRecoveryRecord(record);
  const externalId = record.computerObjectGuid ?? `dn:${record.computerDn.toLowerCase()}`;
  return {
    device: {
      name: record.computerName,
      dnsName: record.dnsHostName,
      os: record.operatingSystem,
      externalRef: { source: 'ad', id: externalId, dn: record.computerDn },
    },
    volumeGuid: record.volumeGuid,
    // AD does not record the volume type; see docs/active-directory-import.md.
    volumeType: undefined,
    keyId: record.recoveryGuid,
    createdAt: record.createdAt.toISOString(),
    password:
      outcome.status === 'valid'
        ? { state: 'valid', value: outcome.recoveryPassword, keyPackage: outcome.keyPackage }
        : outcome.status === 'password-not-readable'
          ? { state: 'not-readable' }
          : { state: 'invalid', reason: outcome.message },
  };
}

export type DirectoryImportService = ReturnType<typeof createDirectoryImportService>;

export function createDirectoryImportService(deps: {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  envelope: Envelope;
  auditWriter: AuditWriter;
  devicesRepo: DevicesRepo;
  recoveryKeysRepo: RecoveryKeysRepo;
  directoryImportRepo: DirectoryImportRepo;
  /** The AD reader; injected so a caller can tunnel or observe the directory connection. */
  readDirectory?: typeof readAdRecoveryKeys;
}) {
  const { db, clock, ids, auditWriter, devicesRepo, directoryImportRepo } = deps;
  const readDirectory = deps.readDirectory ?? readAdRecoveryKeys;
  const keyWriter = createRecoveryKeyWriter(deps);

  /** Per-run state: counts, reports, and which devices/volumes were already counted. */
  interface RunState {
    organizationId: string;
    source: ImportSource;
    counts: ImportCounts;
    report: Pick<ImportReport, 'invalidPasswords' | 'conflicts' | 'listsTruncated'>;
    countedDevices: Set<string>;
    countedVolumes: Set<string>;
    rows: RowReport[] | undefined;
  }

  const newState = (organizationId: string, source: ImportSource, perRow: boolean): RunState => ({
    organizationId,
    source,
    counts: emptyCounts(),
    report: { invalidPasswords: [], conflicts: [], listsTruncated: false },
    countedDevices: new Set(),
    countedVolumes: new Set(),
    rows: perRow ? [] : undefined,
  });

  const pushLimited = <T>(state: RunState, list: T[], entry: T) => {
    if (list.length < REPORT_LIST_LIMIT) list.push(entry);
    else state.report.listsTruncated = true;
  };

  async function resolveDevice(state: RunState, item: ImportItem, now: string, trx: Executor) {
    const { organizationId } = state;
    const facts = item.device;
    const ref = facts.externalRef;
    const countKey = ref ? `${ref.source}:${ref.id}` : `name:${deviceNameKey(facts.name)}`;
    let outcome: 'created' | 'updated' | 'unchanged' = 'unchanged';
    const stored = ref
      ? await directoryImportRepo.findExternalRef(organizationId, ref.source, ref.id, trx)
      : undefined;
    let device = stored
      ? await devicesRepo.findById(organizationId, stored.device_id, trx)
      : ref
        ? undefined
        : await devicesRepo.findLiveByName(organizationId, facts.name, trx);
    if (!device) {
      device = {
        id: ids('device'),
        organization_id: organizationId,
        name: facts.name,
        name_key: deviceNameKey(facts.name),
        dns_name: facts.dnsName ?? null,
        os: facts.os ?? null,
        serial_number: null,
        registered_owner: null,
        owner_user_id: null,
        first_seen_at: now,
        last_seen_at: now,
        created_at: now,
        deleted_at: null,
      };
      await devicesRepo.insert(device, trx);
      if (ref) {
        await directoryImportRepo.insertExternalRef(
          {
            organization_id: organizationId,
            source: ref.source,
            external_id: ref.id,
            external_dn: ref.dn,
            device_id: device.id,
            created_at: now,
            updated_at: now,
          },
          trx,
        );
      }
      outcome = 'created';
    } else if (ref) {
      // Only the directory's own facts are refreshed; last_seen_at is the agent's, so re-import changes nothing.
      const changes: { name?: string; name_key?: string; dns_name?: string | null; os?: string | null } = {};
      if (device.name !== facts.name) {
        Object.assign(changes, { name: facts.name, name_key: deviceNameKey(facts.name) });
      }
      if ((device.dns_name ?? undefined) !== facts.dnsName) changes.dns_name = facts.dnsName ?? null;
      if ((device.os ?? undefined) !== facts.os) changes.os = facts.os ?? null;
      if (Object.keys(changes).length > 0) {
        await devicesRepo.update(device.id, changes, trx);
        outcome = 'updated';
      }
      if (stored && stored.external_dn !== ref.dn) {
        await directoryImportRepo.updateExternalRefDn(stored, ref.dn, now, trx);
        outcome = 'updated';
      }
    }
    if (!state.countedDevices.has(countKey)) {
      state.countedDevices.add(countKey);
      state.counts.devices[outcome]++;
    }
    return device;
  }

  async function resolveVolume(
    state: RunState,
    deviceId: string,
    item: ImportItem,
    now: string,
    trx: Executor,
  ) {
    const volumeGuid = item.volumeGuid ?? UNKNOWN_VOLUME_GUID;
    const countKey = `${deviceId}:${volumeGuid}`;
    let outcome: 'created' | 'updated' | 'unchanged' = 'unchanged';
    let volume = await devicesRepo.findVolume(deviceId, volumeGuid, trx);
    if (!volume) {
      volume = {
        id: ids('volume'),
        organization_id: state.organizationId,
        device_id: deviceId,
        volume_guid: volumeGuid,
        // Most keys escrowed to AD protect the OS volume; a source that knows better says so.
        volume_type: item.volumeType ?? 'os',
        drive_letter: null,
        encryption_method: null,
        protection_status: null,
        created_at: now,
        updated_at: now,
      };
      await devicesRepo.insertVolume(volume, trx);
      outcome = 'created';
    } else if (item.volumeType !== undefined && volume.volume_type !== item.volumeType) {
      await devicesRepo.updateVolume(volume.id, { volume_type: item.volumeType, updated_at: now }, trx);
      outcome = 'updated';
    }
    if (!state.countedVolumes.has(countKey)) {
      state.countedVolumes.add(countKey);
      state.counts.volumes[outcome]++;
    }
    return volume;
  }

  async function writeItem(state: RunState, item: ImportItem, now: string, trx: Executor) {
    const { counts } = state;
    counts.records++;
    const row = (outcome: RowOutcome, reason?: string) =>
      state.rows?.push({
        row: item.row ?? counts.records,
        outcome,
        deviceName: item.device.name,
        keyId: item.keyId,
        ...(reason === undefined ? {} : { reason }),
      });
    if (item.password.state === 'invalid') {
      counts.keys.invalid++;
      pushLimited(state, state.report.invalidPasswords, {
        deviceName: item.device.name,
        keyId: item.keyId,
        reason: item.password.reason,
        ...(item.row === undefined ? {} : { row: item.row }),
      });
      row('invalid', item.password.reason);
      return;
    }
    const device = await resolveDevice(state, item, now, trx);
    const volume = await resolveVolume(state, device.id, item, now, trx);
    if (item.password.state === 'not-readable') {
      counts.keys.notReadable++;
      row('not-readable', 'the bind account may not read msFVE-RecoveryPassword');
      return;
    }
    const stored = await keyWriter.store(
      {
        organizationId: state.organizationId,
        deviceId: device.id,
        volumeId: volume.id,
        keyId: item.keyId,
        recoveryPassword: item.password.value,
        keyPackage: item.password.keyPackage,
        source: 'import',
        createdAt: item.createdAt,
        now,
      },
      trx,
    );
    if (stored.outcome === 'conflict') {
      counts.keys.conflicts++;
      pushLimited(state, state.report.conflicts, {
        deviceName: item.device.name,
        keyId: item.keyId,
        ...(item.row === undefined ? {} : { row: item.row }),
      });
      row('conflict', 'this key id is already stored with a different password; not overwritten');
      return;
    }
    counts.keys[stored.outcome]++;
    row(stored.outcome);
  }

  /** One transaction per batch; a dry run computes the same outcomes and rolls back. */
  async function writeBatch(state: RunState, items: ImportItem[], dryRun: boolean) {
    if (items.length === 0) return;
    try {
      await db.transaction().execute(async (trx) => {
        const now = clock.now().toISOString();
        for (const item of items) await writeItem(state, item, now, trx);
        if (dryRun) throw new DryRunRollback();
      });
    } catch (err) {
      if (!(err instanceof DryRunRollback)) throw err;
    }
  }

  async function audit(
    state: RunState,
    options: {
      actor: ImportActor;
      dryRun: boolean;
      outcome: 'success' | 'failure';
      extra?: Record<string, string | number | boolean | null>;
      requestId?: string | undefined;
    },
  ) {
    const c = state.counts;
    await db.transaction().execute((trx) =>
      auditWriter.append(
        {
          organizationId: state.organizationId,
          actor: options.actor,
          action: 'recovery-keys.imported',
          target: { type: 'organization', id: state.organizationId },
          outcome: options.outcome,
          details: {
            source: state.source,
            dryRun: options.dryRun,
            records: c.records,
            devicesCreated: c.devices.created,
            devicesUpdated: c.devices.updated,
            volumesCreated: c.volumes.created,
            keysCreated: c.keys.created,
            keysUpdated: c.keys.updated,
            keysUnchanged: c.keys.unchanged,
            conflicts: c.keys.conflicts,
            invalidPasswords: c.keys.invalid,
            passwordsNotReadable: c.keys.notReadable,
            ...options.extra,
          },
          ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
        },
        trx,
      ),
    );
  }

  const finish = (state: RunState, dryRun: boolean, startedAt: string): ImportReport => ({
    source: state.source,
    dryRun,
    startedAt,
    finishedAt: clock.now().toISOString(),
    counts: state.counts,
    ...state.report,
  });

  return {
    /**
     * Reads every recovery object under the base DN and writes it into the vault, `IMPORT_BATCH_SIZE`
     * records per transaction. Reading from LDAP happens between transactions, never inside one.
     * Batches end at a computer boundary, so a dry run counts each device exactly once.
     */
    async importFromAd(options: {
      organizationId: string;
      directory: ReadAdRecoveryKeysOptions;
      dryRun?: boolean;
      actor: ImportActor;
      trigger?: 'cli' | 'schedule' | 'manual';
      onProgress?: (progress: ImportProgress) => void;
      /** Called between batches (e.g. to renew a sync lease). */
      betweenBatches?: () => Promise<void>;
      batchSize?: number;
      requestId?: string;
    }): Promise<ImportReport> {
      const dryRun = options.dryRun ?? false;
      const batchSize = Math.max(1, Math.min(options.batchSize ?? IMPORT_BATCH_SIZE, 1000));
      const startedAt = clock.now().toISOString();
      const state = newState(options.organizationId, 'ad', false);
      const reader = readDirectory(options.directory);
      const extra = {
        url: options.directory.url,
        baseDn: options.directory.baseDn,
        trigger: options.trigger ?? null,
      };
      let batch: ImportItem[] = [];
      const flush = async () => {
        await writeBatch(state, batch, dryRun);
        batch = [];
        options.onProgress?.({ records: state.counts.records, counts: state.counts });
        await options.betweenBatches?.();
      };
      try {
        for await (const record of reader) {
          const item = itemFromAdRecord(record);
          const last = batch[batch.length - 1];
          if (batch.length >= batchSize && last?.device.externalRef?.id !== item.device.externalRef?.id) {
            await flush();
          }
          batch.push(item);
        }
        await flush();
      } catch (err) {
        await audit(state, {
          actor: options.actor,
          dryRun,
          outcome: 'failure',
          extra: {
            ...extra,
            error:
              (err as { code?: unknown }).code === undefined
                ? 'ERROR'
                : String((err as { code?: unknown }).code),
          },
          requestId: options.requestId,
        }).catch(() => undefined);
        throw err;
      }
      const report: ImportReport = { ...finish(state, dryRun, startedAt), directory: { ...reader.counts } };
      await audit(state, {
        actor: options.actor,
        dryRun,
        outcome: 'success',
        extra: { ...extra, recoveryObjects: reader.counts.recoveryObjects },
        requestId: options.requestId,
      });
      return report;
    },

    /**
     * Imports rows from a file. Valid rows are written (all in one transaction: files are bounded);
     * invalid rows are reported and skipped, so one bad row does not block the others.
     */
    async importItems(options: {
      organizationId: string;
      source: 'csv' | 'json';
      items: ImportItem[];
      /** Rows rejected before reaching the vault (unparseable), reported in order with the rest. */
      rejected?: RowReport[];
      dryRun?: boolean;
      actor: ImportActor;
      requestId?: string;
    }): Promise<ImportReport & { rows: RowReport[] }> {
      const dryRun = options.dryRun ?? false;
      const startedAt = clock.now().toISOString();
      const state = newState(options.organizationId, options.source, true);
      await writeBatch(state, options.items, dryRun);
      for (const _rejected of options.rejected ?? []) {
        state.counts.records++;
        state.counts.keys.invalid++;
      }
      const rows = [...state.rows!, ...(options.rejected ?? [])].sort((a, b) => a.row - b.row);
      await audit(state, { actor: options.actor, dryRun, outcome: 'success', requestId: options.requestId });
      return { ...finish(state, dryRun, startedAt), rows };
    },
  };
}
