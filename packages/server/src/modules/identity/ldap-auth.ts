/** LDAP / Active Directory sign-in: verify a user's password by binding as them, then read their groups. */
import {
  AndFilter,
  EqualityFilter,
  ExtensibleFilter,
  OrFilter,
  type Client,
  type Entry,
  type Filter,
} from 'ldapts';
import { AppError } from '../../lib/errors.js';
import {
  closeLdapConnection,
  entryText,
  entryTexts,
  isInvalidCredentials,
  openLdapConnection,
  type LdapConnectionOptions,
} from '../../lib/ldap-client.js';

export interface LdapAuthOptions extends LdapConnectionOptions {
  /** Where users are searched (subtree), e.g. `DC=example,DC=com`. */
  baseDn: string;
  /** Service account that finds the user's DN; without it the user binds directly by UPN. */
  bindDn?: string;
  bindPassword?: string;
  /** `jdoe`, `jdoe@example.com` or `EXAMPLE\jdoe`, as typed at sign-in. */
  username: string;
  password: string;
  /** UPN suffix for a direct bind of a bare name (default: the DNS domain of `baseDn`). */
  upnSuffix?: string;
  /** Also return groups reached through nested membership (default true). */
  nestedGroups?: boolean;
}

export interface LdapUser {
  dn: string;
  /** sAMAccountName. */
  username: string;
  userPrincipalName: string | undefined;
  displayName: string;
  email: string | undefined;
  /** Every group's DN and CN (direct memberOf, plus nested ones), for mapping groups to roles. */
  groups: string[];
  groupDns: string[];
}

export type LdapAuthFailure =
  | 'invalid-credentials'
  | 'account-disabled'
  | 'account-locked'
  | 'account-expired'
  | 'password-expired'
  | 'password-must-change'
  | 'logon-restricted'
  | 'service-bind-failed'
  | 'directory-unavailable';

/**
 * A failed LDAP sign-in. Every user-side failure has the code INVALID_CREDENTIALS and one generic
 * message, so a caller cannot tell an unknown user from a wrong password; `reason` is for the audit
 * log. Directory and service-account problems are NOT_READY.
 */
export class LdapAuthError extends AppError {
  readonly reason: LdapAuthFailure;

  constructor(reason: LdapAuthFailure, options?: { cause?: unknown }) {
    const userSide = reason !== 'service-bind-failed' && reason !== 'directory-unavailable';
    super(
      userSide ? 'INVALID_CREDENTIALS' : 'NOT_READY',
      userSide ? 'Invalid username or password' : 'The directory is unavailable for sign-in',
      options,
    );
    this.name = 'LdapAuthError';
    this.reason = reason;
  }
}

// AD appends `data <hex>` to result 49 to say why a bind failed.
const AD_BIND_SUBCODES: Record<string, LdapAuthFailure> = {
  '52e': 'invalid-credentials',
  '525': 'invalid-credentials',
  '530': 'logon-restricted',
  '531': 'logon-restricted',
  '532': 'password-expired',
  '533': 'account-disabled',
  '701': 'account-expired',
  '773': 'password-must-change',
  '775': 'account-locked',
};

/** The reason behind an AD result-49 bind failure, from its diagnostic message. */
export function adBindFailureReason(err: unknown): LdapAuthFailure {
  const message = err instanceof Error ? err.message : '';
  const subcode = /\bdata ([0-9a-f]{3,8})\b/i.exec(message)?.[1]?.toLowerCase();
  return (subcode && AD_BIND_SUBCODES[subcode]) || 'invalid-credentials';
}

const USER_ATTRIBUTES = ['sAMAccountName', 'userPrincipalName', 'displayName', 'cn', 'mail', 'memberOf'];
const IN_CHAIN = '1.2.840.113556.1.4.1941'; // LDAP_MATCHING_RULE_IN_CHAIN: transitive membership

function dnsDomainOf(baseDn: string): string {
  return [...baseDn.matchAll(/(?:^|,)\s*DC=([^,]+)/gi)].map((m) => m[1]!.trim()).join('.');
}

/** The account name typed, split into what to search for and what to bind with. */
function parseUsername(raw: string): { sam?: string; upn?: string } {
  const username = raw.trim();
  const backslash = username.indexOf('\\');
  if (backslash >= 0) return { sam: username.slice(backslash + 1) };
  if (username.includes('@')) return { upn: username };
  return { sam: username };
}

function userFilter(name: { sam?: string; upn?: string }): Filter {
  const byName = name.upn
    ? new OrFilter({
        filters: [
          new EqualityFilter({ attribute: 'userPrincipalName', value: name.upn }),
          new EqualityFilter({ attribute: 'mail', value: name.upn }),
        ],
      })
    : new EqualityFilter({ attribute: 'sAMAccountName', value: name.sam ?? '' });
  // Filter objects, not string concatenation: the typed name cannot inject filter syntax.
  return new AndFilter({
    filters: [
      new EqualityFilter({ attribute: 'objectCategory', value: 'person' }),
      new EqualityFilter({ attribute: 'objectClass', value: 'user' }),
      byName,
    ],
  });
}

async function findUser(client: Client, baseDn: string, filter: Filter): Promise<Entry | undefined> {
  const { searchEntries } = await client.search(baseDn, {
    scope: 'sub',
    filter,
    attributes: USER_ATTRIBUTES,
    sizeLimit: 2,
  });
  // Zero or several matches: refuse rather than guess which account was meant.
  return searchEntries.length === 1 ? searchEntries[0] : undefined;
}

async function nestedGroupDns(client: Client, baseDn: string, userDn: string): Promise<string[]> {
  const { searchEntries } = await client.search(baseDn, {
    scope: 'sub',
    filter: new AndFilter({
      filters: [
        new EqualityFilter({ attribute: 'objectClass', value: 'group' }),
        new ExtensibleFilter({ matchType: 'member', rule: IN_CHAIN, value: userDn }),
      ],
    }),
    attributes: ['cn'],
    paged: { pageSize: 500 },
  });
  return searchEntries.map((e) => e.dn);
}

/** The value of the first RDN of a DN (`CN=Helpdesk,OU=…` → `Helpdesk`). */
export function firstRdnValue(dn: string): string {
  let value = '';
  const start = dn.indexOf('=') + 1;
  for (let i = start; i < dn.length; i++) {
    const c = dn[i]!;
    if (c === '\\' && i + 1 < dn.length) {
      const hex = /^[0-9a-fA-F]{2}/.exec(dn.slice(i + 1, i + 3));
      value += hex ? String.fromCharCode(parseInt(hex[0], 16)) : dn[i + 1];
      i += hex ? 2 : 1;
    } else if (c === ',' || c === '+') break;
    else value += c;
  }
  return value.trim();
}

async function connect(options: LdapAuthOptions): Promise<Client> {
  try {
    return await openLdapConnection(options);
  } catch (err) {
    throw new LdapAuthError('directory-unavailable', { cause: err });
  }
}

/**
 * Signs a user in against LDAP / Active Directory and returns who they are and their groups.
 *
 * With `bindDn`, a service account finds the user's DN (by sAMAccountName, UPN or mail) and the user's
 * password is then checked by binding as that DN on a separate connection. Without it, the user binds
 * directly with their UPN. The connection is always TLS (LDAPS or StartTLS) before any password is sent.
 *
 * Throws LdapAuthError: INVALID_CREDENTIALS (wrong password, unknown or ambiguous user, disabled or
 * locked account; see `reason`) or NOT_READY (directory unreachable, service account refused).
 */
export async function authenticateLdapUser(options: LdapAuthOptions): Promise<LdapUser> {
  const username = options.username.trim();
  // An empty password makes an "unauthenticated bind" that AD reports as success: never allow it.
  if (!options.password || !username || username.length > 256 || /[\p{Cc}]/u.test(username)) {
    throw new LdapAuthError('invalid-credentials');
  }
  if (options.password.length > 1024) throw new LdapAuthError('invalid-credentials');
  const name = parseUsername(username);
  const filter = userFilter(name);
  const opened: Client[] = [];
  try {
    let reader: Client; // the connection that reads the user's entry and groups
    let entry: Entry | undefined;
    if (options.bindDn) {
      reader = await connect(options);
      opened.push(reader);
      try {
        await reader.bind(options.bindDn, options.bindPassword ?? '');
      } catch (err) {
        throw new LdapAuthError(isInvalidCredentials(err) ? 'service-bind-failed' : 'directory-unavailable', {
          cause: err,
        });
      }
      entry = await findUser(reader, options.baseDn, filter);
      if (!entry) throw new LdapAuthError('invalid-credentials');
      const userConnection = await connect(options);
      opened.push(userConnection);
      await bindAsUser(userConnection, entry.dn, options.password);
    } else {
      reader = await connect(options);
      opened.push(reader);
      const bindName = name.upn ?? `${name.sam}@${options.upnSuffix ?? dnsDomainOf(options.baseDn)}`;
      await bindAsUser(reader, bindName, options.password);
      entry = await findUser(reader, options.baseDn, filter);
      if (!entry) throw new LdapAuthError('invalid-credentials');
    }

    const direct = entryTexts(entry, 'memberOf');
    const nested =
      options.nestedGroups === false ? [] : await nestedGroupDns(reader, options.baseDn, entry.dn);
    const groupDns = unique([...direct, ...nested]);
    return {
      dn: entry.dn,
      username: entryText(entry, 'sAMAccountName') ?? name.sam ?? username,
      userPrincipalName: entryText(entry, 'userPrincipalName'),
      displayName: entryText(entry, 'displayName') ?? entryText(entry, 'cn') ?? username,
      email: entryText(entry, 'mail'),
      groups: unique([...groupDns, ...groupDns.map(firstRdnValue)]),
      groupDns,
    };
  } catch (err) {
    if (err instanceof LdapAuthError) throw err;
    throw new LdapAuthError('directory-unavailable', { cause: err });
  } finally {
    await Promise.all(opened.map(closeLdapConnection));
  }
}

async function bindAsUser(client: Client, bindName: string, password: string): Promise<void> {
  try {
    await client.bind(bindName, password);
  } catch (err) {
    if (isInvalidCredentials(err)) throw new LdapAuthError(adBindFailureReason(err));
    throw new LdapAuthError('directory-unavailable', { cause: err });
  }
}

function unique(values: string[]): string[] {
  const seen = new Set<string>();
  return values.filter((v) => {
    const key = v.toLowerCase();
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
