/**
 * Limits on disclosure, shared by every server instance through database counters: a per-account
 * and a per-address rate limit, and the organization's alert threshold, which can suspend the account.
 */
import type { Db } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { AuditWriter } from '../audit/audit.service.js';
import type { AccessRepo, SettingsRow } from './access.repo.js';
import type { AlertSink } from './alerts.js';
import type { CounterIncrements } from './counter-batcher.js';

export interface DisclosureLimits {
  perAccount: { max: number; windowSeconds: number };
  perAddress: { max: number; windowSeconds: number };
}

/** Generous for a helpdesk at work, tight for a script walking the vault. */
export const DEFAULT_DISCLOSURE_LIMITS: DisclosureLimits = {
  perAccount: { max: 30, windowSeconds: 60 },
  perAddress: { max: 60, windowSeconds: 60 },
};

export type OrganizationSettings = ReturnType<typeof toSettings>;

/** The settings a stored row says; missing rows and the null columns of a LEFT JOIN give the defaults. */
export function toSettings(row: { [K in keyof SettingsRow]?: SettingsRow[K] | null } | undefined) {
  return {
    restrictOwnerKeyRecovery: row ? row.restrict_owner_key_recovery === 1 : false,
    disclosureAlertThreshold: row?.disclosure_alert_threshold ?? 20,
    disclosureAlertWindowMinutes: row?.disclosure_alert_window_minutes ?? 60,
    suspendOnDisclosureAlert: row ? row.suspend_on_disclosure_alert === 1 : false,
    selfServiceContactText: row?.self_service_contact_text ?? null,
    selfServiceContactLink: row?.self_service_contact_link ?? null,
  };
}

/** What the threshold alert needs of the organization's settings. */
export type AlertPolicy = Pick<
  OrganizationSettings,
  'disclosureAlertThreshold' | 'disclosureAlertWindowMinutes' | 'suspendOnDisclosureAlert'
>;

export interface DisclosureAttempt {
  organizationId: string;
  /** The account that discloses (undefined for the operator at the console). */
  account: { type: 'user' | 'api-token'; id: string } | undefined;
  address: string | undefined;
  requestId?: string;
  /** The organization's alert policy when the caller has read it already (else the guard reads it). */
  alertPolicy?: AlertPolicy;
}

/** An admitted attempt. */
export interface Admission {
  /**
   * The disclosure did not happen after all (no such key in the caller's scope, a failed write):
   * the alert threshold takes its count back, as for a refused attempt. The rate limits keep
   * theirs: they count attempts.
   */
  withdraw(): Promise<void>;
}

const NOTHING_TO_WITHDRAW: Admission = { withdraw: async () => undefined };

export type DisclosureGuard = ReturnType<typeof createDisclosureGuard>;

export function windowStart(now: Date, seconds: number): Date {
  const ms = seconds * 1000;
  return new Date(Math.floor(now.getTime() / ms) * ms);
}

export function createDisclosureGuard(deps: {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  auditWriter: AuditWriter;
  alerts: AlertSink;
  accessRepo: Pick<AccessRepo, 'decrementCounter' | 'pruneCounters' | 'findSettings' | 'insertSuspension'>;
  /** Every rate limit's counting (batched on PostgreSQL: AppDeps.rateCounters). */
  rateCounters: CounterIncrements;
  limits?: DisclosureLimits;
}) {
  const { db, clock, ids, auditWriter, alerts, accessRepo, rateCounters } = deps;
  const limits = deps.limits ?? DEFAULT_DISCLOSURE_LIMITS;

  function counterOf(bucket: string, seconds: number, now: Date) {
    const start = windowStart(now, seconds);
    const expiresAt = new Date(start.getTime() + seconds * 1000).toISOString();
    return { bucket, windowStart: start.toISOString(), expiresAt };
  }

  // Expired counters are swept at most once a minute per process, not on every disclosure.
  let lastPrune = 0;
  async function pruneNowAndThen(now: Date): Promise<void> {
    if (now.getTime() - lastPrune < 60_000 && now.getTime() >= lastPrune) return;
    lastPrune = now.getTime();
    await accessRepo.pruneCounters(now.toISOString());
  }

  /** The refusal carries when the window ends, so the error handler can send Retry-After. */
  function rateLimited(seconds: number, now: Date): AppError {
    const end = windowStart(now, seconds).getTime() + seconds * 1000;
    const retryAfterSeconds = Math.max(1, Math.ceil((end - now.getTime()) / 1000));
    return new AppError('RATE_LIMITED', 'Too many disclosures; try again later', {
      details: { retryAfterSeconds },
    });
  }

  return {
    /**
     * Counts one disclosure attempt and refuses it when a limit is reached. Call it before the
     * disclosure transaction, and withdraw the admission when that transaction finds no key in the
     * caller's scope or fails. Crossing the threshold audits `alert.disclosure_threshold`, suspends
     * the account when the organization says so (and then refuses this request too), and hands the
     * alert to the sink after the commit.
     */
    async admit(attempt: DisclosureAttempt): Promise<Admission> {
      const { organizationId, account, address } = attempt;
      const now = clock.now();
      await pruneNowAndThen(now);
      const settings = account
        ? (attempt.alertPolicy ?? toSettings(await accessRepo.findSettings(organizationId)))
        : undefined;
      // Every counter in one statement (one round trip, one commit): the two rate limits count
      // every attempt, refused or not; the alert threshold counts the attempts they admit.
      const accountBucket = account
        ? `disclose:account:${organizationId}:${account.type}:${account.id}`
        : undefined;
      const addressBucket = address === undefined ? undefined : `disclose:address:${address}`;
      const threshold =
        account && settings
          ? counterOf(
              `disclose:threshold:${organizationId}:${account.type}:${account.id}`,
              settings.disclosureAlertWindowMinutes * 60,
              now,
            )
          : undefined;
      const counts = await rateCounters.incrementCounters([
        ...(accountBucket ? [counterOf(accountBucket, limits.perAccount.windowSeconds, now)] : []),
        ...(addressBucket ? [counterOf(addressBucket, limits.perAddress.windowSeconds, now)] : []),
        ...(threshold ? [threshold] : []),
      ]);
      // Taking the threshold's count back: for a refused attempt, and for an admitted one that ends
      // without a disclosure.
      const admission: Admission = threshold
        ? { withdraw: () => accessRepo.decrementCounter(threshold.bucket, threshold.windowStart) }
        : NOTHING_TO_WITHDRAW;
      const counted = {
        account: accountBucket ? (counts.get(accountBucket) ?? 0) : 0,
        address: addressBucket ? (counts.get(addressBucket) ?? 0) : 0,
      };
      const refusal =
        counted.account > limits.perAccount.max
          ? rateLimited(limits.perAccount.windowSeconds, now)
          : counted.address > limits.perAddress.max
            ? rateLimited(limits.perAddress.windowSeconds, now)
            : undefined;
      if (refusal) {
        // A refused attempt is no disclosure: the threshold takes its count back (refusals are rare).
        await admission.withdraw();
        throw refusal;
      }
      if (!account || !settings || !threshold) return admission;
      const disclosed = counts.get(threshold.bucket) ?? 0;
      // Exactly once per window: the attempt that goes one past the threshold.
      if (disclosed !== settings.disclosureAlertThreshold + 1) return admission;
      const suspend = settings.suspendOnDisclosureAlert;
      const audit = await db.transaction().execute(async (trx) => {
        const alert = await auditWriter.append(
          {
            organizationId,
            actor: { type: 'system', id: null },
            action: 'alert.disclosure_threshold',
            target: { type: account.type, id: account.id },
            outcome: 'success',
            details: {
              count: disclosed,
              threshold: settings.disclosureAlertThreshold,
              windowMinutes: settings.disclosureAlertWindowMinutes,
              suspended: suspend,
            },
            ...(attempt.requestId === undefined ? {} : { requestId: attempt.requestId }),
          },
          trx,
        );
        if (suspend) {
          const suspensionId = ids('suspension');
          await accessRepo.insertSuspension(
            {
              id: suspensionId,
              organization_id: organizationId,
              subject_type: account.type,
              subject_id: account.id,
              reason: 'disclosure_threshold',
              created_at: now.toISOString(),
              lifted_at: null,
            },
            trx,
          );
          await auditWriter.append(
            {
              organizationId,
              actor: { type: 'system', id: null },
              action: 'account.suspended',
              target: { type: account.type, id: account.id },
              outcome: 'success',
              reason: 'disclosure threshold exceeded',
              details: { suspensionId },
              ...(attempt.requestId === undefined ? {} : { requestId: attempt.requestId }),
            },
            trx,
          );
        }
        return alert;
      });
      try {
        await alerts.emit({
          type: 'disclosure_threshold',
          organizationId,
          account,
          count: disclosed,
          threshold: settings.disclosureAlertThreshold,
          windowMinutes: settings.disclosureAlertWindowMinutes,
          suspended: suspend,
          occurredAt: now.toISOString(),
          auditEntryId: audit.id,
        });
      } catch {
        // The audit row is the alert of record; a failing sink must not turn into a failed request.
      }
      if (suspend) throw new AppError('ACCOUNT_SUSPENDED', 'This account is suspended in this organization');
      return admission;
    },
  };
}
