/**
 * What a disclosure needs to know before it writes, read in one statement: the organization's alert
 * settings (for the disclosure guard) and rotation policy, and the key itself when the caller may
 * disclose it, with the rotation request already open for it. A disclosure is the hottest write
 * path, and on PostgreSQL every statement costs a round trip (bench/RESULTS.md).
 */
import type { Executor } from '../../db/database.js';
import type { RecoveryKeysTable } from '../../db/schema.js';
import { keyDeviceInScope } from '../access/access.repo.js';
import { toSettings, type AlertPolicy } from '../access/disclosure-guard.js';
import type { AccessScope } from '../access/permissions.js';
import { rotationPolicyOf, type RotationPolicy } from '../rotation/rotation.service.js';

export interface DisclosurePolicy {
  alerts: AlertPolicy;
  rotation: RotationPolicy;
}

/** The key as read before the disclosure, and the id of its open rotation request (if any). */
export type KeyBeforeDisclosure = RecoveryKeysTable & { open_rotation_id: string | null };

export function createDisclosurePolicyRepo(db: Executor) {
  return {
    /**
     * The policy, and the key when it exists in the organization and (with `scope`) its device is
     * in the caller's scope; a key outside the scope reads as missing. Either settings row may be
     * missing: its columns come back null and the defaults apply.
     */
    async findForKey(
      organizationId: string,
      keyRecordId: string,
      scope?: AccessScope,
      trx: Executor = db,
    ): Promise<{ policy: DisclosurePolicy; key: KeyBeforeDisclosure | undefined }> {
      const row = await trx
        .selectFrom('organizations as o')
        .leftJoin('organization_settings as s', 's.organization_id', 'o.id')
        .leftJoin('rotation_policies as r', 'r.organization_id', 'o.id')
        .leftJoin('recovery_keys as k', (join) =>
          join
            .onRef('k.organization_id', '=', 'o.id')
            .on('k.id', '=', keyRecordId)
            .on(keyDeviceInScope(scope, organizationId, 'k.device_id')),
        )
        .selectAll('k')
        .select((eb) => [
          's.disclosure_alert_threshold',
          's.disclosure_alert_window_minutes',
          's.suspend_on_disclosure_alert',
          'r.single_use_passwords',
          'r.deadline_days',
          eb
            .selectFrom('rotation_requests as rr')
            .select('rr.id')
            .whereRef('rr.open_key', '=', 'k.id')
            .as('open_rotation_id'),
        ])
        .where('o.id', '=', organizationId)
        .executeTakeFirst();
      const policy = { alerts: toSettings(row), rotation: rotationPolicyOf(row) };
      if (!row || row.id === null) return { policy, key: undefined };
      // The settings' columns off, the key's own are left; a matched LEFT JOIN has them all.
      const {
        disclosure_alert_threshold: _threshold,
        disclosure_alert_window_minutes: _window,
        suspend_on_disclosure_alert: _suspend,
        single_use_passwords: _singleUse,
        deadline_days: _deadline,
        open_rotation_id,
        ...key
      } = row;
      return {
        policy,
        key: { ...(key as RecoveryKeysTable), open_rotation_id: open_rotation_id ?? null },
      };
    },
  };
}

export type DisclosurePolicyRepo = ReturnType<typeof createDisclosurePolicyRepo>;
