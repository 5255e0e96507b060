/** Builds the disclosure hook from the app's dependencies, without pulling in routes or access (no import cycle). */
import type { AppDeps } from '../../deps.js';
import { createRotationRepo } from './rotation.repo.js';
import { createDisclosureRotation } from './rotation.service.js';

/** The hook the disclosure service calls inside its transaction (single-use passwords). */
export function buildDisclosureRotation(deps: Pick<AppDeps, 'db' | 'clock' | 'ids'>) {
  return createDisclosureRotation({
    ...deps,
    rotationRepo: createRotationRepo(deps.db),
  });
}
