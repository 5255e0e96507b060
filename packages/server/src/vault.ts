/** Opening an installation (database, migrations, KEK) and starting the HTTP server on it. */
import type { Config } from './lib/config.js';
import { buildApp } from './app.js';
import type { App } from './app-types.js';
import { openDatabase, type Db } from './db/database.js';
import { migrateToLatest } from './db/migrations.js';
import { createAppDeps, type AppDeps } from './deps.js';
import type { Clock } from './lib/clock.js';
import { loadKekRing } from './lib/kek.js';
import { cryptoRandom, type RandomSource } from './lib/random.js';
import { buildAccess, buildRecoveryKeysService } from './modules/access/access.build.js';
import { createAccessRepo } from './modules/access/access.repo.js';
import { buildAccessAdminService } from './modules/access/access.routes.js';
import { createApiTokensRepo } from './modules/api-tokens/api-tokens.repo.js';
import { createApiTokensService } from './modules/api-tokens/api-tokens.service.js';
import { createAuditRepo } from './modules/audit/audit.repo.js';
import { createAuditService } from './modules/audit/audit.service.js';
import { buildDirectoryImportServices } from './modules/directory-import/directory-import.routes.js';
import {
  startDirectorySyncScheduler,
  type DirectorySyncScheduler,
  type DirectorySyncSchedulerOptions,
  type SyncTimer,
} from './modules/directory-import/directory-sync.scheduler.js';
import { buildEscrowService } from './modules/escrow/escrow.routes.js';
import { buildIdentityService } from './modules/identity/identity.routes.js';
import { buildInvitationsService } from './modules/invitations/invitations.routes.js';
import type { PasswordHasher } from './modules/identity/password-hasher.js';
import { rotateKek } from './modules/kek/kek-rotation.service.js';
import { createKeyExportService } from './modules/key-export/key-export.service.js';
import type { LostNotification } from './modules/notifications/notifications.outbox.js';
import { createOrganizationsRepo } from './modules/organizations/organizations.repo.js';
import { createRecoveryKeysRepo } from './modules/recovery-keys/recovery-keys.repo.js';
import { buildRotationServices } from './modules/rotation/rotation.routes.js';
import {
  startRotationSweep,
  type RotationSweep,
  type RotationSweepOptions,
} from './modules/rotation/rotation-sweep.scheduler.js';

export interface VaultOptions {
  clock?: Clock;
  random?: RandomSource;
  passwordHasher?: PasswordHasher;
  /** The scheduled directory sync's timer and tick (startServer only). */
  directorySync?: DirectorySyncSchedulerOptions;
  /** The overdue-rotation sweep's timer and tick (startServer only). */
  rotationSweep?: RotationSweepOptions;
  /** The notification outbox poll's timer and tick (startServer only; retries and leftovers). */
  notificationPoll?: { timer?: SyncTimer; tickMs?: number };
}

/** Every service, for the CLI and tests that act on the database directly. */
export function createServices(
  deps: AppDeps,
  config: Pick<Config, 'sessionTtlMinutes' | 'kek' | 'identity'>,
) {
  const recoveryKeysRepo = createRecoveryKeysRepo(deps.db);
  const auditRepo = createAuditRepo(deps.db);
  const organizationsRepo = createOrganizationsRepo(deps.db);
  return {
    organizations: organizationsRepo,
    identity: buildIdentityService({
      ...deps,
      sessionTtlMinutes: config.sessionTtlMinutes,
      identity: config.identity,
    }),
    apiTokens: createApiTokensService({
      ...deps,
      apiTokensRepo: createApiTokensRepo(deps.db),
      accessRepo: createAccessRepo(deps.db),
    }),
    access: buildAccessAdminService(deps),
    /** Invitations to join an organization, which the invited account accepts or declines. */
    invitations: buildInvitationsService(deps),
    /** Turns permissions older code wrote on memberships into role assignments (idempotent). */
    adoptLegacyMembershipGrants: () => buildAccess(deps).rights.adoptLegacyMembershipGrants(),
    escrow: buildEscrowService(deps),
    recoveryKeys: buildRecoveryKeysService(deps),
    audit: createAuditService({ auditRepo }),
    rotateKek: () => rotateKek({ ...deps, kekSource: config.kek }),
    directoryImport: buildDirectoryImportServices(deps).importService,
    keyExport: createKeyExportService({ ...deps, recoveryKeysRepo }),
    /** Rotation requests (sweepOverdue) and device events (eventsForDevice, postRecoveryStatus). */
    rotation: buildRotationServices(deps),
  };
}

export type VaultServices = ReturnType<typeof createServices>;

export interface Vault {
  config: Config;
  db: Db;
  deps: AppDeps;
  services: VaultServices;
  /** Where a lost database connection is reported (the server's log once it has one). */
  onDatabaseConnectionLost(report: (err: Error) => void): void;
  /** Where a notification that could not be queued is reported (the server's log once it has one). */
  onNotificationLost(report: (lost: LostNotification) => void): void;
  close(): Promise<void>;
}

/** Opens the database (migrating it) and the KEK ring; creates the KEK file on first start. */
export async function openVault(config: Config, options: VaultOptions = {}): Promise<Vault> {
  const random = options.random ?? cryptoRandom;
  const kekRing = loadKekRing(config.kek, random, true);
  let reportLostConnection: (err: Error) => void = () => undefined;
  let reportLostNotification: (lost: LostNotification) => void = () => undefined;
  const db = openDatabase(config.database, (err) => reportLostConnection(err));
  try {
    await migrateToLatest(db);
  } catch (err) {
    await db.destroy();
    throw err;
  }
  const deps = createAppDeps({
    db,
    kekRing,
    random,
    onNotificationLost: (lost) => reportLostNotification(lost),
    ...options,
  });
  return {
    config,
    db,
    deps,
    services: createServices(deps, config),
    onDatabaseConnectionLost: (report) => (reportLostConnection = report),
    onNotificationLost: (report) => (reportLostNotification = report),
    close: () => db.destroy(),
  };
}

export interface RunningServer {
  app: App;
  vault: Vault;
  /** `http://host:port` actually bound (port 0 picks a free one). */
  url: string;
  /** Present only on the first start: print it once to the operator, never log it. */
  firstAdmin: { organizationId: string; username: string; oneTimePassword: string } | undefined;
  directorySync: DirectorySyncScheduler;
  rotationSweep: RotationSweep;
  close(): Promise<void>;
}

export async function startServer(config: Config, options: VaultOptions = {}): Promise<RunningServer> {
  const vault = await openVault(config, options);
  try {
    const firstAdmin = await vault.services.identity.bootstrapFirstOrganization({
      organizationName: config.initialOrganizationName,
    });
    // The first administrator's grant is written on the membership; it becomes a role assignment here.
    await vault.services.adoptLegacyMembershipGrants();
    const app = await buildApp(config, vault.deps);
    vault.onDatabaseConnectionLost((err) =>
      app.log.warn({ err }, 'a database connection was lost; the pool opens a new one when needed'),
    );
    vault.onNotificationLost(({ eventType, eventKey, err }) =>
      app.log.error(
        { err, eventType, eventKey },
        'a notification could not be queued and will not be sent; the audit log has the event',
      ),
    );
    const url = await app.listen({ host: config.host, port: config.port });
    const directorySync = startDirectorySyncScheduler(
      buildDirectoryImportServices(vault.deps).syncService,
      options.directorySync,
    );
    const rotationSweep = startRotationSweep(vault.services.rotation.rotations, options.rotationSweep);
    const notificationPoll = vault.deps.notifications.start(options.notificationPoll);
    return {
      app,
      vault,
      url,
      firstAdmin,
      directorySync,
      rotationSweep,
      close: async () => {
        await directorySync.stop();
        await rotationSweep.stop();
        await notificationPoll.stop();
        await app.close();
        await vault.close();
      },
    };
  } catch (err) {
    await vault.close();
    throw err;
  }
}
