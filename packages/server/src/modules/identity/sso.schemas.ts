/** Request and response schemas of SSO provider and LDAP directory configuration and sign-in. */
import { z } from 'zod';
import { boundedString, timestamp } from '../../lib/schemas.js';
import { MAX_PASSWORD_LENGTH } from './password-policy.js';

export const slugParams = z.strictObject({
  provider: z
    .string()
    .min(2)
    .max(64)
    .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lower-case letters, digits and dashes'),
});

const claimName = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[\w.:/-]+$/, 'must be a claim name');

export const oidcProviderBody = z.strictObject({
  displayName: boundedString(100),
  issuer: z.url({ protocol: /^https?$/ }).max(2048),
  clientId: boundedString(512),
  /** Write-only; omit on update to keep the stored one; absent for a public client (PKCE only). */
  clientSecret: boundedString(2048).optional(),
  scopes: z
    .array(
      z
        .string()
        .min(1)
        .max(100)
        .regex(/^[\x21-\x7e]+$/),
    )
    .min(1)
    .max(20)
    .default(['openid', 'profile', 'email']),
  groupsClaim: claimName.default('groups'),
  usernameClaim: claimName.default('preferred_username'),
  /** Allows an http:// issuer (a lab or loopback IdP); never for production. */
  allowInsecureIssuer: z.boolean().default(false),
  enabled: z.boolean().default(true),
});

export const oidcProviderResponse = z.object({
  id: z.string(),
  slug: z.string(),
  displayName: z.string(),
  issuer: z.string(),
  clientId: z.string(),
  hasClientSecret: z.boolean(),
  scopes: z.array(z.string()),
  groupsClaim: z.string(),
  usernameClaim: z.string(),
  allowInsecureIssuer: z.boolean(),
  enabled: z.boolean(),
  /** The redirect URI to register at the identity provider. */
  redirectUri: z.string().nullable(),
  updatedAt: timestamp,
});

export const ldapDirectoryBody = z.strictObject({
  displayName: boundedString(100),
  url: z
    .string()
    .max(2048)
    .regex(/^ldaps?:\/\/[^\s/]+\/?$/i, 'must be ldaps://host[:port] or ldap://host[:port]'),
  /** PEM CA certificate(s); the system store when absent. */
  caCertificate: z.string().max(65_536).optional(),
  baseDn: boundedString(1024),
  bindDn: boundedString(1024).optional(),
  /** Write-only; omit on update to keep the stored one. */
  bindPassword: boundedString(1024).optional(),
  upnSuffix: boundedString(253).optional(),
  enabled: z.boolean().default(true),
});

export const ldapDirectoryResponse = z.object({
  id: z.string(),
  slug: z.string(),
  displayName: z.string(),
  url: z.string(),
  hasCaCertificate: z.boolean(),
  baseDn: z.string(),
  bindDn: z.string().nullable(),
  hasBindPassword: z.boolean(),
  upnSuffix: z.string().nullable(),
  enabled: z.boolean(),
  updatedAt: timestamp,
});

export const providersResponse = z.object({
  oidc: z.array(oidcProviderResponse),
  ldap: z.array(ldapDirectoryResponse),
});

export const ldapSignInBody = z.strictObject({
  username: boundedString(256),
  password: boundedString(MAX_PASSWORD_LENGTH),
});

export const oidcCallbackQuery = z.object({
  code: z.string().max(4096).optional(),
  state: z.string().max(512).optional(),
  error: z.string().max(256).optional(),
  error_description: z.string().max(1024).optional(),
  iss: z.string().max(2048).optional(),
  session_state: z.string().max(1024).optional(),
});

export const signInChoicesResponse = z.object({
  providers: z.array(z.object({ kind: z.enum(['oidc', 'ldap']), slug: z.string(), displayName: z.string() })),
});
