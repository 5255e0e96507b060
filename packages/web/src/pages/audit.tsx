/**
 * The audit log: newest first from the server, filtered there, older entries a page at a time; the
 * server's export of the filtered log (JSON lines or CSV); and hash-chain verification. The applied
 * filters live in the address (`/audit?action=recovery-key.&from=…`), so a view can be shared.
 */
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { useSearchParams } from 'react-router-dom';
import { can, get, qs, type AuditEntry } from '../api.tsx';
import { useSession } from '../session.tsx';
import { Empty, ErrorBox, Loading, useAction, useAsync, When } from '../ui.tsx';

interface Verdict {
  ok: boolean;
  rowsChecked: number;
  firstProblem?: { seq: number; id: string; problem: string; message: string };
}

interface AuditPage {
  entries: AuditEntry[];
  nextCursor: string | null;
}

const PAGE_SIZE = 50;

const FILTER_KEYS = [
  'action',
  'outcome',
  'actorType',
  'actor',
  'targetType',
  'targetId',
  'deviceId',
  'from',
  'to',
] as const;
type Filters = Record<(typeof FILTER_KEYS)[number], string>;

const NO_FILTERS: Filters = Object.fromEntries(FILTER_KEYS.map((k) => [k, ''])) as Filters;

const TARGET_TYPES = [
  'device',
  'recovery-key',
  'rotation',
  'recovery-case',
  'user',
  'api-token',
  'enrollment-token',
  'session',
  'organization',
  'account-suspension',
  'identity-provider',
  'webauthn-credential',
  'webhook',
];

function filtersOf(params: URLSearchParams): Filters {
  return Object.fromEntries(FILTER_KEYS.map((k) => [k, params.get(k) ?? ''])) as Filters;
}

/** A day picked in the browser (local time) as the instant it starts, `days` later. */
function startOfDay(day: string, days = 0): string | undefined {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(day);
  if (!m) return undefined;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + days).toISOString();
}

/** What the server takes: the days become instants, and "to" includes its whole day. */
function serverFilters(f: Filters): Record<string, string | undefined> {
  return { ...f, from: startOfDay(f.from), to: startOfDay(f.to, 1) };
}

export function AuditPage() {
  const { me } = useSession();
  const [params, setParams] = useSearchParams();
  const applied = useMemo(() => filtersOf(params), [params]);
  const query = useMemo(() => serverFilters(applied), [applied]);
  const queryKey = qs(query);
  const [draft, setDraft] = useState<Filters>(applied);
  const [draftError, setDraftError] = useState<string | undefined>();
  // Back and forward move the address: the form follows it.
  useEffect(() => setDraft(applied), [applied]);

  const first = useAsync(
    () => get<AuditPage>(`/api/audit-log${qs({ order: 'desc', limit: PAGE_SIZE, ...query })}`),
    [queryKey],
  );
  // Older pages belong to the first page they continue: a new first page (filters, Refresh) drops them.
  const [older, setOlder] = useState<{ after: AuditPage; pages: AuditPage } | undefined>();
  const more = useAction();
  const current = useRef(first.data);
  current.current = first.data;

  const continued = older !== undefined && older.after === first.data ? older.pages : undefined;
  const entries = useMemo(
    () => [...(first.data?.entries ?? []), ...(continued?.entries ?? [])],
    [first.data, continued],
  );
  const next = continued ? continued.nextCursor : (first.data?.nextCursor ?? null);

  const loadOlder = async () => {
    const base = first.data;
    if (next === null || base === undefined) return;
    const page = await more.run(() =>
      get<AuditPage>(`/api/audit-log${qs({ order: 'desc', limit: PAGE_SIZE, cursor: next, ...query })}`),
    );
    if (!page || current.current !== base) return;
    setOlder({
      after: base,
      pages: { entries: [...(continued?.entries ?? []), ...page.entries], nextCursor: page.nextCursor },
    });
  };

  const actions = useAsync(
    () =>
      get<{ actions: string[] }>('/api/audit-log/actions').then(
        (r) => r.actions,
        () => [] as string[],
      ),
    [],
  );
  const families = useMemo(
    () =>
      [...new Set((actions.data ?? []).filter((a) => a.includes('.')).map((a) => a.split('.')[0]!))].sort(),
    [actions.data],
  );

  const [verdict, setVerdict] = useState<Verdict | undefined>();
  const verify = useAction();

  const set = (key: keyof Filters) => (e: { target: { value: string } }) => {
    setDraft((d) => ({ ...d, [key]: e.target.value }));
  };
  const apply = (e: FormEvent) => {
    e.preventDefault();
    if (draft.from !== '' && draft.to !== '' && draft.to < draft.from) {
      setDraftError('The “To” day is before the “From” day.');
      return;
    }
    setDraftError(undefined);
    const trimmed = Object.entries(draft)
      .map(([k, v]) => [k, v.trim()] as const)
      .filter(([, v]) => v !== '');
    setParams(Object.fromEntries(trimmed));
  };
  const clear = () => {
    setDraftError(undefined);
    setDraft(NO_FILTERS);
    setParams({});
  };
  const filtered = FILTER_KEYS.some((k) => applied[k] !== '');
  const exportHref = (format: 'jsonl' | 'csv') => `/api/audit-log/export${qs({ format, ...query })}`;

  return (
    <>
      <h1>Audit log</h1>
      <div className="row toolbar">
        {can(me?.permissions, 'org:admin') && (
          <button
            type="button"
            disabled={verify.busy}
            onClick={async () => {
              const v = await verify.run(() => get<Verdict>('/api/audit-log/verify'));
              if (v) setVerdict(v);
            }}
          >
            {verify.busy ? 'Verifying…' : 'Verify chain'}
          </button>
        )}
        <a className="button secondary" href={exportHref('csv')} download>
          Export CSV
        </a>
        <a className="button secondary" href={exportHref('jsonl')} download>
          Export JSON lines
        </a>
        <button type="button" className="secondary" onClick={first.reload}>
          Refresh
        </button>
      </div>
      <p className="muted small">
        Exports hold every entry that matches the filters, oldest first, with the hash-chain columns
        {filtered ? '' : ' (no filter: the whole log of this organization)'}. Each export is recorded in the
        audit log.
      </p>
      <ErrorBox error={verify.error} />
      {verdict && (
        <p
          className={`alert ${verdict.ok ? 'alert-ok' : 'alert-error'}`}
          role="status"
          data-testid="chain-verdict"
        >
          {verdict.ok
            ? `Chain verified: ${verdict.rowsChecked} entries, none edited, missing or reordered.`
            : `Chain broken at entry ${verdict.firstProblem?.seq ?? '?'}: ${verdict.firstProblem?.message ?? verdict.firstProblem?.problem ?? ''} (${verdict.rowsChecked} checked).`}
        </p>
      )}
      <form className="panel" onSubmit={apply} aria-label="Filters">
        <div className="filters">
          <label>
            Action
            <select name="action" value={draft.action} onChange={set('action')}>
              <option value="">All actions</option>
              {draft.action !== '' &&
                !(actions.data ?? []).includes(draft.action) &&
                !families.some((f) => `${f}.` === draft.action) && (
                  <option value={draft.action}>{draft.action}</option>
                )}
              {families.length > 0 && (
                <optgroup label="Every action of a kind">
                  {families.map((f) => (
                    <option key={f} value={`${f}.`}>
                      {f}.*
                    </option>
                  ))}
                </optgroup>
              )}
              {(actions.data ?? []).length > 0 && (
                <optgroup label="One action">
                  {actions.data!.map((a) => (
                    <option key={a} value={a}>
                      {a}
                    </option>
                  ))}
                </optgroup>
              )}
            </select>
          </label>
          <label>
            Outcome
            <select name="outcome" value={draft.outcome} onChange={set('outcome')}>
              <option value="">Any</option>
              <option value="success">success</option>
              <option value="failure">failure</option>
            </select>
          </label>
          <label>
            Actor
            <input
              name="actor"
              value={draft.actor}
              onChange={set('actor')}
              maxLength={200}
              aria-describedby="actor-hint"
            />
            <span className="hint" id="actor-hint">
              User name, display name, token or device name, or an id
            </span>
          </label>
          <label>
            Actor type
            <select name="actorType" value={draft.actorType} onChange={set('actorType')}>
              <option value="">Any</option>
              <option value="user">user</option>
              <option value="api-token">api-token</option>
              <option value="device">device</option>
              <option value="system">system</option>
              <option value="cli">cli</option>
            </select>
          </label>
          <label>
            Target type
            <select name="targetType" value={draft.targetType} onChange={set('targetType')}>
              <option value="">Any</option>
              {TARGET_TYPES.map((type) => (
                <option key={type} value={type}>
                  {type}
                </option>
              ))}
            </select>
          </label>
          <label>
            Target ID
            <input
              name="targetId"
              value={draft.targetId}
              onChange={set('targetId')}
              maxLength={100}
              className="mono"
            />
          </label>
          <label>
            Device ID
            <input
              name="deviceId"
              value={draft.deviceId}
              onChange={set('deviceId')}
              maxLength={40}
              pattern="dev_[0-9a-z]{26}"
              title="A device id: dev_ and 26 letters or digits"
              className="mono"
              aria-describedby="device-hint"
            />
            <span className="hint" id="device-hint">
              The device, its keys, rotations and recovery cases
            </span>
          </label>
          <label>
            From
            <input type="date" name="from" value={draft.from} onChange={set('from')} />
          </label>
          <label>
            To
            <input type="date" name="to" value={draft.to} onChange={set('to')} />
          </label>
        </div>
        {draftError && (
          <p className="field-error" role="alert">
            {draftError}
          </p>
        )}
        <div className="row">
          <button type="submit">Apply filters</button>
          <button type="button" className="secondary" onClick={clear} disabled={!filtered}>
            Clear filters
          </button>
        </div>
      </form>
      {first.error !== undefined ? (
        <ErrorBox error={first.error} />
      ) : first.loading || first.data === undefined ? (
        <Loading what="Loading the audit log" />
      ) : entries.length === 0 ? (
        <Empty>{filtered ? 'No entry matches these filters.' : 'The audit log is empty.'}</Empty>
      ) : (
        <>
          <p className="muted" role="status" aria-live="polite" data-testid="audit-count">
            {entries.length} {entries.length === 1 ? 'entry' : 'entries'} shown, newest first
            {next === null ? '; that is all of them.' : '.'}
          </p>
          <div className="table-wrap">
            <table className="audit-table">
              <caption className="visually-hidden">Audit entries, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">#</th>
                  <th scope="col">When</th>
                  <th scope="col">Actor</th>
                  <th scope="col">Action</th>
                  <th scope="col">Target</th>
                  <th scope="col">Outcome</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {entries.map((e) => (
                  <AuditRow key={e.id} e={e} />
                ))}
              </tbody>
            </table>
          </div>
          <ErrorBox error={more.error} />
          {next !== null && (
            <div className="pager">
              <button type="button" className="secondary" disabled={more.busy} onClick={loadOlder}>
                {more.busy ? 'Loading…' : `Load ${PAGE_SIZE} older entries`}
              </button>
            </div>
          )}
        </>
      )}
    </>
  );
}

function AuditRow({ e }: { e: AuditEntry }) {
  return (
    <tr data-action={e.action}>
      <td>{e.seq}</td>
      <td>
        <When iso={e.occurredAt} />
      </td>
      <td>
        {e.actorType} <code className="small">{e.actorId ?? ''}</code>
      </td>
      <td>
        <code>{e.action}</code>
      </td>
      <td>
        {e.targetType ?? ''} <code className="small">{e.targetId ?? ''}</code>
      </td>
      <td>
        <span className={`badge ${e.outcome === 'success' ? 'badge-active' : 'badge-rotation_pending'}`}>
          {e.outcome}
        </span>
      </td>
      <td>{e.reason ?? ''}</td>
    </tr>
  );
}
