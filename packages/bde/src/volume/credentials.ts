/** The credentials `unlock` accepts, one discriminated union. */

/**
 * How to unlock a volume.
 *
 * - `recovery-password`: the 48 digits (any common spelling); `keyId` (full GUID or the 8-digit
 *   prefix from the preboot screen) picks the protector to try first.
 * - `password`: the user password (any Unicode).
 * - `startup-key`: the bytes of a `.BEK` file.
 * - `clear-key`: no secret; works when protection is suspended.
 * - `certificate`: an RSA private key for a public-key (smart card / DRA) protector: a PKCS#12
 *   (.pfx/.p12) file, recognised by its shape, with `passphrase` as its password (empty when
 *   omitted); or PEM or DER (PKCS#8 or PKCS#1), optionally encrypted with `passphrase`.
 * - `vmk` / `fvek`: raw keys from escrow or a previous unlock.
 */
export type Credential =
  | { kind: 'recovery-password'; recoveryPassword: string; keyId?: string }
  | { kind: 'password'; password: string }
  | { kind: 'startup-key'; bek: Uint8Array }
  | { kind: 'clear-key' }
  | { kind: 'certificate'; privateKey: string | Uint8Array; passphrase?: string }
  | { kind: 'vmk'; vmk: Uint8Array }
  | { kind: 'fvek'; fvek: Uint8Array };

export type CredentialKind = Credential['kind'];
