/**
 * What a disclosure needs to know about its organization, read in one statement before anything
 * else: the alert settings the disclosure guard applies (threshold, window, suspension) and the
 * rotation policy (single-use passwords, deadline). Two tables, one round trip: a disclosure is the
 * hottest write path, and on PostgreSQL every statement costs a round trip (bench/RESULTS.md).
 */
import type { Executor } from '../../db/database.js';
import { toSettings, type AlertPolicy } from '../access/disclosure-guard.js';
import { rotationPolicyOf, type RotationPolicy } from '../rotation/rotation.service.js';

export interface DisclosurePolicy {
  alerts: AlertPolicy;
  rotation: RotationPolicy;
}

export function createDisclosurePolicyRepo(db: Executor) {
  return {
    async find(organizationId: string, trx: Executor = db): Promise<DisclosurePolicy> {
      // Either row may be missing: its columns come back null and the defaults apply.
      const row = await trx
        .selectFrom('organizations as o')
        .leftJoin('organization_settings as s', 's.organization_id', 'o.id')
        .leftJoin('rotation_policies as r', 'r.organization_id', 'o.id')
        .select([
          's.disclosure_alert_threshold',
          's.disclosure_alert_window_minutes',
          's.suspend_on_disclosure_alert',
          'r.single_use_passwords',
          'r.deadline_days',
        ])
        .where('o.id', '=', organizationId)
        .executeTakeFirst();
      return { alerts: toSettings(row), rotation: rotationPolicyOf(row) };
    },
  };
}

export type DisclosurePolicyRepo = ReturnType<typeof createDisclosurePolicyRepo>;
