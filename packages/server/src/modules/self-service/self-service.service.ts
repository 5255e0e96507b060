/**
 * Self-service: a device's owner reads and discloses the keys of their own devices, unless the
 * organization restricts it. Disclosure goes through the one audited disclosure service.
 */
import { AppError } from '../../lib/errors.js';
import type { AccessRepo } from '../access/access.repo.js';
import { toSettings } from '../access/disclosure-guard.js';
import type { UserPrincipal } from '../access/principal.js';
import type { DevicesRepo } from '../devices/devices.repo.js';
import { toDeviceSummary } from '../devices/devices.service.js';
import type { DisclosureReasonCode } from '../recovery-cases/reason-codes.js';
import type { RecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import type { RecoveryKeysService } from '../recovery-keys/recovery-keys.service.js';

/** Only the owner's own devices: "all" would be wrong, so self-service never uses a role scope. */
const OWN = { kind: 'all' } as const;

export type SelfServiceService = ReturnType<typeof createSelfServiceService>;

export function createSelfServiceService(deps: {
  devicesRepo: Pick<DevicesRepo, 'ownedBy'>;
  recoveryKeysRepo: Pick<RecoveryKeysRepo, 'listMetadata'>;
  recoveryKeys: Pick<RecoveryKeysService, 'lookupRecoveryKeys' | 'discloseRecoveryPassword'>;
  accessRepo: Pick<AccessRepo, 'findSettings'>;
}) {
  const { devicesRepo, recoveryKeysRepo, recoveryKeys, accessRepo } = deps;

  async function assertAllowed(organizationId: string) {
    const settings = toSettings(await accessRepo.findSettings(organizationId));
    if (settings.restrictOwnerKeyRecovery) {
      // The administrator's contact text travels with the refusal so the portal can show it.
      throw new AppError(
        'FORBIDDEN',
        'Your organization does not let users recover the keys of their own devices; ask the helpdesk',
        {
          details: {
            reason: 'self-service-restricted',
            contact: { text: settings.selfServiceContactText, link: settings.selfServiceContactLink },
          },
        },
      );
    }
  }

  return {
    async myDevices(principal: UserPrincipal) {
      return (await devicesRepo.ownedBy(principal.organizationId, principal.userId, 200)).map(
        toDeviceSummary,
      );
    },

    /** Keys of one owned device; somebody else's device answers 404 like a missing one. */
    async keysOfMyDevice(principal: UserPrincipal, deviceId: string) {
      await assertAllowed(principal.organizationId);
      const owned = await devicesRepo.ownedBy(principal.organizationId, principal.userId, 200);
      if (!owned.some((d) => d.id === deviceId)) throw new AppError('DEVICE_NOT_FOUND', 'No such device');
      return recoveryKeys.lookupRecoveryKeys(
        principal.organizationId,
        { deviceId, ownerUserId: principal.userId },
        50,
        OWN,
      );
    },

    /** The preboot screen shows the first 8 digits of the key id: find it among my devices. */
    async findMyKeys(principal: UserPrincipal, keyIdPrefix: string) {
      await assertAllowed(principal.organizationId);
      return recoveryKeys.lookupRecoveryKeys(
        principal.organizationId,
        { keyIdPrefix, ownerUserId: principal.userId },
        20,
        OWN,
      );
    },

    async discloseMyKey(
      principal: UserPrincipal,
      recoveryKeyRecordId: string,
      reason: string,
      meta: { address: string; requestId: string; reasonCode: DisclosureReasonCode },
    ) {
      await assertAllowed(principal.organizationId);
      const [mine] = await recoveryKeysRepo.listMetadata(
        principal.organizationId,
        { id: recoveryKeyRecordId, ownerUserId: principal.userId },
        1,
        OWN,
      );
      if (!mine) throw new AppError('KEY_NOT_FOUND', 'No such recovery key');
      return recoveryKeys.discloseRecoveryPassword({
        organizationId: principal.organizationId,
        recoveryKeyRecordId,
        reason,
        actor: { type: 'user', id: principal.userId },
        account: { type: 'user', id: principal.userId },
        address: meta.address,
        requestId: meta.requestId,
        context: { channel: 'self-service', reasonCode: meta.reasonCode },
      });
    },
  };
}
