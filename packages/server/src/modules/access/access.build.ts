/** Builds the access pieces other modules use (authorizer, rights, disclosure guard) from the app's dependencies. */
import type { AppDeps } from '../../deps.js';
import { createDevicesRepo } from '../devices/devices.repo.js';
import { createRecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import { createRecoveryKeysService } from '../recovery-keys/recovery-keys.service.js';
import { buildDisclosureRotation } from '../rotation/rotation.build.js';
import { createAccessRepo } from './access.repo.js';
import { createAuthorizer, createRightsResolver } from './access.service.js';
import { createDisclosureGuard } from './disclosure-guard.js';

export function buildAccess(deps: AppDeps) {
  const accessRepo = createAccessRepo(deps.db);
  const recoveryKeysRepo = createRecoveryKeysRepo(deps.db);
  return {
    accessRepo,
    rights: createRightsResolver({ ...deps, accessRepo }),
    authorizer: createAuthorizer({ devicesRepo: createDevicesRepo(deps.db), recoveryKeysRepo }),
    disclosureGuard: createDisclosureGuard({ ...deps, accessRepo }),
  };
}

/** The one disclosure service every route (API, self-service, Graph, cases) discloses through. */
export function buildRecoveryKeysService(deps: AppDeps) {
  return createRecoveryKeysService({
    ...deps,
    recoveryKeysRepo: createRecoveryKeysRepo(deps.db),
    disclosureGuard: buildAccess(deps).disclosureGuard,
    disclosureRotation: buildDisclosureRotation(deps),
    disclosurePolicyRepo: deps.disclosureReads,
    oneStatementDisclosure: deps.disclosureWrites,
  });
}
