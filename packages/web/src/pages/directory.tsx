/** Key import from a CSV file (checked with a dry run first) and the Active Directory sync settings. */
import { useState, type FormEvent } from 'react';
import { api, ApiError, get, post } from '../api.tsx';
import { Empty, ErrorBox, Loaded, useAction, useAsync, usePaged, When } from '../ui.tsx';

/** The server's own limit (900,000 characters); checked here so a large file fails fast and clearly. */
const MAX_IMPORT_CHARS = 900_000;

type Outcome = 'created' | 'updated' | 'unchanged' | 'conflict' | 'invalid' | 'not-readable';

interface Counts {
  records: number;
  devices: { created: number; updated: number; unchanged: number };
  volumes: { created: number; updated: number; unchanged: number };
  keys: {
    created: number;
    updated: number;
    unchanged: number;
    conflicts: number;
    invalid: number;
    notReadable: number;
  };
}

interface ImportReport {
  dryRun: boolean;
  counts: Counts;
  listsTruncated: boolean;
  ignoredColumns: string[];
  rows: { row: number; outcome: Outcome; deviceName?: string; keyId?: string; reason?: string }[];
}

const OUTCOME_BADGE: Record<Outcome, string> = {
  created: 'badge-active',
  updated: 'badge-active',
  unchanged: '',
  conflict: 'badge-rotation_pending',
  invalid: 'badge-superseded',
  'not-readable': 'badge-superseded',
};

export function ImportPage() {
  const [file, setFile] = useState<{ name: string; text: string } | undefined>();
  const [fileError, setFileError] = useState<string | undefined>();
  const [report, setReport] = useState<ImportReport | undefined>();
  const { busy, error, run } = useAction();

  const choose = async (f: File | undefined) => {
    setReport(undefined);
    setFile(undefined);
    setFileError(undefined);
    if (!f) return;
    const text = await f.text();
    if (text.length > MAX_IMPORT_CHARS) {
      setFileError(`${f.name} is too large: at most 900,000 characters (about 5,000 keys) per file.`);
      return;
    }
    setFile({ name: f.name, text });
  };

  const send = async (dryRun: boolean) => {
    if (!file) return;
    const r = await run(() =>
      post<ImportReport>('/api/import/recovery-keys', { format: 'csv', csv: file.text, dryRun }),
    );
    if (r) setReport(r);
  };

  const check = (e: FormEvent) => {
    e.preventDefault();
    void send(true);
  };

  const writable =
    report !== undefined && report.dryRun && report.counts.keys.created + report.counts.keys.updated > 0;

  return (
    <>
      <h1>Import recovery keys</h1>
      <form className="panel stack" onSubmit={check} aria-labelledby="import-heading">
        <h2 id="import-heading">From a CSV file</h2>
        <p className="hint">
          Columns: <code>deviceName</code>, <code>keyId</code>, <code>recoveryPassword</code>, and optionally{' '}
          <code>volumeGuid</code>, <code>volumeType</code>, <code>createdAt</code>. The file is checked first
          (a dry run stores nothing); then you import the rows that passed. Re-importing a file is safe.
        </p>
        <label>
          CSV file
          <input
            name="import-file"
            type="file"
            accept=".csv,text/csv"
            onChange={(e) => void choose(e.target.files?.[0])}
            required
          />
        </label>
        {fileError && (
          <p className="alert alert-error" role="alert">
            {fileError}
          </p>
        )}
        <button type="submit" disabled={busy || !file}>
          Check file
        </button>
        <ErrorBox error={error} />
      </form>
      {report && file && (
        <ImportResult
          report={report}
          fileName={file.name}
          busy={busy}
          onImport={writable ? () => void send(false) : undefined}
        />
      )}
    </>
  );
}

function ImportResult({
  report,
  fileName,
  busy,
  onImport,
}: {
  report: ImportReport;
  fileName: string;
  busy: boolean;
  onImport: (() => void) | undefined;
}) {
  const { items, pager } = usePaged(report.rows, 25);
  const k = report.counts.keys;
  return (
    <section className="panel" aria-labelledby="import-result" data-testid="import-result">
      <h2 id="import-result">
        {report.dryRun ? `Check of ${fileName}: nothing was stored` : `Imported ${fileName}`}
      </h2>
      <ul className="import-counts">
        <li>
          <strong>{k.created}</strong> {report.dryRun ? 'would be created' : 'created'}
        </li>
        <li>
          <strong>{k.updated}</strong> {report.dryRun ? 'would be updated' : 'updated'}
        </li>
        <li>
          <strong>{k.unchanged}</strong> already stored
        </li>
        <li>
          <strong>{k.conflicts}</strong> conflicts (another password under the same key id; not overwritten)
        </li>
        <li>
          <strong>{k.invalid + k.notReadable}</strong> invalid rows (skipped)
        </li>
        <li>
          <strong>{report.counts.devices.created}</strong> new devices
        </li>
      </ul>
      {report.ignoredColumns.length > 0 && (
        <p className="hint">Ignored columns: {report.ignoredColumns.join(', ')}</p>
      )}
      {onImport && (
        <p>
          <button type="button" disabled={busy} onClick={onImport}>
            Import {k.created + k.updated} keys
          </button>
        </p>
      )}
      {items.length === 0 ? (
        <Empty>No rows.</Empty>
      ) : (
        <>
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Rows of the file</caption>
              <thead>
                <tr>
                  <th scope="col">Row</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Device</th>
                  <th scope="col">Key ID</th>
                  <th scope="col">Why</th>
                </tr>
              </thead>
              <tbody>
                {items.map((r) => (
                  <tr key={r.row} data-outcome={r.outcome}>
                    <td>{r.row}</td>
                    <td>
                      <span className={`badge ${OUTCOME_BADGE[r.outcome]}`}>{r.outcome}</span>
                    </td>
                    <td>{r.deviceName ?? ''}</td>
                    <td className="mono small">{r.keyId ?? ''}</td>
                    <td>{r.reason ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          {pager}
        </>
      )}
      {report.listsTruncated && <p className="hint">The lists were shortened; the counts are complete.</p>}
    </section>
  );
}

interface SyncView {
  url: string;
  caCertificate: string | null;
  baseDn: string;
  bindDn: string;
  bindPasswordSet: boolean;
  intervalMinutes: number;
  enabled: boolean;
  nextRunAt: string | null;
  running: boolean;
  lastRun: {
    status: 'running' | 'succeeded' | 'failed';
    trigger: 'schedule' | 'manual' | null;
    startedAt: string | null;
    finishedAt: string | null;
    summary: { counts: Counts } | null;
    error: string | null;
  } | null;
}

export function DirectorySyncPage() {
  // No sync configured answers 404: that is an empty form, not an error.
  const sync = useAsync(
    () =>
      get<SyncView>('/api/directory-sync').catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }),
    [],
  );
  const { busy, error, run } = useAction();
  const [saved, setSaved] = useState<string | undefined>();

  const save = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    setSaved(undefined);
    const form = e.currentTarget;
    const f = new FormData(form);
    const str = (k: string) => String(f.get(k) ?? '').trim();
    const ca = str('caCertificate');
    const password = String(f.get('bindPassword') ?? '');
    const ok = await run(() =>
      api('PUT', '/api/directory-sync', {
        url: str('url'),
        baseDn: str('baseDn'),
        bindDn: str('bindDn'),
        ...(password === '' ? {} : { bindPassword: password }),
        caCertificate: ca === '' ? null : ca,
        intervalMinutes: Number(f.get('intervalMinutes')),
        enabled: f.get('enabled') === 'on',
      }),
    );
    if (ok !== undefined) {
      // The secret leaves the page once it is stored.
      const field = form.elements.namedItem('bindPassword');
      if (field instanceof HTMLInputElement) field.value = '';
      setSaved('Saved. The bind password is stored encrypted and never shown again.');
      sync.reload();
    }
  };

  const syncNow = async () => {
    setSaved(undefined);
    const r = await run(() => post<{ started: boolean }>('/api/directory-sync/sync-now'));
    if (r) setSaved(r.started ? 'Sync started.' : 'A sync is already running.');
    sync.reload();
  };

  const remove = async () => {
    setSaved(undefined);
    if ((await run(() => api('DELETE', '/api/directory-sync'))) !== undefined) {
      setSaved('Directory sync removed. Imported keys stay.');
      sync.reload();
    }
  };

  return (
    <>
      <h1>Active Directory sync</h1>
      <p className="hint">
        bdevault reads the BitLocker recovery information (msFVE-RecoveryInformation) of the computers under a
        base DN on a schedule, with a read-only service account.
      </p>
      {saved && (
        <p className="alert alert-ok" role="status">
          {saved}
        </p>
      )}
      <ErrorBox error={error} />
      <Loaded state={sync} what="Loading directory sync">
        {(s) => (
          <>
            {s && (
              <SyncStatus s={s} busy={busy} onSyncNow={() => void syncNow()} onRemove={() => void remove()} />
            )}
            <form className="panel stack" onSubmit={save} aria-labelledby="sync-settings">
              <h2 id="sync-settings">{s ? 'Settings' : 'Connect a directory'}</h2>
              <label>
                Directory URL{' '}
                <span className="hint">ldaps://host[:port], or ldap://host (StartTLS is required)</span>
                <input
                  name="url"
                  required
                  maxLength={500}
                  defaultValue={s?.url ?? ''}
                  placeholder="ldaps://dc1.example.com"
                />
              </label>
              <label>
                Base DN
                <input
                  name="baseDn"
                  required
                  maxLength={1024}
                  defaultValue={s?.baseDn ?? ''}
                  placeholder="OU=Workstations,DC=example,DC=com"
                />
              </label>
              <label>
                Service account <span className="hint">DN, UPN or DOMAIN\user</span>
                <input name="bindDn" required maxLength={1024} defaultValue={s?.bindDn ?? ''} />
              </label>
              <label>
                Password{' '}
                <span className="hint">
                  {s?.bindPasswordSet ? 'stored; leave empty to keep it' : 'required'}
                </span>
                <input
                  name="bindPassword"
                  type="password"
                  autoComplete="new-password"
                  maxLength={1024}
                  required={!s?.bindPasswordSet}
                />
              </label>
              <label>
                CA certificate <span className="hint">PEM, optional; the system store when empty</span>
                <textarea
                  name="caCertificate"
                  rows={4}
                  className="mono small"
                  defaultValue={s?.caCertificate ?? ''}
                />
              </label>
              <label>
                Every (minutes)
                <input
                  name="intervalMinutes"
                  type="number"
                  min={15}
                  max={10080}
                  required
                  defaultValue={s?.intervalMinutes ?? 1440}
                />
              </label>
              <label className="check">
                <input name="enabled" type="checkbox" defaultChecked={s?.enabled ?? true} />
                Sync on schedule
              </label>
              <button type="submit" disabled={busy}>
                Save directory sync
              </button>
            </form>
          </>
        )}
      </Loaded>
    </>
  );
}

function SyncStatus({
  s,
  busy,
  onSyncNow,
  onRemove,
}: {
  s: SyncView;
  busy: boolean;
  onSyncNow: () => void;
  onRemove: () => void;
}) {
  const last = s.lastRun;
  return (
    <section className="panel" aria-labelledby="sync-status" data-testid="sync-status">
      <h2 id="sync-status">Status</h2>
      <dl className="facts">
        <dt>Schedule</dt>
        <dd>{s.enabled ? `every ${s.intervalMinutes} minutes` : 'off (manual only)'}</dd>
        <dt>Next run</dt>
        <dd>{s.nextRunAt ? <When iso={s.nextRunAt} /> : '—'}</dd>
        <dt>Last run</dt>
        <dd>
          {last === null ? (
            'never'
          ) : (
            <>
              {last.status}
              {last.finishedAt && (
                <>
                  {' '}
                  <When iso={last.finishedAt} />
                </>
              )}
              {last.summary && (
                <span className="muted">
                  {' '}
                  ({last.summary.counts.keys.created} keys created, {last.summary.counts.keys.updated}{' '}
                  updated, {last.summary.counts.keys.conflicts} conflicts)
                </span>
              )}
              {last.error && <div className="alert alert-error">{last.error}</div>}
            </>
          )}
        </dd>
      </dl>
      <div className="row">
        <button type="button" disabled={busy || s.running} onClick={onSyncNow}>
          {s.running ? 'Sync running…' : 'Sync now'}
        </button>
        <button type="button" className="secondary" disabled={busy} onClick={onRemove}>
          Remove sync
        </button>
      </div>
    </section>
  );
}
