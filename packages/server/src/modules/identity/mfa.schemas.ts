/** Request and response schemas of the MFA routes (TOTP, recovery codes, WebAuthn ceremonies). */
import { z } from 'zod';
import { boundedString, recordId, timestamp } from '../../lib/schemas.js';

const base64url = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[A-Za-z0-9_-]+={0,2}$/, 'must be base64url');

export const totpCodeBody = z.strictObject({ code: z.string().regex(/^\d{6}$/, 'must be 6 digits') });

export const mfaVerifyBody = z.union([
  totpCodeBody,
  z.strictObject({ recoveryCode: z.string().min(8).max(40) }),
]);

export const totpEnrollResponse = z.object({
  /** Base32 secret, shown once. */
  secret: z.string(),
  otpauthUri: z.string(),
});

export const sessionStepResponse = z.object({
  state: z.enum(['active', 'mfa-pending', 'mfa-enrollment-required']),
  expiresAt: timestamp,
  /** The session token changed: use this CSRF token from now on. */
  csrfToken: z.string(),
});

export const passkeyRegisteredResponse = sessionStepResponse.extend({
  /** With the first factor of an account that has no recovery codes: shown once. */
  recoveryCodes: z.array(z.string()).optional(),
});

export const totpConfirmResponse = sessionStepResponse.extend({
  /** Shown once; each works one time in place of a code. */
  recoveryCodes: z.array(z.string()),
});

export const mfaStatusResponse = z.object({
  totp: z.boolean(),
  recoveryCodesLeft: z.number().int(),
  passkeys: z.array(
    z.object({ id: z.string(), name: z.string(), createdAt: timestamp, lastUsedAt: timestamp.nullable() }),
  ),
});

const clientExtensionResults = z
  .record(z.string().max(64), z.unknown())
  .refine((r) => Object.keys(r).length <= 16, 'too many extension results');

/** What `PublicKeyCredential.toJSON()` gives after `navigator.credentials.create()`. */
export const registrationCredential = z.strictObject({
  id: base64url(1400),
  rawId: base64url(1400),
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults,
  response: z.strictObject({
    clientDataJSON: base64url(4096),
    attestationObject: base64url(65_536),
    authenticatorData: base64url(65_536).optional(),
    transports: z.array(z.string().max(32)).max(10).optional(),
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: base64url(4096).optional(),
  }),
});

/** What `PublicKeyCredential.toJSON()` gives after `navigator.credentials.get()`. */
export const authenticationCredential = z.strictObject({
  id: base64url(1400),
  rawId: base64url(1400),
  type: z.literal('public-key'),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults,
  response: z.strictObject({
    clientDataJSON: base64url(4096),
    authenticatorData: base64url(65_536),
    signature: base64url(4096),
    userHandle: base64url(1024).optional(),
  }),
});

export const registrationVerifyBody = z.strictObject({
  name: boundedString(100).default('Passkey'),
  credential: registrationCredential,
});

export const authenticationVerifyBody = z.strictObject({ credential: authenticationCredential });

/** The options for the browser, passed through as produced by @simplewebauthn/server. */
export const ceremonyOptionsResponse = z.record(z.string(), z.unknown());

export const passkeyParams = z.strictObject({ credentialId: recordId('webauthnCredential') });
