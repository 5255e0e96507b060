/**
 * Which database failures a caller can do something about, so that the error handler answers them
 * with a status that says so instead of a bare 500:
 *
 * - `conflict` (409): two requests raced for the same row (a unique key taken between the check and
 *   the insert, a serialization failure, a deadlock victim). Nothing was written; trying again
 *   gives the real answer (usually a specific 409 from the service's own check).
 * - `unavailable` (503): the database cannot be reached, is restarting, or stayed locked past the
 *   busy timeout. Nothing was written; the same request works once it is back.
 *
 * Driver errors are recognized by their documented codes: PostgreSQL SQLSTATEs on node-postgres
 * errors, `SQLITE_*` codes on better-sqlite3 errors. A refused or reset socket, a lost connection
 * and a pool wait that timed out carry system codes or plain messages that an LDAP bind, a webhook
 * or an OIDC discovery fetch can raise too: they count only on errors the database layer marked
 * as its own (`fromDatabase`, applied by db/database.ts), so a mail server that is down is never
 * reported as the database.
 */

export type DatabaseFailure = 'conflict' | 'unavailable';

const POSTGRES_CONFLICT = new Set([
  '23505', // unique_violation
  '40001', // serialization_failure
  '40P01', // deadlock_detected
]);

/** Connection exceptions (class 08) and the operator-intervention states a restart passes through. */
const POSTGRES_UNAVAILABLE = /^(08...|57P01|57P02|57P03|53300)$/;

const SQLITE_CONFLICT = new Set(['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']);
const SQLITE_UNAVAILABLE = new Set([
  'SQLITE_BUSY',
  'SQLITE_BUSY_SNAPSHOT',
  'SQLITE_BUSY_TIMEOUT',
  'SQLITE_LOCKED',
]);

const SOCKET_UNAVAILABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

const NODE_POSTGRES_UNAVAILABLE =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error)/;

const FROM_DATABASE = Symbol('bdevault.fromDatabase');

/** Marks an error the PostgreSQL pool or one of its connections raised (see db/database.ts). */
export function fromDatabase(err: unknown): unknown {
  if (typeof err === 'object' && err !== null) {
    Object.defineProperty(err, FROM_DATABASE, { value: true, enumerable: false });
  }
  return err;
}

export function classifyDatabaseFailure(err: unknown): DatabaseFailure | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (POSTGRES_CONFLICT.has(code) || SQLITE_CONFLICT.has(code)) return 'conflict';
    if (POSTGRES_UNAVAILABLE.test(code) || SQLITE_UNAVAILABLE.has(code)) return 'unavailable';
  }
  if ((err as { [FROM_DATABASE]?: boolean })[FROM_DATABASE] === true) {
    const connectionLost =
      (typeof code === 'string' && SOCKET_UNAVAILABLE.has(code)) ||
      NODE_POSTGRES_UNAVAILABLE.test(err.message) ||
      // Connecting to a name with several addresses fails with every address's error at once.
      (err instanceof AggregateError &&
        err.errors.some((e: unknown) => SOCKET_UNAVAILABLE.has(String((e as { code?: unknown }).code))));
    if (connectionLost) return 'unavailable';
  }
  return undefined;
}
