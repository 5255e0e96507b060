/**
 * Second factors: TOTP (enrolled with a secret shown once, a used code never accepted again),
 * recovery codes (stored hashed, each good once) and WebAuthn passkeys (challenges kept server-side
 * with an expiry, one use each). Completing a factor turns a pending session into an active one.
 */
import { createHash } from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { Secret, TOTP } from 'otpauth';
import type { Db } from '../../db/database.js';
import type { SessionsTable } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import type { IdentityConfig } from '../../lib/config.js';
import type { Envelope, SecretBinding } from '../../lib/envelope.js';
import { AppError } from '../../lib/errors.js';
import { base32, type IdGenerator } from '../../lib/ids.js';
import type { RandomSource } from '../../lib/random.js';
import type { AuditWriter } from '../audit/audit.service.js';
import type { IdentityRepo } from './identity.repo.js';
import type { IdentityService } from './identity.service.js';
import type { MfaRepo } from './mfa.repo.js';
import type { SignInThrottle } from './sign-in-throttle.js';

/** How recent the sign-in of a session must be for it to remove a second factor. */
export const RECENT_SIGN_IN_MS = 15 * 60_000;

const TOTP_PERIOD_SECONDS = 30;
const RECOVERY_CODE_COUNT = 10;
const CHALLENGE_TTL_MS = 5 * 60_000;

export type MfaService = ReturnType<typeof createMfaService>;

// TOTP secrets belong to a person, not to one organization; the binding still pins the user.
const totpBinding = (userId: string): SecretBinding => ({
  organizationId: 'user',
  recordId: userId,
  purpose: 'totp-secret',
});

export function hashRecoveryCode(code: string): string {
  return createHash('sha256')
    .update(code.toLowerCase().replace(/[^0-9a-z]/g, ''), 'utf8')
    .digest('hex');
}

function mfaInvalid(message = 'The code is not valid'): AppError {
  return new AppError('MFA_INVALID', message);
}

export function createMfaService(deps: {
  db: Db;
  clock: Clock;
  random: RandomSource;
  ids: IdGenerator;
  envelope: Envelope;
  auditWriter: AuditWriter;
  mfaRepo: MfaRepo;
  identityRepo: Pick<IdentityRepo, 'findUserById'>;
  identityService: Pick<IdentityService, 'activateSession' | 'mfaRequired'>;
  throttle: SignInThrottle;
  identity: IdentityConfig;
}) {
  const { db, clock, random, ids, envelope, auditWriter, mfaRepo, identityRepo, identityService, throttle } =
    deps;

  const relyingParty = () => {
    const { publicUrl, webauthnRpId, webauthnRpName } = deps.identity;
    if (!publicUrl || !webauthnRpId) {
      throw new AppError('NOT_READY', 'Passkeys need the public URL to be configured (BDEVAULT_PUBLIC_URL)');
    }
    return { origin: new URL(publicUrl).origin, rpID: webauthnRpId, rpName: webauthnRpName };
  };

  async function user(userId: string) {
    const found = await identityRepo.findUserById(userId);
    if (!found) throw new AppError('UNAUTHENTICATED', 'Sign in first');
    return found;
  }

  const auditEvent = (
    session: SessionsTable,
    action: string,
    outcome: 'success' | 'failure',
    requestId?: string,
  ) =>
    db.transaction().execute((trx) =>
      auditWriter.append(
        {
          organizationId: session.organization_id,
          actor: { type: 'user', id: session.user_id },
          action,
          target: { type: 'user', id: session.user_id },
          outcome,
          ...(requestId === undefined ? {} : { requestId }),
        },
        trx,
      ),
    );

  /** Activates a session that owed a step; an already active session stays as it is. */
  async function finishStep(session: SessionsTable, requestId: string | undefined, how: string) {
    if (session.state === 'active') return undefined;
    return identityService.activateSession(session, requestId, how);
  }

  function totpFor(secretBase32: string, label: string) {
    return new TOTP({
      issuer: deps.identity.webauthnRpName,
      label,
      algorithm: 'SHA1',
      digits: 6,
      period: TOTP_PERIOD_SECONDS,
      secret: Secret.fromBase32(secretBase32),
    });
  }

  /** The 30-second step a code matches (±1 step for clock drift), or undefined. */
  function matchingStep(secretBase32: string, code: string): number | undefined {
    const timestamp = clock.now().getTime();
    const delta = totpFor(secretBase32, 'x').validate({ token: code, timestamp, window: 1 });
    if (delta === null) return undefined;
    return Math.floor(timestamp / 1000 / TOTP_PERIOD_SECONDS) + delta;
  }

  /** Runs one factor check under the per-user MFA throttle (the same growing delay as sign-in). */
  async function throttled<T>(
    userId: string,
    check: () => Promise<T | undefined>,
    message?: string,
  ): Promise<T> {
    const keys = throttle.keysFor('mfa', userId, undefined);
    await throttle.assertOpen(keys);
    const result = await check();
    if (result === undefined) {
      await throttle.recordFailure(keys);
      throw mfaInvalid(message);
    }
    await throttle.recordSuccess(keys);
    return result;
  }

  function newRecoveryCodes(userId: string) {
    const now = clock.now().toISOString();
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, () =>
      (base32(random.bytes(10)).match(/.{4}/g) ?? []).join('-'),
    );
    const rows = codes.map((code) => ({
      id: ids('recoveryCode'),
      user_id: userId,
      code_hash: hashRecoveryCode(code),
      created_at: now,
      used_at: null,
    }));
    return { codes, rows };
  }

  return {
    async status(userId: string) {
      const methods = await mfaRepo.findMethods(userId);
      const passkeys = await mfaRepo.listWebauthn(userId);
      return {
        totp: methods.totp,
        recoveryCodesLeft: methods.recoveryCodes,
        passkeys: passkeys.map((p) => ({
          id: p.id,
          name: p.name,
          createdAt: p.created_at,
          lastUsedAt: p.last_used_at,
        })),
      };
    },

    /** A new (unconfirmed) TOTP secret; shown once, stored encrypted. */
    async enrollTotp(session: SessionsTable) {
      const account = await user(session.user_id);
      const existing = await mfaRepo.findTotp(account.id);
      if (existing?.confirmed_at) throw new AppError('CONFLICT', 'An authenticator app is already enrolled');
      const secret = new Secret({ buffer: new Uint8Array(random.bytes(20)).buffer });
      const sealed = envelope.seal(totpBinding(account.id), secret.base32);
      await mfaRepo.upsertPendingTotp({
        user_id: account.id,
        secret_ciphertext: sealed.ciphertext,
        secret_wrapped_key: sealed.wrappedKey,
        secret_kek_id: sealed.kekId,
        confirmed_at: null,
        last_used_step: null,
        created_at: clock.now().toISOString(),
      });
      return { secret: secret.base32, otpauthUri: totpFor(secret.base32, account.username).toString() };
    },

    /** Confirms the enrolled secret with a code; returns recovery codes once and completes a pending enrollment. */
    async confirmTotp(session: SessionsTable, code: string, requestId?: string) {
      const row = await mfaRepo.findTotp(session.user_id);
      if (!row || row.confirmed_at) throw new AppError('CONFLICT', 'Start an enrollment first');
      const secret = envelope.open(totpBinding(session.user_id), {
        ciphertext: row.secret_ciphertext,
        wrappedKey: row.secret_wrapped_key,
        kekId: row.secret_kek_id,
      });
      const step = await throttled(session.user_id, async () => matchingStep(secret, code));
      const { codes, rows } = newRecoveryCodes(session.user_id);
      await db.transaction().execute(async (trx) => {
        if (!(await mfaRepo.confirmTotp(session.user_id, clock.now().toISOString(), step, trx))) {
          throw new AppError('CONFLICT', 'Start an enrollment first');
        }
        await mfaRepo.replaceRecoveryCodes(session.user_id, rows, trx);
        await auditWriter.append(
          {
            organizationId: session.organization_id,
            actor: { type: 'user', id: session.user_id },
            action: 'mfa.totp-enrolled',
            target: { type: 'user', id: session.user_id },
            outcome: 'success',
            ...(requestId === undefined ? {} : { requestId }),
          },
          trx,
        );
      });
      return { recoveryCodes: codes, activated: await finishStep(session, requestId, 'totp-enrolled') };
    },

    /** The MFA step of sign-in with a TOTP code or a recovery code. */
    async verify(
      session: SessionsTable,
      input: { code: string } | { recoveryCode: string },
      requestId?: string,
    ) {
      const userId = session.user_id;
      const how = await throttled(userId, async () => {
        if ('recoveryCode' in input) {
          const used = await mfaRepo.useRecoveryCode(
            userId,
            hashRecoveryCode(input.recoveryCode),
            clock.now().toISOString(),
          );
          return used ? 'recovery-code' : undefined;
        }
        const row = await mfaRepo.findTotp(userId);
        if (!row?.confirmed_at) return undefined;
        const secret = envelope.open(totpBinding(userId), {
          ciphertext: row.secret_ciphertext,
          wrappedKey: row.secret_wrapped_key,
          kekId: row.secret_kek_id,
        });
        const step = matchingStep(secret, input.code);
        // A code from a step already used (this one or an earlier one) is a replay.
        return step !== undefined && (await mfaRepo.claimTotpStep(userId, step)) ? 'totp' : undefined;
      }).catch(async (err: unknown) => {
        if (err instanceof AppError && err.code === 'MFA_INVALID')
          await auditEvent(session, 'mfa.verify', 'failure', requestId);
        throw err;
      });
      return identityService.activateSession(session, requestId, how);
    },

    /**
     * Removes the authenticator app or one passkey. The last factor stays while the organization's
     * policy requires MFA of this user; with no factor left, the recovery codes go too (they are a
     * way around a factor, not one of their own).
     */
    async removeFactor(
      session: SessionsTable,
      factor: { kind: 'totp' } | { kind: 'webauthn'; id: string },
      requestId?: string,
    ) {
      const userId = session.user_id;
      // A session cookie taken from an unattended browser must not be enough to strip a factor:
      // removing one needs a sign-in (with its second step) in the last few minutes.
      if (clock.now().getTime() - Date.parse(session.created_at) > RECENT_SIGN_IN_MS) {
        throw new AppError(
          'REAUTHENTICATION_REQUIRED',
          `For your safety, sign out and sign in again, then remove the factor within ${RECENT_SIGN_IN_MS / 60_000} minutes`,
        );
      }
      const methods = await mfaRepo.findMethods(userId);
      const exists =
        factor.kind === 'totp'
          ? (await mfaRepo.findTotp(userId)) !== undefined
          : (await mfaRepo.listWebauthn(userId)).some((c) => c.id === factor.id);
      if (!exists) throw new AppError('NOT_FOUND', 'No such factor');
      const remaining =
        (factor.kind === 'totp' ? 0 : Number(methods.totp)) +
        methods.webauthn -
        (factor.kind === 'webauthn' ? 1 : 0);
      if (remaining === 0 && (await identityService.mfaRequired(userId, session.organization_id))) {
        throw new AppError('CONFLICT', 'Your organization requires a second factor: add another one first');
      }
      await db.transaction().execute(async (trx) => {
        if (factor.kind === 'totp') await mfaRepo.deleteTotp(userId, trx);
        else await mfaRepo.deleteWebauthn(userId, factor.id, trx);
        if (remaining === 0) await mfaRepo.replaceRecoveryCodes(userId, [], trx);
        await auditWriter.append(
          {
            organizationId: session.organization_id,
            actor: { type: 'user', id: userId },
            action: factor.kind === 'totp' ? 'mfa.totp-removed' : 'mfa.passkey-removed',
            target:
              factor.kind === 'totp'
                ? { type: 'user', id: userId }
                : { type: 'webauthn-credential', id: factor.id },
            outcome: 'success',
            ...(requestId === undefined ? {} : { requestId }),
          },
          trx,
        );
      });
    },

    async registrationOptions(session: SessionsTable) {
      const rp = relyingParty();
      const account = await user(session.user_id);
      const existing = await mfaRepo.listWebauthn(account.id);
      const options = await generateRegistrationOptions({
        rpName: rp.rpName,
        rpID: rp.rpID,
        userName: account.username,
        userDisplayName: account.display_name,
        userID: new Uint8Array(Buffer.from(account.id, 'utf8')),
        challenge: new Uint8Array(random.bytes(32)),
        attestationType: 'none',
        excludeCredentials: existing.map((c) => ({
          id: c.credential_id,
          transports: JSON.parse(c.transports) as string[],
        })),
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      });
      await mfaRepo.insertChallenge({
        id: ids('webauthnChallenge'),
        session_id: session.id,
        purpose: 'registration',
        challenge: options.challenge,
        expires_at: new Date(clock.now().getTime() + CHALLENGE_TTL_MS).toISOString(),
      });
      return options as unknown as Record<string, unknown>;
    },

    async verifyRegistration(
      session: SessionsTable,
      credential: RegistrationResponseJSON,
      name: string,
      requestId?: string,
    ) {
      const rp = relyingParty();
      const expectedChallenge = await mfaRepo.takeChallenge(
        session.id,
        'registration',
        clock.now().toISOString(),
      );
      if (!expectedChallenge) throw mfaInvalid('The registration expired; start again');
      const verified = await verifyRegistrationResponse({
        response: credential,
        expectedChallenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.rpID,
        requireUserVerification: false,
      }).catch(() => undefined);
      if (!verified?.verified) {
        await auditEvent(session, 'mfa.passkey-registered', 'failure', requestId);
        throw mfaInvalid('The passkey could not be verified');
      }
      const info = verified.registrationInfo.credential;
      const now = clock.now().toISOString();
      const id = ids('webauthnCredential');
      // Someone whose only factor is a passkey needs a way back in when the device is lost, as an
      // authenticator-app user has: recovery codes with the first factor, shown once.
      const recoveryCodes = await db.transaction().execute(async (trx) => {
        const fresh =
          (await mfaRepo.findMethods(session.user_id, trx)).recoveryCodes === 0
            ? newRecoveryCodes(session.user_id)
            : undefined;
        if (fresh) await mfaRepo.replaceRecoveryCodes(session.user_id, fresh.rows, trx);
        await mfaRepo.insertWebauthn(
          {
            id,
            user_id: session.user_id,
            credential_id: info.id,
            public_key: Buffer.from(info.publicKey).toString('base64url'),
            counter: info.counter,
            transports: JSON.stringify(info.transports ?? credential.response.transports ?? []),
            name,
            created_at: now,
            last_used_at: null,
          },
          trx,
        );
        await auditWriter.append(
          {
            organizationId: session.organization_id,
            actor: { type: 'user', id: session.user_id },
            action: 'mfa.passkey-registered',
            target: { type: 'webauthn-credential', id },
            outcome: 'success',
            details: { recoveryCodesIssued: fresh !== undefined },
            ...(requestId === undefined ? {} : { requestId }),
          },
          trx,
        );
        return fresh?.codes;
      });
      return {
        id,
        ...(recoveryCodes ? { recoveryCodes } : {}),
        activated: await finishStep(session, requestId, 'passkey-registered'),
      };
    },

    async authenticationOptions(session: SessionsTable) {
      const rp = relyingParty();
      const credentials = await mfaRepo.listWebauthn(session.user_id);
      if (credentials.length === 0) throw new AppError('CONFLICT', 'No passkey is registered');
      const options = await generateAuthenticationOptions({
        rpID: rp.rpID,
        challenge: new Uint8Array(random.bytes(32)),
        allowCredentials: credentials.map((c) => ({
          id: c.credential_id,
          transports: JSON.parse(c.transports) as never[],
        })),
        userVerification: 'preferred',
      });
      await mfaRepo.insertChallenge({
        id: ids('webauthnChallenge'),
        session_id: session.id,
        purpose: 'authentication',
        challenge: options.challenge,
        expires_at: new Date(clock.now().getTime() + CHALLENGE_TTL_MS).toISOString(),
      });
      return options as unknown as Record<string, unknown>;
    },

    async verifyAuthentication(
      session: SessionsTable,
      credential: AuthenticationResponseJSON,
      requestId?: string,
    ) {
      const rp = relyingParty();
      await throttled(
        session.user_id,
        async () => {
          const expectedChallenge = await mfaRepo.takeChallenge(
            session.id,
            'authentication',
            clock.now().toISOString(),
          );
          const stored = (await mfaRepo.listWebauthn(session.user_id)).find(
            (c) => c.credential_id === credential.id,
          );
          if (!expectedChallenge || !stored) return undefined;
          const verified = await verifyAuthenticationResponse({
            response: credential,
            expectedChallenge,
            expectedOrigin: rp.origin,
            expectedRPID: rp.rpID,
            credential: {
              id: stored.credential_id,
              publicKey: new Uint8Array(Buffer.from(stored.public_key, 'base64url')),
              counter: Number(stored.counter),
              transports: JSON.parse(stored.transports) as string[],
            },
            requireUserVerification: false,
          }).catch(() => undefined);
          if (!verified?.verified) return undefined;
          const moved = await mfaRepo.updateWebauthnCounter(
            stored.id,
            Number(stored.counter),
            verified.authenticationInfo.newCounter,
            clock.now().toISOString(),
          );
          // Another sign-in used the same counter value meanwhile (a cloned authenticator, or a
          // replay racing the original): only the first one counts.
          if (!moved) return undefined;
          return true;
        },
        'The passkey could not be verified',
      ).catch(async (err: unknown) => {
        if (err instanceof AppError && err.code === 'MFA_INVALID')
          await auditEvent(session, 'mfa.verify', 'failure', requestId);
        throw err;
      });
      return identityService.activateSession(session, requestId, 'passkey');
    },
  };
}
