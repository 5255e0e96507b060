/** @bdevault/server: the recovery-key vault, its JSON API, and the services the CLI drives directly. */
export { buildApp, routeTableOf, type AppConfig } from './app.js';
export type { App } from './app-types.js';
export { createAppDeps, type AppDeps } from './deps.js';
export {
  openVault,
  startServer,
  createServices,
  type Vault,
  type VaultServices,
  type RunningServer,
} from './vault.js';
export { loadConfig, configInputFromEnv, ConfigError, type Config, type ConfigInput } from './lib/config.js';
export { AppError, isAppError, codeToStatus, type ErrorCode } from './lib/errors.js';
export { openDatabase, type Db } from './db/database.js';
export { migrateToLatest } from './db/migrations.js';
export {
  migrateStore,
  type StoreMigrationResult,
} from './modules/store-migration/store-migration.service.js';
export { loadKekRing, KekRing, type Kek, type KekSource } from './lib/kek.js';
export {
  PERMISSIONS,
  hasPermission,
  isPermissionGrant,
  type Permission,
} from './modules/access/permissions.js';
export type { RouteAccess } from './modules/access/access.hooks.js';
export { BUILT_IN_ROLES, type BuiltInRole } from './modules/access/roles.js';
export { decideScope, type AccessScope, type Grant, type GrantLayer } from './modules/access/permissions.js';
export type { AlertSink, SecurityAlert } from './modules/access/alerts.js';
export type { AccessAdminService } from './modules/access/access-admin.service.js';
export type { ChainVerdict } from './modules/audit/audit.chain.js';
export type { AuditExportFormat } from './modules/audit/audit.service.js';
export type { KekRotationResult } from './modules/kek/kek-rotation.service.js';
export type {
  ImportReport,
  ImportProgress,
  RowReport,
} from './modules/directory-import/directory-import.service.js';
export { rowsFromCsv, rowsFromJson, itemsFromRows } from './modules/directory-import/file-import.js';
export { DirectoryError } from './modules/directory-import/directory-error.js';
export type { SyncTimer } from './modules/directory-import/directory-sync.scheduler.js';
export { parseAgeRecipient } from './modules/key-export/age.js';
export {
  signWebhookBody,
  verifyWebhookSignature,
  SIGNATURE_HEADER,
} from './modules/notifications/webhook-signature.js';
export type { NotificationDispatcher } from './modules/notifications/notifications.outbox.js';
export {
  likelyCause,
  BITLOCKER_EVENT_CATALOG,
  type RootCauseClass,
  type LikelyCause,
} from './modules/rotation/bitlocker-events.js';
export type { RotationSweep, RotationSweepOptions } from './modules/rotation/rotation-sweep.scheduler.js';
