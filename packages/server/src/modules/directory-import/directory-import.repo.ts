/** Rows of the directory import: device external references and per-organization sync settings with their lease. */
import type { Executor } from '../../db/database.js';
import type { DeviceExternalRefsTable, DirectorySyncConfigsTable } from '../../db/schema.js';

export type DirectorySyncConfigRow = DirectorySyncConfigsTable;

export interface DirectoryImportRepo {
  findExternalRef(
    organizationId: string,
    source: DeviceExternalRefsTable['source'],
    externalId: string,
    trx?: Executor,
  ): Promise<DeviceExternalRefsTable | undefined>;
  insertExternalRef(row: DeviceExternalRefsTable, trx?: Executor): Promise<void>;
  updateExternalRefDn(
    row: Pick<DeviceExternalRefsTable, 'organization_id' | 'source' | 'external_id'>,
    externalDn: string,
    at: string,
    trx?: Executor,
  ): Promise<void>;

  findSyncConfig(organizationId: string, trx?: Executor): Promise<DirectorySyncConfigRow | undefined>;
  insertSyncConfig(row: DirectorySyncConfigRow, trx?: Executor): Promise<void>;
  updateSyncConfig(
    organizationId: string,
    changes: Partial<Omit<DirectorySyncConfigRow, 'organization_id'>>,
    trx?: Executor,
  ): Promise<void>;
  deleteSyncConfig(organizationId: string, trx?: Executor): Promise<boolean>;
  /** Enabled configurations whose next run is due at `now`. */
  dueSyncConfigs(now: string, limit: number, trx?: Executor): Promise<DirectorySyncConfigRow[]>;
  /**
   * Takes the organization's sync lease when it is free or expired (one conditional UPDATE, so two
   * server instances cannot both win); true when `holder` now holds it.
   */
  acquireLease(organizationId: string, holder: string, now: string, until: string): Promise<boolean>;
  renewLease(organizationId: string, holder: string, until: string): Promise<boolean>;
  releaseLease(organizationId: string, holder: string): Promise<void>;
}

export function createDirectoryImportRepo(db: Executor): DirectoryImportRepo {
  return {
    async findExternalRef(organizationId, source, externalId, trx = db) {
      return trx
        .selectFrom('device_external_refs')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('source', '=', source)
        .where('external_id', '=', externalId)
        .executeTakeFirst();
    },
    async insertExternalRef(row, trx = db) {
      await trx.insertInto('device_external_refs').values(row).execute();
    },
    async updateExternalRefDn(row, externalDn, at, trx = db) {
      await trx
        .updateTable('device_external_refs')
        .set({ external_dn: externalDn, updated_at: at })
        .where('organization_id', '=', row.organization_id)
        .where('source', '=', row.source)
        .where('external_id', '=', row.external_id)
        .execute();
    },
    async findSyncConfig(organizationId, trx = db) {
      return trx
        .selectFrom('directory_sync_configs')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .executeTakeFirst();
    },
    async insertSyncConfig(row, trx = db) {
      await trx.insertInto('directory_sync_configs').values(row).execute();
    },
    async updateSyncConfig(organizationId, changes, trx = db) {
      await trx
        .updateTable('directory_sync_configs')
        .set(changes)
        .where('organization_id', '=', organizationId)
        .execute();
    },
    async deleteSyncConfig(organizationId, trx = db) {
      const result = await trx
        .deleteFrom('directory_sync_configs')
        .where('organization_id', '=', organizationId)
        .executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    },
    async dueSyncConfigs(now, limit, trx = db) {
      return trx
        .selectFrom('directory_sync_configs')
        .selectAll()
        .where('enabled', '=', 1)
        .where((eb) => eb.or([eb('next_run_at', 'is', null), eb('next_run_at', '<=', now)]))
        .orderBy('next_run_at')
        .limit(limit)
        .execute();
    },
    async acquireLease(organizationId, holder, now, until) {
      const result = await db
        .updateTable('directory_sync_configs')
        .set({ lease_holder: holder, lease_expires_at: until })
        .where('organization_id', '=', organizationId)
        .where((eb) => eb.or([eb('lease_expires_at', 'is', null), eb('lease_expires_at', '<=', now)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async renewLease(organizationId, holder, until) {
      const result = await db
        .updateTable('directory_sync_configs')
        .set({ lease_expires_at: until })
        .where('organization_id', '=', organizationId)
        .where('lease_holder', '=', holder)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async releaseLease(organizationId, holder) {
      await db
        .updateTable('directory_sync_configs')
        .set({ lease_holder: null, lease_expires_at: null })
        .where('organization_id', '=', organizationId)
        .where('lease_holder', '=', holder)
        .execute();
    },
  };
}
