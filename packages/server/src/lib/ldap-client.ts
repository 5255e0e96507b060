/** Opens an LDAP connection to a directory (Active Directory) that is always TLS-protected before any bind. */
import type { ConnectionOptions } from 'node:tls';
import { Client, type ClientOptions } from 'ldapts';

/** How to reach and trust a directory server. */
export interface LdapConnectionOptions {
  /** `ldaps://host:636` (TLS from the first byte) or `ldap://host:389` (upgraded with StartTLS). */
  url: string;
  /** PEM CA certificate(s) that issued the server certificate; the system store is used when absent. */
  tlsCa?: string | Buffer | Array<string | Buffer>;
  /** Extra TLS settings (servername, client certificate); certificate verification cannot be turned off. */
  tlsOptions?: Omit<ConnectionOptions, 'rejectUnauthorized'>;
  /** Per-operation timeout in milliseconds (default 30 s), so a stalled directory cannot hang a sync. */
  timeoutMs?: number;
  /** Connection timeout in milliseconds (default 10 s). */
  connectTimeoutMs?: number;
  /** Creates the ldapts client; injected so callers can tunnel or observe the connection. */
  createClient?: (options: ClientOptions) => Client;
}

/** Builds the TLS options shared by LDAPS and StartTLS: verification always on. */
export function ldapTlsOptions(options: LdapConnectionOptions): ConnectionOptions {
  const tls: ConnectionOptions = { ...options.tlsOptions, rejectUnauthorized: true };
  if (options.tlsCa !== undefined) tls.ca = options.tlsCa;
  return tls;
}

/**
 * Connects without binding. An `ldap://` URL is upgraded with StartTLS straight away: credentials
 * (a service account's or a signing-in user's) must never cross the network in clear.
 */
export async function openLdapConnection(options: LdapConnectionOptions): Promise<Client> {
  const url = new URL(options.url);
  if (url.protocol !== 'ldaps:' && url.protocol !== 'ldap:') {
    throw new TypeError('Directory URL must start with ldaps:// or ldap://');
  }
  const tls = ldapTlsOptions(options);
  const clientOptions: ClientOptions = {
    url: `${url.protocol}//${url.host}`,
    timeout: options.timeoutMs ?? 30_000,
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    // Only for ldaps: given with an ldap:// URL, ldapts opens TLS straight away and StartTLS then fails.
    ...(url.protocol === 'ldaps:' ? { tlsOptions: tls } : {}),
    // AD DNs contain characters (such as `{`) that ldapts' strict DN parser would reject.
    strictDN: false,
  };
  const client = (options.createClient ?? ((o: ClientOptions) => new Client(o)))(clientOptions);
  if (url.protocol === 'ldap:') {
    try {
      await client.startTLS(tls);
    } catch (err) {
      await closeLdapConnection(client);
      throw err;
    }
  }
  return client;
}

/** Unbinds and closes, ignoring errors: the connection is being discarded anyway. */
export async function closeLdapConnection(client: Client): Promise<void> {
  try {
    await client.unbind();
  } catch {
    // already closed or never connected
  }
}

/** True when an ldapts error is LDAP result code 49 (invalidCredentials). */
export function isInvalidCredentials(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 49;
}

/** The first value of an attribute as text, matching the attribute name case-insensitively. */
export function entryText(entry: Record<string, unknown>, name: string): string | undefined {
  const value = entryValue(entry, name);
  const first = Array.isArray(value) ? value[0] : value;
  if (first === undefined) return undefined;
  return Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
}

/** Every value of an attribute as text. */
export function entryTexts(entry: Record<string, unknown>, name: string): string[] {
  const value = entryValue(entry, name);
  if (value === undefined) return [];
  const values: unknown[] = Array.isArray(value) ? value : [value];
  return values.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : String(v)));
}

/** The first value of an attribute as bytes (the attribute must be requested as a buffer attribute). */
export function entryBuffer(entry: Record<string, unknown>, name: string): Buffer | undefined {
  const value = entryValue(entry, name);
  const first = Array.isArray(value) ? value[0] : value;
  return Buffer.isBuffer(first) ? first : undefined;
}

function entryValue(entry: Record<string, unknown>, name: string): unknown {
  if (name in entry) return nonEmpty(entry[name]);
  const lower = name.toLowerCase();
  for (const key of Object.keys(entry)) {
    if (key.toLowerCase() === lower) return nonEmpty(entry[key]);
  }
  return undefined;
}

// ldapts returns [] for an attribute that was requested but is absent or unreadable.
function nonEmpty(value: unknown): unknown {
  if (Array.isArray(value) && value.length === 0) return undefined;
  if (value === '') return undefined;
  return value;
}
