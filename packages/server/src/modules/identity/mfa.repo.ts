/** MFA factors: TOTP secrets, recovery codes, WebAuthn credentials and their ceremony challenges. */
import type { Executor } from '../../db/database.js';
import type {
  MfaRecoveryCodesTable,
  TotpCredentialsTable,
  WebauthnChallengesTable,
  WebauthnCredentialsTable,
} from '../../db/schema.js';

export interface MfaRepo {
  /** Which confirmed factors the user has. */
  findMethods(
    userId: string,
    trx?: Executor,
  ): Promise<{ totp: boolean; webauthn: number; recoveryCodes: number }>;
  findTotp(userId: string, trx?: Executor): Promise<TotpCredentialsTable | undefined>;
  /** Replaces an unconfirmed secret; never a confirmed one (the caller checks). */
  upsertPendingTotp(row: TotpCredentialsTable, trx?: Executor): Promise<void>;
  confirmTotp(userId: string, at: string, step: number, trx?: Executor): Promise<boolean>;
  /** Records `step` as used when it is newer than the last one; false means a replay. */
  claimTotpStep(userId: string, step: number, trx?: Executor): Promise<boolean>;
  deleteTotp(userId: string, trx?: Executor): Promise<void>;
  replaceRecoveryCodes(userId: string, rows: MfaRecoveryCodesTable[], trx?: Executor): Promise<void>;
  /** Marks an unused code as used; false when it does not exist, is someone else's, or was used. */
  useRecoveryCode(userId: string, codeHash: string, at: string, trx?: Executor): Promise<boolean>;
  listWebauthn(userId: string, trx?: Executor): Promise<WebauthnCredentialsTable[]>;
  insertWebauthn(row: WebauthnCredentialsTable, trx?: Executor): Promise<void>;
  /**
   * Moves the signature counter from `previous` to `counter` (compare-and-set); false when another
   * sign-in moved it first, so two assertions made from one counter value cannot both pass.
   */
  updateWebauthnCounter(
    id: string,
    previous: number,
    counter: number,
    at: string,
    trx?: Executor,
  ): Promise<boolean>;
  deleteWebauthn(userId: string, id: string, trx?: Executor): Promise<boolean>;
  insertChallenge(row: WebauthnChallengesTable, trx?: Executor): Promise<void>;
  /** Deletes and returns the session's live challenge for `purpose`: a challenge is good once. */
  takeChallenge(
    sessionId: string,
    purpose: WebauthnChallengesTable['purpose'],
    now: string,
    trx?: Executor,
  ): Promise<string | undefined>;
}

export function createMfaRepo(db: Executor): MfaRepo {
  return {
    async findMethods(userId, trx = db) {
      const totp = await trx
        .selectFrom('totp_credentials')
        .select('user_id')
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is not', null)
        .executeTakeFirst();
      const webauthn = await trx
        .selectFrom('webauthn_credentials')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('user_id', '=', userId)
        .executeTakeFirstOrThrow();
      const codes = await trx
        .selectFrom('mfa_recovery_codes')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('user_id', '=', userId)
        .where('used_at', 'is', null)
        .executeTakeFirstOrThrow();
      return { totp: totp !== undefined, webauthn: Number(webauthn.n), recoveryCodes: Number(codes.n) };
    },
    async findTotp(userId, trx = db) {
      return trx.selectFrom('totp_credentials').selectAll().where('user_id', '=', userId).executeTakeFirst();
    },
    async upsertPendingTotp(row, trx = db) {
      await trx.deleteFrom('totp_credentials').where('user_id', '=', row.user_id).execute();
      await trx.insertInto('totp_credentials').values(row).execute();
    },
    async confirmTotp(userId, at, step, trx = db) {
      const result = await trx
        .updateTable('totp_credentials')
        .set({ confirmed_at: at, last_used_step: step })
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async claimTotpStep(userId, step, trx = db) {
      // One conditional update: two servers verifying the same code at once cannot both succeed.
      const result = await trx
        .updateTable('totp_credentials')
        .set({ last_used_step: step })
        .where('user_id', '=', userId)
        .where('confirmed_at', 'is not', null)
        .where((eb) => eb.or([eb('last_used_step', 'is', null), eb('last_used_step', '<', step)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async deleteTotp(userId, trx = db) {
      await trx.deleteFrom('totp_credentials').where('user_id', '=', userId).execute();
    },
    async replaceRecoveryCodes(userId, rows, trx = db) {
      await trx.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute();
      if (rows.length > 0) await trx.insertInto('mfa_recovery_codes').values(rows).execute();
    },
    async useRecoveryCode(userId, codeHash, at, trx = db) {
      const result = await trx
        .updateTable('mfa_recovery_codes')
        .set({ used_at: at })
        .where('user_id', '=', userId)
        .where('code_hash', '=', codeHash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async listWebauthn(userId, trx = db) {
      return trx
        .selectFrom('webauthn_credentials')
        .selectAll()
        .where('user_id', '=', userId)
        .orderBy('created_at')
        .execute();
    },
    async insertWebauthn(row, trx = db) {
      await trx.insertInto('webauthn_credentials').values(row).execute();
    },
    async updateWebauthnCounter(id, previous, counter, at, trx = db) {
      const result = await trx
        .updateTable('webauthn_credentials')
        .set({ counter, last_used_at: at })
        .where('id', '=', id)
        .where('counter', '=', previous)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async deleteWebauthn(userId, id, trx = db) {
      const result = await trx
        .deleteFrom('webauthn_credentials')
        .where('user_id', '=', userId)
        .where('id', '=', id)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },
    async insertChallenge(row, trx = db) {
      await trx
        .deleteFrom('webauthn_challenges')
        .where('session_id', '=', row.session_id)
        .where('purpose', '=', row.purpose)
        .execute();
      await trx.insertInto('webauthn_challenges').values(row).execute();
    },
    async takeChallenge(sessionId, purpose, now, trx = db) {
      const row = await trx
        .selectFrom('webauthn_challenges')
        .select(['id', 'challenge', 'expires_at'])
        .where('session_id', '=', sessionId)
        .where('purpose', '=', purpose)
        .executeTakeFirst();
      if (!row) return undefined;
      await trx.deleteFrom('webauthn_challenges').where('id', '=', row.id).execute();
      return row.expires_at > now ? row.challenge : undefined;
    },
  };
}
