/**
 * What a disclosure needs to know before it writes, read in one statement: the organization's alert
 * settings (for the disclosure guard) and rotation policy, and the key itself when the caller may
 * disclose it, with the rotation request already open for it. A disclosure is the hottest write
 * path, and on PostgreSQL every statement costs a round trip (bench/RESULTS.md).
 */
import { sql } from 'kysely';
import type { Executor } from '../../db/database.js';
import { jsonItems } from '../../db/json-items.js';
import type { RecoveryKeysTable } from '../../db/schema.js';
import { keyDeviceInScope, perItemKeyScopes } from '../access/access.repo.js';
import { toSettings, type AlertPolicy } from '../access/disclosure-guard.js';
import type { AccessScope } from '../access/permissions.js';
import { rotationPolicyOf, type RotationPolicy } from '../rotation/rotation.service.js';

export interface DisclosurePolicy {
  alerts: AlertPolicy;
  rotation: RotationPolicy;
}

/** The key as read before the disclosure, and the id of its open rotation request (if any). */
export type KeyBeforeDisclosure = RecoveryKeysTable & { open_rotation_id: string | null };

/** A row of the read below (or none: no such organization) as the policy and the key. */
function keyAndPolicyOf(row: PolicyAndKeyRow | undefined): {
  policy: DisclosurePolicy;
  key: KeyBeforeDisclosure | undefined;
} {
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
}

/** What a disclosure reads: the key (all null when not found), the policy columns, its open request. */
type PolicyAndKeyRow = { [K in keyof RecoveryKeysTable]: RecoveryKeysTable[K] | null } & {
  disclosure_alert_threshold: number | null;
  disclosure_alert_window_minutes: number | null;
  suspend_on_disclosure_alert: number | null;
  single_use_passwords: number | null;
  deadline_days: number | null;
  open_rotation_id: string | null;
};

/** One disclosure's read: which key, in which organization, within which scope. */
export interface KeyRead {
  organizationId: string;
  keyRecordId: string;
  scope?: AccessScope | undefined;
}

export type KeyAndPolicy = ReturnType<typeof keyAndPolicyOf>;

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
      return keyAndPolicyOf(row);
    },

    /**
     * `findForKey` for several disclosures in one statement (PostgreSQL only: the reads travel as one
     * JSON parameter), answered in their order; for disclosure-read-batcher.ts. Scopes differ between
     * callers: each distinct one is a condition of its own, chosen per read by `scope_no`.
     */
    async findForKeys(reads: readonly KeyRead[], trx: Executor = db): Promise<KeyAndPolicy[]> {
      if (reads.length === 0) return [];
      const scopes = perItemKeyScopes('k.device_id');
      const items = reads.map((read, n) => ({
        n,
        organization_id: read.organizationId,
        key_id: read.keyRecordId,
        scope_no: scopes.numberOf(read.organizationId, read.scope),
      }));
      const { rows } = await sql<
        PolicyAndKeyRow & { n: number }
      >`with i as (${jsonItems(items, 'n int, organization_id text, key_id text, scope_no int')})
        select i.n, k.*, s.disclosure_alert_threshold, s.disclosure_alert_window_minutes,
          s.suspend_on_disclosure_alert, r.single_use_passwords, r.deadline_days,
          (select rr.id from rotation_requests as rr where rr.open_key = k.id) as open_rotation_id
        from i
        join organizations as o on o.id = i.organization_id
        left join organization_settings as s on s.organization_id = o.id
        left join rotation_policies as r on r.organization_id = o.id
        left join recovery_keys as k on k.organization_id = o.id and k.id = i.key_id and ${scopes.condition('i.scope_no')}`.execute(
        trx,
      );
      const byItem = new Map(rows.map(({ n, ...row }) => [Number(n), row]));
      return reads.map((_, n) => keyAndPolicyOf(byItem.get(n)));
    },
  };
}

export type DisclosurePolicyRepo = ReturnType<typeof createDisclosurePolicyRepo>;
