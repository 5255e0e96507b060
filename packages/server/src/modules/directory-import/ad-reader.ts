/** Reads BitLocker recovery information from Active Directory: computers and their msFVE-RecoveryInformation children. */
import type { Client, Entry, Filter } from 'ldapts';
import {
  closeLdapConnection,
  openLdapConnection,
  type LdapConnectionOptions,
} from '../../lib/ldap-client.js';
import { adGuidFilter } from './ad-guid.js';
import {
  COMPUTER_ATTRIBUTES,
  COMPUTER_BUFFER_ATTRIBUTES,
  computerFromEntry,
  RECOVERY_OBJECT_ATTRIBUTES,
  RECOVERY_OBJECT_BUFFER_ATTRIBUTES,
  recordFromEntry,
  type AdComputer,
  type AdRecoveryRecord,
  type AdSkipReason,
} from './ad-recovery-object.js';
import { DirectoryError, toDirectoryError } from './directory-error.js';

export interface ReadAdRecoveryKeysOptions extends LdapConnectionOptions {
  /** A DN, a UPN (`svc-bitlocker@example.com`) or `DOMAIN\user`: AD accepts all three for a simple bind. */
  bindDn: string;
  bindPassword: string;
  /** Where to look for computers, e.g. `OU=Workstations,DC=example,DC=com` (searched with subtree scope). */
  baseDn: string;
  /** Entries per page of the paged computer search (default 500, below AD's MaxPageSize of 1000). */
  pageSize?: number;
  /** Which computers to read (default `(objectCategory=computer)`). */
  computerFilter?: string | Filter;
  /** Child searches in flight at once (default 4). */
  concurrency?: number;
  /** Told about each recovery object that cannot be read as a record (no digits involved). */
  onSkipped?: (skipped: { dn: string; reason: AdSkipReason }) => void;
}

export interface AdReadCounts {
  computers: number;
  computersWithRecoveryInformation: number;
  recoveryObjects: number;
  passwordsReadable: number;
  /** Objects whose msFVE-RecoveryPassword the bind account may not read (confidential attribute). */
  passwordsNotReadable: number;
  skipped: number;
}

/** A single-use async iterable of records whose `counts` are final once iteration ends. */
export interface AdRecoveryKeyReader extends AsyncIterable<AdRecoveryRecord> {
  readonly counts: Readonly<AdReadCounts>;
}

const RECOVERY_FILTER = '(objectClass=msFVE-RecoveryInformation)';

/**
 * Streams every BitLocker recovery record under `baseDn`, computer by computer.
 *
 * Connects over LDAPS (or `ldap://` + StartTLS, always with certificate verification), binds as the
 * given account, pages through computer objects (`pageSize`, default 500) and, for each computer,
 * reads its `msFVE-RecoveryInformation` children. Memory stays bounded by one page of computers.
 *
 * A bind account without Control Access on `msFVE-RecoveryPassword` still gets records (metadata,
 * GUIDs, creation time) with `recoveryPassword` undefined and `counts.passwordsNotReadable` raised.
 * Nothing is written anywhere; pass the records to `validateAdRecoveryRecord` and then to the vault.
 * Records hold recovery passwords in clear: never log them.
 *
 * Throws `DirectoryError` (DIRECTORY_BIND_FAILED, DIRECTORY_UNAVAILABLE, DIRECTORY_BASE_NOT_FOUND).
 *
 * @example
 * const reader = readAdRecoveryKeys({ url, tlsCa, bindDn, bindPassword, baseDn });
 * for await (const record of reader) handle(validateAdRecoveryRecord(record));
 * console.log(reader.counts);
 */
export function readAdRecoveryKeys(options: ReadAdRecoveryKeysOptions): AdRecoveryKeyReader {
  const counts: AdReadCounts = {
    computers: 0,
    computersWithRecoveryInformation: 0,
    recoveryObjects: 0,
    passwordsReadable: 0,
    passwordsNotReadable: 0,
    skipped: 0,
  };
  let started = false;
  return {
    counts,
    [Symbol.asyncIterator]() {
      if (started) throw new DirectoryError('DIRECTORY_INVALID_OPTIONS', 'An AD reader can be iterated once');
      started = true;
      return iterate(options, counts)[Symbol.asyncIterator]();
    },
  };
}

/** The record of one recovery object found by its recovery GUID (key id), or undefined. */
export async function readAdRecoveryKeyByGuid(
  options: Omit<ReadAdRecoveryKeysOptions, 'computerFilter' | 'concurrency' | 'onSkipped' | 'pageSize'>,
  recoveryGuid: string,
): Promise<AdRecoveryRecord | undefined> {
  return withBoundClient(options, async (client) => {
    const { searchEntries } = await client.search(options.baseDn, {
      scope: 'sub',
      filter: adGuidFilter('msFVE-RecoveryGuid', recoveryGuid),
      attributes: [...RECOVERY_OBJECT_ATTRIBUTES],
      explicitBufferAttributes: RECOVERY_OBJECT_BUFFER_ATTRIBUTES,
    });
    const entry = searchEntries[0];
    if (!entry) return undefined;
    const computerDn = parentDn(entry.dn);
    const parent = await client.search(computerDn, {
      scope: 'base',
      attributes: [...COMPUTER_ATTRIBUTES],
      explicitBufferAttributes: COMPUTER_BUFFER_ATTRIBUTES,
    });
    const computer = computerFromEntry(parent.searchEntries[0] ?? { dn: computerDn });
    const result = recordFromEntry(computer, entry);
    return 'record' in result ? result.record : undefined;
  });
}

type BindOptions = Pick<ReadAdRecoveryKeysOptions, keyof LdapConnectionOptions | 'bindDn' | 'bindPassword'>;

/** A connection bound as the import account; the caller closes it. */
async function connectAndBind(options: BindOptions): Promise<Client> {
  if (!options.bindDn || !options.bindPassword) {
    // An empty password would be an unauthenticated bind that "succeeds" and reads nothing.
    throw new DirectoryError('DIRECTORY_INVALID_OPTIONS', 'A bind account and password are required');
  }
  let client: Client;
  try {
    client = await openLdapConnection(options);
  } catch (err) {
    throw toDirectoryError(err, `Cannot connect to ${options.url}`);
  }
  try {
    await client.bind(options.bindDn, options.bindPassword);
    return client;
  } catch (err) {
    await closeLdapConnection(client);
    throw toDirectoryError(err, `Bind as ${options.bindDn} failed`);
  }
}

async function withBoundClient<T>(options: BindOptions, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = await connectAndBind(options);
  try {
    return await fn(client);
  } catch (err) {
    throw toDirectoryError(err, `Reading ${options.url} failed`);
  } finally {
    await closeLdapConnection(client);
  }
}

async function* iterate(
  options: ReadAdRecoveryKeysOptions,
  counts: AdReadCounts,
): AsyncGenerator<AdRecoveryRecord> {
  const pageSize = clamp(options.pageSize ?? 500, 1, 1000);
  const concurrency = clamp(options.concurrency ?? 4, 1, 32);
  const client = await connectAndBind(options);
  try {
    const children = (computer: AdComputer) =>
      client.search(computer.dn, {
        scope: 'one',
        filter: RECOVERY_FILTER,
        attributes: [...RECOVERY_OBJECT_ATTRIBUTES],
        explicitBufferAttributes: RECOVERY_OBJECT_BUFFER_ATTRIBUTES,
        // Not paged: a computer has a handful of children, and Samba refuses a second paged search
        // on a connection while the computer search is still paging.
      });
    const pages = client.searchPaginated(options.baseDn, {
      scope: 'sub',
      filter: options.computerFilter ?? '(objectCategory=computer)',
      attributes: [...COMPUTER_ATTRIBUTES],
      explicitBufferAttributes: COMPUTER_BUFFER_ATTRIBUTES,
      paged: { pageSize },
    });
    for (;;) {
      let page: IteratorResult<{ searchEntries: Entry[] }>;
      try {
        page = await pages.next();
      } catch (err) {
        throw toDirectoryError(err, `Searching computers under ${options.baseDn} failed`);
      }
      if (page.done) break;
      const computers = page.value.searchEntries.map(computerFromEntry);
      counts.computers += computers.length;
      // A small window of child searches runs ahead of the computer being yielded.
      const inFlight: Array<Promise<{ searchEntries: Entry[] }>> = [];
      const launch = (index: number) => {
        const computer = computers[index];
        if (computer === undefined || inFlight[index] !== undefined) return;
        const search = children(computer);
        search.catch(() => undefined); // awaited below; this only avoids an unhandled-rejection report
        inFlight[index] = search;
      };
      for (let i = 0; i < computers.length; i++) {
        for (let ahead = i; ahead < i + concurrency; ahead++) launch(ahead);
        const computer = computers[i]!;
        let entries: Entry[];
        try {
          entries = (await inFlight[i]!).searchEntries;
        } catch (err) {
          throw toDirectoryError(err, `Reading recovery information of ${computer.dn} failed`);
        }
        delete inFlight[i];
        if (entries.length > 0) counts.computersWithRecoveryInformation++;
        const records: AdRecoveryRecord[] = [];
        for (const entry of entries) {
          counts.recoveryObjects++;
          const result = recordFromEntry(computer, entry);
          if ('skipped' in result) {
            counts.skipped++;
            options.onSkipped?.({ dn: entry.dn, reason: result.skipped });
            continue;
          }
          if (result.record.recoveryPassword === undefined) counts.passwordsNotReadable++;
          else counts.passwordsReadable++;
          records.push(result.record);
        }
        // Oldest backup first, as the vault's history expects.
        records.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
        yield* records;
      }
    }
  } finally {
    await closeLdapConnection(client);
  }
}

/** The DN of an entry's parent: everything after the first unescaped comma. */
export function parentDn(dn: string): string {
  for (let i = 0; i < dn.length; i++) {
    if (dn[i] === '\\') i++;
    else if (dn[i] === ',') return dn.slice(i + 1).trim();
  }
  return '';
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.floor(value)));
}
