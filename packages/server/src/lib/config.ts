/** Server configuration: read from the environment and CLI flags, validated with Zod at start. */
import { isIP } from 'node:net';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import type { KekSource } from './kek.js';

export type DatabaseTarget =
  | { dialect: 'sqlite'; path: string }
  | {
      dialect: 'postgres';
      url: string;
      /** Prepare each statement once per connection (default); off behind statement-unaware poolers. */
      preparedStatements?: boolean;
    };

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  database: DatabaseTarget;
  kek: KekSource;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Request bodies above this are refused with PAYLOAD_TOO_LARGE. */
  bodyLimitBytes: number;
  sessionTtlMinutes: number;
  /** Name of the organization created on first start. */
  initialOrganizationName: string;
  /** PEM certificate chain and key files: when set, HTTPS with HTTP/2 and HTTP/1.1 on one port. */
  tls: { certFile: string; keyFile: string } | undefined;
  /**
   * Reverse proxies (addresses, CIDRs, or loopback / linklocal / uniquelocal) whose X-Forwarded-For
   * and X-Forwarded-Proto are believed; empty believes none, so clients cannot pick their address.
   */
  trustProxy: readonly string[];
  identity: IdentityConfig;
  /** Directory of the built portal; unset: packages/web/dist next to the server package. */
  webRoot?: string | undefined;
}

/** Sign-in, session, lockout, SSO and WebAuthn settings. */
export interface IdentityConfig {
  /** A session unused for this long ends (the absolute limit is `sessionTtlMinutes`). */
  sessionIdleMinutes: number;
  /**
   * The URL people open the portal at (`https://vault.example.com`): the OIDC redirect URIs and the
   * WebAuthn origin derive from it. SSO and passkeys answer NOT_READY until it is set.
   */
  publicUrl: string | undefined;
  /** WebAuthn relying-party id (default: the host name of `publicUrl`). */
  webauthnRpId: string | undefined;
  webauthnRpName: string;
  /** Failed sign-ins per account before the growing delay starts. */
  lockoutThreshold: number;
  /** Failed sign-ins per client address before the growing delay starts (higher: NAT, offices). */
  lockoutAddressThreshold: number;
  /** First delay; it doubles with each further failure up to `lockoutMaxSeconds`. */
  lockoutBaseSeconds: number;
  lockoutMaxSeconds: number;
}

/** Values as given (flags win over environment); every field optional, strings as typed. */
export interface ConfigInput {
  host?: string | undefined;
  port?: string | number | undefined;
  dataDir?: string | undefined;
  databaseUrl?: string | undefined;
  databasePreparedStatements?: string | boolean | undefined;
  kekBase64?: string | undefined;
  kekFile?: string | undefined;
  logLevel?: string | undefined;
  sessionTtlMinutes?: string | number | undefined;
  initialOrganizationName?: string | undefined;
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  trustProxy?: string | undefined;
  sessionIdleMinutes?: string | number | undefined;
  publicUrl?: string | undefined;
  webauthnRpId?: string | undefined;
  webauthnRpName?: string | undefined;
  lockoutThreshold?: string | number | undefined;
  lockoutAddressThreshold?: string | number | undefined;
  lockoutBaseSeconds?: string | number | undefined;
  lockoutMaxSeconds?: string | number | undefined;
  webRoot?: string | undefined;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const configSchema = z.strictObject({
  host: z.string().min(1).max(255).default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(8080),
  dataDir: z.string().min(1).max(4096).default('./data'),
  databaseUrl: z.string().min(1).max(4096).optional(),
  databasePreparedStatements: z.union([z.boolean(), z.stringbool()]).default(true),
  kekBase64: z.string().min(1).max(1024).optional(),
  kekFile: z.string().min(1).max(4096).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  sessionTtlMinutes: z.coerce
    .number()
    .int()
    .min(5)
    .max(7 * 24 * 60)
    .default(12 * 60),
  initialOrganizationName: z.string().min(1).max(200).default('Default organization'),
  tlsCert: z.string().min(1).max(4096).optional(),
  tlsKey: z.string().min(1).max(4096).optional(),
  trustProxy: z.string().max(4096).optional(),
  sessionIdleMinutes: z.coerce
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 60)
    .default(30),
  publicUrl: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .transform((u) => u.replace(/\/+$/, ''))
    .optional(),
  webauthnRpId: z
    .string()
    .max(253)
    .regex(/^[a-z0-9.-]+$/i, 'must be a host name')
    .optional(),
  webauthnRpName: z.string().min(1).max(100).default('bdevault'),
  lockoutThreshold: z.coerce.number().int().min(1).max(100).default(5),
  lockoutAddressThreshold: z.coerce.number().int().min(1).max(10_000).default(20),
  lockoutBaseSeconds: z.coerce.number().int().min(1).max(3600).default(30),
  lockoutMaxSeconds: z.coerce
    .number()
    .int()
    .min(1)
    .max(7 * 24 * 3600)
    .default(3600),
  webRoot: z.string().min(1).max(4096).optional(),
});

export function configInputFromEnv(env: NodeJS.ProcessEnv): ConfigInput {
  return {
    host: env.BDEVAULT_HOST,
    port: env.BDEVAULT_PORT,
    dataDir: env.BDEVAULT_DATA_DIR,
    databaseUrl: env.DATABASE_URL,
    databasePreparedStatements: env.BDEVAULT_DATABASE_PREPARED_STATEMENTS,
    kekBase64: env.BDEVAULT_KEK,
    kekFile: env.BDEVAULT_KEK_FILE,
    logLevel: env.BDEVAULT_LOG_LEVEL,
    sessionTtlMinutes: env.BDEVAULT_SESSION_TTL_MINUTES,
    initialOrganizationName: env.BDEVAULT_ORG_NAME,
    tlsCert: env.BDEVAULT_TLS_CERT,
    tlsKey: env.BDEVAULT_TLS_KEY,
    trustProxy: env.BDEVAULT_TRUST_PROXY,
    sessionIdleMinutes: env.BDEVAULT_SESSION_IDLE_MINUTES,
    publicUrl: env.BDEVAULT_PUBLIC_URL,
    webauthnRpId: env.BDEVAULT_WEBAUTHN_RP_ID,
    webauthnRpName: env.BDEVAULT_WEBAUTHN_RP_NAME,
    lockoutThreshold: env.BDEVAULT_LOCKOUT_THRESHOLD,
    lockoutAddressThreshold: env.BDEVAULT_LOCKOUT_ADDRESS_THRESHOLD,
    lockoutBaseSeconds: env.BDEVAULT_LOCKOUT_BASE_SECONDS,
    lockoutMaxSeconds: env.BDEVAULT_LOCKOUT_MAX_SECONDS,
    webRoot: env.BDEVAULT_WEB_ROOT,
  };
}

function databaseTarget(
  url: string | undefined,
  dataDir: string,
  preparedStatements: boolean,
): DatabaseTarget {
  if (url === undefined) return { dialect: 'sqlite', path: resolve(dataDir, 'bdevault.sqlite') };
  if (/^postgres(ql)?:\/\//i.test(url)) return { dialect: 'postgres', url, preparedStatements };
  const path = url.replace(/^sqlite:(\/\/)?/i, '').replace(/^file:/i, '');
  if (path.length === 0) throw new ConfigError('DATABASE_URL: a sqlite URL needs a file path');
  return { dialect: 'sqlite', path: isAbsolute(path) ? path : resolve(path) };
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** Trusted-proxy entries: an address, a CIDR, or a proxy-addr range name; never "everyone". */
function trustedProxies(list: string | undefined): string[] {
  const entries = (list ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e.length > 0);
  for (const entry of entries) {
    const [address = '', prefix, extra] = entry.split('/');
    const family = isIP(address);
    const bits = family === 4 ? 32 : 128;
    const prefixOk = prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= bits);
    if (!PROXY_NAMES.has(entry) && (family === 0 || !prefixOk || extra !== undefined)) {
      throw new ConfigError(
        `Invalid configuration: BDEVAULT_TRUST_PROXY entry "${entry.slice(0, 60)}" is not an address, CIDR, loopback, linklocal or uniquelocal`,
      );
    }
  }
  return entries;
}

/** Validates the input and fails fast with one message naming every bad setting. */
export function loadConfig(input: ConfigInput): Config {
  const defined = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = configSchema.safeParse(defined);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || 'config'}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  if (c.kekBase64 !== undefined && c.kekFile !== undefined) {
    throw new ConfigError('Invalid configuration: set BDEVAULT_KEK or BDEVAULT_KEK_FILE, not both');
  }
  if ((c.tlsCert === undefined) !== (c.tlsKey === undefined)) {
    throw new ConfigError(
      'Invalid configuration: set both BDEVAULT_TLS_CERT and BDEVAULT_TLS_KEY, or neither',
    );
  }
  const dataDir = resolve(c.dataDir);
  const kek: KekSource =
    c.kekBase64 !== undefined
      ? { kind: 'env', base64: c.kekBase64 }
      : { kind: 'file', path: resolve(c.kekFile ?? resolve(dataDir, 'kek.key')) };
  if (kek.kind === 'env' && Buffer.from(kek.base64, 'base64').length !== 32) {
    throw new ConfigError('Invalid configuration: BDEVAULT_KEK must be base64 of exactly 32 bytes');
  }
  return Object.freeze({
    host: c.host,
    port: c.port,
    dataDir,
    database: databaseTarget(c.databaseUrl, dataDir, c.databasePreparedStatements),
    kek,
    logLevel: c.logLevel,
    bodyLimitBytes: 1024 * 1024,
    sessionTtlMinutes: c.sessionTtlMinutes,
    initialOrganizationName: c.initialOrganizationName,
    tls:
      c.tlsCert === undefined || c.tlsKey === undefined
        ? undefined
        : Object.freeze({ certFile: resolve(c.tlsCert), keyFile: resolve(c.tlsKey) }),
    trustProxy: Object.freeze(trustedProxies(c.trustProxy)),
    webRoot: c.webRoot === undefined ? undefined : resolve(c.webRoot),
    identity: Object.freeze({
      sessionIdleMinutes: c.sessionIdleMinutes,
      publicUrl: c.publicUrl,
      webauthnRpId: c.webauthnRpId ?? (c.publicUrl === undefined ? undefined : new URL(c.publicUrl).hostname),
      webauthnRpName: c.webauthnRpName,
      lockoutThreshold: c.lockoutThreshold,
      lockoutAddressThreshold: c.lockoutAddressThreshold,
      lockoutBaseSeconds: c.lockoutBaseSeconds,
      lockoutMaxSeconds: Math.max(c.lockoutMaxSeconds, c.lockoutBaseSeconds),
    }),
  });
}
