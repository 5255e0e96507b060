/**
 * Single sign-on: OpenID Connect providers (discovery, authorization code with PKCE, state and
 * nonce, a browser-binding cookie against login CSRF) and LDAP / Active Directory directories (bind
 * as the user), both configured per organization with their secrets envelope-encrypted, both
 * provisioning users just in time and handing their groups to access (roles) on every sign-in.
 */
import * as oidc from 'openid-client';
import type { Db } from '../../db/database.js';
import type { LdapDirectoriesTable, OidcProvidersTable } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import type { IdentityConfig } from '../../lib/config.js';
import type { Envelope, SecretBinding } from '../../lib/envelope.js';
import { AppError, isAppError } from '../../lib/errors.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { RandomSource } from '../../lib/random.js';
import { hashToken } from '../../lib/tokens.js';
import type { AuditWriter } from '../audit/audit.service.js';
import type { Actor, IdentityService, RequestContext, SignInResult } from './identity.service.js';
import { authenticateLdapUser, LdapAuthError } from './ldap-auth.js';
import type { SignInThrottle } from './sign-in-throttle.js';
import type { SsoRepo } from './sso.repo.js';

const STATE_TTL_MS = 10 * 60_000;
const DISCOVERY_TTL_MS = 60 * 60_000;
export const OIDC_BINDING_COOKIE = 'bdv_oidc';

export interface OidcProviderInput {
  displayName: string;
  issuer: string;
  clientId: string;
  clientSecret?: string | undefined;
  scopes: string[];
  groupsClaim: string;
  usernameClaim: string;
  allowInsecureIssuer: boolean;
  enabled: boolean;
}

export interface LdapDirectoryInput {
  displayName: string;
  url: string;
  caCertificate?: string | undefined;
  baseDn: string;
  bindDn?: string | undefined;
  bindPassword?: string | undefined;
  upnSuffix?: string | undefined;
  enabled: boolean;
}

export type SsoService = ReturnType<typeof createSsoService>;

const b64url = (bytes: Buffer) => bytes.toString('base64url');

/**
 * The account part of a directory sign-in name, for the lockout key: `EXAMPLE\alice`,
 * `alice@example.test` and `alice` are one account to AD, so they must share one failure count
 * (otherwise each spelling gets its own allowance of guesses).
 */
export function ldapAccountName(username: string): string {
  const trimmed = username.trim().toLowerCase();
  const afterDomain = trimmed.slice(trimmed.lastIndexOf('\\') + 1);
  const at = afterDomain.lastIndexOf('@');
  return at > 0 ? afterDomain.slice(0, at) : afterDomain;
}

/** Claim values that name groups: an array of strings, or one string. */
function groupsFrom(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value))
    return value.filter((v): v is string => typeof v === 'string' && v.length <= 512).slice(0, 1000);
  return [];
}

export function createSsoService(deps: {
  db: Db;
  clock: Clock;
  random: RandomSource;
  ids: IdGenerator;
  envelope: Envelope;
  auditWriter: AuditWriter;
  ssoRepo: SsoRepo;
  identityService: Pick<IdentityService, 'provisionExternalUser' | 'startSession' | 'auditSignInFailure'>;
  throttle: SignInThrottle;
  identity: IdentityConfig;
  /** The directory sign-in; injected so another transport or a stub directory can stand in. */
  authenticateLdap?: typeof authenticateLdapUser;
}) {
  const { db, clock, random, ids, envelope, auditWriter, ssoRepo, identityService, throttle } = deps;
  const authenticateLdap = deps.authenticateLdap ?? authenticateLdapUser;
  const discovered = new Map<string, { at: number; config: oidc.Configuration }>();

  const secretBinding = (organizationId: string, recordId: string, purpose: SecretBinding['purpose']) => ({
    organizationId,
    recordId,
    purpose,
  });

  const publicUrl = () => {
    if (!deps.identity.publicUrl) {
      throw new AppError('NOT_READY', 'SSO needs the public URL to be configured (BDEVAULT_PUBLIC_URL)');
    }
    return deps.identity.publicUrl;
  };
  const redirectUri = (slug: string) =>
    deps.identity.publicUrl ? `${deps.identity.publicUrl}/api/auth/oidc/${slug}/callback` : null;

  function describeOidc(row: OidcProvidersTable) {
    return {
      id: row.id,
      slug: row.slug,
      displayName: row.display_name,
      issuer: row.issuer,
      clientId: row.client_id,
      hasClientSecret: row.client_secret_ciphertext !== null,
      scopes: row.scopes.split(' '),
      groupsClaim: row.groups_claim,
      usernameClaim: row.username_claim,
      allowInsecureIssuer: row.allow_insecure_issuer === 1,
      enabled: row.enabled === 1,
      redirectUri: redirectUri(row.slug),
      updatedAt: row.updated_at,
    };
  }

  function describeLdap(row: LdapDirectoriesTable) {
    return {
      id: row.id,
      slug: row.slug,
      displayName: row.display_name,
      url: row.url,
      hasCaCertificate: row.ca_certificate !== null,
      baseDn: row.base_dn,
      bindDn: row.bind_dn,
      hasBindPassword: row.bind_password_ciphertext !== null,
      upnSuffix: row.upn_suffix,
      enabled: row.enabled === 1,
      updatedAt: row.updated_at,
    };
  }

  const auditConfig =
    (organizationId: string, actor: Actor, action: string, id: string, requestId?: string) =>
    async (trx: Parameters<AuditWriter['append']>[1]) => {
      await auditWriter.append(
        {
          organizationId,
          actor,
          action,
          target: { type: 'identity-provider', id },
          outcome: 'success',
          ...(requestId === undefined ? {} : { requestId }),
        },
        trx,
      );
    };

  /** Another organization's provider is indistinguishable from none. */
  function own<T extends { organization_id: string }>(row: T | undefined, organizationId: string): T {
    if (!row || row.organization_id !== organizationId) throw new AppError('NOT_FOUND', 'No such provider');
    return row;
  }

  async function configurationFor(provider: OidcProvidersTable): Promise<oidc.Configuration> {
    const key = `${provider.id}:${provider.updated_at}`;
    const cached = discovered.get(key);
    if (cached && clock.now().getTime() - cached.at < DISCOVERY_TTL_MS) return cached.config;
    const secret =
      provider.client_secret_ciphertext && provider.client_secret_wrapped_key && provider.client_secret_kek_id
        ? envelope.open(secretBinding(provider.organization_id, provider.id, 'oidc-client-secret'), {
            ciphertext: provider.client_secret_ciphertext,
            wrappedKey: provider.client_secret_wrapped_key,
            kekId: provider.client_secret_kek_id,
          })
        : undefined;
    try {
      const config = await oidc.discovery(
        new URL(provider.issuer),
        provider.client_id,
        undefined,
        secret === undefined ? oidc.None() : oidc.ClientSecretBasic(secret),
        {
          timeout: 10,
          // Per-provider, administrator-set: lets a lab or loopback IdP speak http.
          ...(provider.allow_insecure_issuer === 1 ? { execute: [oidc.allowInsecureRequests] } : {}),
        },
      );
      for (const [k, v] of discovered) if (k.startsWith(`${provider.id}:`) && v) discovered.delete(k);
      discovered.set(key, { at: clock.now().getTime(), config });
      return config;
    } catch (cause) {
      throw new AppError('NOT_READY', 'The identity provider could not be reached', { cause });
    }
  }

  return {
    /** Names and kinds only: the sign-in page is public, so no issuer, URL or client id. */
    async signInChoices() {
      return { providers: await ssoRepo.listSignInChoices() };
    },

    async listProviders(organizationId: string) {
      return {
        oidc: (await ssoRepo.listOidc(organizationId)).map(describeOidc),
        ldap: (await ssoRepo.listLdap(organizationId)).map(describeLdap),
      };
    },

    async putOidcProvider(
      organizationId: string,
      slug: string,
      input: OidcProviderInput,
      actor: Actor,
      requestId?: string,
    ) {
      const existing = await ssoRepo.findOidcBySlug(slug);
      if (existing && existing.organization_id !== organizationId) {
        throw new AppError('CONFLICT', 'That provider name is taken; choose another');
      }
      const now = clock.now().toISOString();
      const id = existing?.id ?? ids('oidcProvider');
      const sealed =
        input.clientSecret === undefined
          ? undefined
          : envelope.seal(secretBinding(organizationId, id, 'oidc-client-secret'), input.clientSecret);
      const row: OidcProvidersTable = {
        id,
        organization_id: organizationId,
        slug,
        display_name: input.displayName,
        issuer: input.issuer,
        client_id: input.clientId,
        client_secret_ciphertext: sealed?.ciphertext ?? existing?.client_secret_ciphertext ?? null,
        client_secret_wrapped_key: sealed?.wrappedKey ?? existing?.client_secret_wrapped_key ?? null,
        client_secret_kek_id: sealed?.kekId ?? existing?.client_secret_kek_id ?? null,
        scopes: [...new Set(['openid', ...input.scopes])].join(' '),
        groups_claim: input.groupsClaim,
        username_claim: input.usernameClaim,
        allow_insecure_issuer: input.allowInsecureIssuer ? 1 : 0,
        enabled: input.enabled ? 1 : 0,
        created_at: existing?.created_at ?? now,
        updated_at: now,
      };
      await db.transaction().execute(async (trx) => {
        if (existing) await ssoRepo.updateOidc(row, trx);
        else await ssoRepo.insertOidc(row, trx);
        await auditConfig(organizationId, actor, 'identity-provider.saved', id, requestId)(trx);
      });
      return describeOidc(row);
    },

    async deleteOidcProvider(organizationId: string, slug: string, actor: Actor, requestId?: string) {
      const row = own(await ssoRepo.findOidcBySlug(slug), organizationId);
      await db.transaction().execute(async (trx) => {
        await ssoRepo.deleteOidc(row.id, trx);
        await auditConfig(organizationId, actor, 'identity-provider.deleted', row.id, requestId)(trx);
      });
    },

    async putLdapDirectory(
      organizationId: string,
      slug: string,
      input: LdapDirectoryInput,
      actor: Actor,
      requestId?: string,
    ) {
      const existing = await ssoRepo.findLdapBySlug(slug);
      if (existing && existing.organization_id !== organizationId) {
        throw new AppError('CONFLICT', 'That directory name is taken; choose another');
      }
      const now = clock.now().toISOString();
      const id = existing?.id ?? ids('ldapDirectory');
      const sealed =
        input.bindPassword === undefined
          ? undefined
          : envelope.seal(secretBinding(organizationId, id, 'ldap-bind-password'), input.bindPassword);
      const row: LdapDirectoriesTable = {
        id,
        organization_id: organizationId,
        slug,
        display_name: input.displayName,
        url: input.url,
        ca_certificate: input.caCertificate ?? null,
        base_dn: input.baseDn,
        bind_dn: input.bindDn ?? null,
        bind_password_ciphertext:
          sealed?.ciphertext ?? (input.bindDn ? existing?.bind_password_ciphertext : null) ?? null,
        bind_password_wrapped_key:
          sealed?.wrappedKey ?? (input.bindDn ? existing?.bind_password_wrapped_key : null) ?? null,
        bind_password_kek_id: sealed?.kekId ?? (input.bindDn ? existing?.bind_password_kek_id : null) ?? null,
        upn_suffix: input.upnSuffix ?? null,
        enabled: input.enabled ? 1 : 0,
        created_at: existing?.created_at ?? now,
        updated_at: now,
      };
      await db.transaction().execute(async (trx) => {
        if (existing) await ssoRepo.updateLdap(row, trx);
        else await ssoRepo.insertLdap(row, trx);
        await auditConfig(organizationId, actor, 'ldap-directory.saved', id, requestId)(trx);
      });
      return describeLdap(row);
    },

    async deleteLdapDirectory(organizationId: string, slug: string, actor: Actor, requestId?: string) {
      const row = own(await ssoRepo.findLdapBySlug(slug), organizationId);
      await db.transaction().execute(async (trx) => {
        await ssoRepo.deleteLdap(row.id, trx);
        await auditConfig(organizationId, actor, 'ldap-directory.deleted', row.id, requestId)(trx);
      });
    },

    /** Starts an SSO sign-in: the authorization URL and the browser-binding value for a cookie. */
    async startOidc(slug: string) {
      const base = publicUrl();
      const provider = await ssoRepo.findOidcBySlug(slug);
      if (!provider || provider.enabled !== 1) throw new AppError('NOT_FOUND', 'No such sign-in provider');
      const config = await configurationFor(provider);
      const state = b64url(random.bytes(32));
      const nonce = b64url(random.bytes(32));
      const codeVerifier = b64url(random.bytes(32));
      const binding = b64url(random.bytes(32));
      const now = clock.now();
      await ssoRepo.pruneStates(now.toISOString());
      await ssoRepo.insertState({
        state_hash: hashToken(state),
        provider_id: provider.id,
        binding_hash: hashToken(binding),
        nonce,
        code_verifier: codeVerifier,
        expires_at: new Date(now.getTime() + STATE_TTL_MS).toISOString(),
      });
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: `${base}/api/auth/oidc/${slug}/callback`,
        scope: provider.scopes,
        response_type: 'code',
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
      return { url: url.href, binding };
    },

    /**
     * Finishes an SSO sign-in from the callback: the state must be one we issued to this browser,
     * the code is exchanged with the PKCE verifier, and the ID token's nonce must match.
     */
    async finishOidc(
      slug: string,
      callbackPathAndQuery: string,
      state: string | undefined,
      binding: string | undefined,
      context: RequestContext,
    ): Promise<SignInResult> {
      const base = publicUrl();
      const provider = await ssoRepo.findOidcBySlug(slug);
      // Only the browser holding the binding cookie can use up a state: a leaked callback URL
      // replayed elsewhere must not spoil the sign-in of the person it belongs to.
      const started =
        state && binding ? await ssoRepo.takeState(hashToken(state), hashToken(binding)) : undefined;
      // Awaited: a failed audit write must surface here, not as an unhandled rejection later.
      const refused = async (reason: string) => {
        await identityService.auditSignInFailure(undefined, reason, 'oidc', context.requestId);
        return new AppError('INVALID_CREDENTIALS', 'The single sign-on did not complete; start again');
      };
      if (
        !provider ||
        provider.enabled !== 1 ||
        !started ||
        started.provider_id !== provider.id ||
        started.expires_at <= clock.now().toISOString()
      ) {
        throw await refused('oidc-state-mismatch');
      }
      const config = await configurationFor(provider);
      let claims: Record<string, unknown>;
      let accessToken: string;
      try {
        const tokens = await oidc.authorizationCodeGrant(config, new URL(`${base}${callbackPathAndQuery}`), {
          pkceCodeVerifier: started.code_verifier,
          expectedState: state,
          expectedNonce: started.nonce,
          idTokenExpected: true,
        });
        claims = { ...(tokens.claims() ?? {}) };
        accessToken = tokens.access_token;
      } catch (cause) {
        // The provider's error text can echo request values: keep it out of the response.
        throw Object.assign(await refused('oidc-token-exchange-failed'), { cause });
      }
      const subject = typeof claims.sub === 'string' ? claims.sub : undefined;
      if (!subject) throw await refused('oidc-no-subject');
      if (!(provider.groups_claim in claims) || !(provider.username_claim in claims)) {
        // Many providers put groups and names only in userinfo.
        try {
          const info = await oidc.fetchUserInfo(config, accessToken, subject);
          claims = { ...info, ...claims };
        } catch {
          // Not every provider has a userinfo endpoint; go on with the ID token's claims.
        }
      }
      const nameClaim = claims[provider.username_claim];
      const username =
        (typeof nameClaim === 'string' && nameClaim) ||
        (typeof claims.email === 'string' && claims.email) ||
        `${subject}@${provider.slug}`;
      const displayName = typeof claims.name === 'string' ? claims.name : username;
      const user = await identityService.provisionExternalUser({
        organizationId: provider.organization_id,
        providerType: 'oidc',
        providerId: provider.id,
        subject,
        username: username.slice(0, 100),
        displayName: displayName.slice(0, 200),
        groups: groupsFrom(claims[provider.groups_claim]),
        requestId: context.requestId,
      });
      return identityService.startSession({
        user,
        organizationId: provider.organization_id,
        method: 'oidc',
        requestId: context.requestId,
      });
    },

    /** Signs in against an LDAP / AD directory, with the same lockout as local accounts. */
    async signInLdap(
      slug: string,
      username: string,
      password: string,
      context: RequestContext,
    ): Promise<SignInResult> {
      const directory = await ssoRepo.findLdapBySlug(slug);
      if (!directory || directory.enabled !== 1) throw new AppError('NOT_FOUND', 'No such directory');
      const keys = throttle.keysFor(`ldap:${directory.id}`, ldapAccountName(username), context.address);
      await throttle.assertOpen(keys);
      const bindPassword =
        directory.bind_password_ciphertext &&
        directory.bind_password_wrapped_key &&
        directory.bind_password_kek_id
          ? envelope.open(secretBinding(directory.organization_id, directory.id, 'ldap-bind-password'), {
              ciphertext: directory.bind_password_ciphertext,
              wrappedKey: directory.bind_password_wrapped_key,
              kekId: directory.bind_password_kek_id,
            })
          : undefined;
      let found;
      try {
        found = await authenticateLdap({
          url: directory.url,
          ...(directory.ca_certificate ? { tlsCa: directory.ca_certificate } : {}),
          baseDn: directory.base_dn,
          ...(directory.bind_dn ? { bindDn: directory.bind_dn, bindPassword: bindPassword ?? '' } : {}),
          ...(directory.upn_suffix ? { upnSuffix: directory.upn_suffix } : {}),
          username,
          password,
        });
      } catch (err) {
        if (err instanceof LdapAuthError && isAppError(err, 'INVALID_CREDENTIALS')) {
          await throttle.recordFailure(keys);
          await identityService.auditSignInFailure(undefined, err.reason, 'ldap', context.requestId);
          throw new AppError('INVALID_CREDENTIALS', 'Wrong username or password');
        }
        throw err;
      }
      await throttle.recordSuccess(keys);
      const name = (found.userPrincipalName ?? found.username).toLowerCase();
      const user = await identityService.provisionExternalUser({
        organizationId: directory.organization_id,
        providerType: 'ldap',
        providerId: directory.id,
        subject: name,
        username: name.slice(0, 100),
        displayName: found.displayName.slice(0, 200),
        groups: found.groups,
        requestId: context.requestId,
      });
      return identityService.startSession({
        user,
        organizationId: directory.organization_id,
        method: 'ldap',
        requestId: context.requestId,
      });
    },
  };
}
