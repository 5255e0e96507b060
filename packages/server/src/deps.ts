/** The dependencies every module draws from, built once at start; tests replace single members. */
import { PostgresAdapter } from 'kysely';
import type { Db } from './db/database.js';
import { systemClock, type Clock } from './lib/clock.js';
import { createEnvelope, type Envelope } from './lib/envelope.js';
import type { EventSink } from './lib/events.js';
import type { MailSender } from './lib/mail.js';
import { createIdGenerator, type IdGenerator } from './lib/ids.js';
import type { KekRing } from './lib/kek.js';
import { cryptoRandom, type RandomSource } from './lib/random.js';
import { createAccessRepo } from './modules/access/access.repo.js';
import type { AlertSink } from './modules/access/alerts.js';
import { createCounterBatcher, type CounterIncrements } from './modules/access/counter-batcher.js';
import { createAuditRepo } from './modules/audit/audit.repo.js';
import { createAuditWriter, type AuditWriter } from './modules/audit/audit.service.js';
import { createArgon2Hasher, type PasswordHasher } from './modules/identity/password-hasher.js';
import {
  createNotificationDispatcher,
  createNotificationSinks,
  type LostNotification,
  type NotificationDispatcher,
} from './modules/notifications/notifications.outbox.js';
import { createApiTokensRepo } from './modules/api-tokens/api-tokens.repo.js';
import { createTokenLookupBatcher, type TokenLookups } from './modules/api-tokens/token-lookup-batcher.js';
import { createNotificationsRepo } from './modules/notifications/notifications.repo.js';
import { createRoutingReadBatcher } from './modules/notifications/routing-read-batcher.js';
import { createSmtpMailSender } from './modules/notifications/smtp-mail-sender.js';
import { createDisclosurePolicyRepo } from './modules/recovery-keys/disclosure-policy.repo.js';
import {
  createDisclosureReadBatcher,
  type DisclosureReads,
} from './modules/recovery-keys/disclosure-read-batcher.js';
import { createDisclosureWriteBatcher } from './modules/recovery-keys/disclosure-write-batcher.js';
import {
  createOneStatementDisclosure,
  type OneStatementDisclosure,
} from './modules/recovery-keys/one-statement-disclosure.repo.js';

export interface AppDeps {
  db: Db;
  clock: Clock;
  random: RandomSource;
  ids: IdGenerator;
  kekRing: KekRing;
  envelope: Envelope;
  passwordHasher: PasswordHasher;
  auditWriter: AuditWriter;
  /** Where security alerts go after they are audited (notifications implement it). */
  alerts: AlertSink;
  /** Where domain events go after commit (notifications, timeline). */
  events: EventSink;
  /** Outgoing mail, per organization (one-time codes, notifications). */
  mail: MailSender;
  /** Sends queued notifications (the outbox); the server also polls it for retries. */
  notifications: NotificationDispatcher;
  /**
   * PostgreSQL only: writes disclosures in one statement, several at once under load (group commit,
   * disclosure-write-batcher.ts). One per process, shared by every disclosure path, so that they
   * batch together. Undefined on SQLite, where every disclosure is a transaction.
   */
  disclosureWrites: OneStatementDisclosure | undefined;
  /**
   * The read each disclosure starts with (the key in scope, the policy). One per process: on
   * PostgreSQL concurrent disclosures' reads go in one statement (disclosure-read-batcher.ts).
   */
  disclosureReads: DisclosureReads;
  /**
   * Every rate limit's counting (disclosure limits, per-route limits). One per process: on
   * PostgreSQL the increments of concurrent requests go in one upsert (counter-batcher.ts); on
   * SQLite each is its own.
   */
  rateCounters: CounterIncrements;
  /**
   * API-token authentication reads. One per process: on PostgreSQL the reads of concurrent
   * requests go in one statement (token-lookup-batcher.ts); on SQLite each is its own.
   */
  tokenLookups: TokenLookups;
}

export function createAppDeps(options: {
  db: Db;
  kekRing: KekRing;
  clock?: Clock;
  random?: RandomSource;
  passwordHasher?: PasswordHasher;
  alerts?: AlertSink;
  events?: EventSink;
  mail?: MailSender;
  /** Told of a notification that could not be queued after its change committed. */
  onNotificationLost?: (lost: LostNotification) => void;
}): AppDeps {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? cryptoRandom;
  const ids = createIdGenerator(random);
  const envelope = createEnvelope({ kekRing: options.kekRing, random });
  // The organization's own SMTP settings by default; tests and embedders may pass another sender.
  const mail = options.mail ?? createSmtpMailSender({ db: options.db, envelope });
  const notifications = createNotificationDispatcher({ db: options.db, clock, envelope, mail, random });
  const onPostgres = options.db.getExecutor().adapter instanceof PostgresAdapter;
  const sinks = createNotificationSinks({
    db: options.db,
    clock,
    ids,
    dispatcher: notifications,
    ...(options.onNotificationLost ? { onLost: options.onNotificationLost } : {}),
    ...(onPostgres ? { routingReads: createRoutingReadBatcher(createNotificationsRepo(options.db)) } : {}),
  });
  return {
    db: options.db,
    clock,
    random,
    ids,
    kekRing: options.kekRing,
    envelope,
    passwordHasher: options.passwordHasher ?? createArgon2Hasher(),
    auditWriter: createAuditWriter({ auditRepo: createAuditRepo(options.db), clock, ids }),
    alerts: options.alerts ?? sinks.alerts,
    events: options.events ?? sinks.events,
    mail,
    notifications,
    disclosureWrites: onPostgres
      ? createDisclosureWriteBatcher(createOneStatementDisclosure(options.db))
      : undefined,
    disclosureReads: onPostgres
      ? createDisclosureReadBatcher(createDisclosurePolicyRepo(options.db))
      : createDisclosurePolicyRepo(options.db),
    rateCounters: onPostgres
      ? createCounterBatcher(createAccessRepo(options.db))
      : createAccessRepo(options.db),
    tokenLookups: onPostgres
      ? createTokenLookupBatcher(createApiTokensRepo(options.db))
      : createApiTokensRepo(options.db),
  };
}
