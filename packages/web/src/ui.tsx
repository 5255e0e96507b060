/** Small shared pieces: data loading, errors with request ids, paging, the recovery-password view. */
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError } from './api.tsx';

export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/** Runs `load` on mount and whenever `deps` change; `reload()` runs it again. */
export function useAsync<T>(load: () => Promise<T>, deps: readonly unknown[]): Async<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true, error: undefined }));
    load().then(
      (data) => live && setState({ data, error: undefined, loading: false }),
      (error: unknown) => live && setState({ data: undefined, error, loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** Runs an action with a busy flag and an error to show; returns undefined when it failed. */
export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(async <T,>(action: () => Promise<T>): Promise<T | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      return await action();
    } catch (e) {
      setError(e);
      return undefined;
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clearError: () => setError(undefined) };
}

export function ErrorBox({ error, title }: { error: unknown; title?: string }) {
  if (error === undefined || error === null) return null;
  const api = error instanceof ApiError ? error : undefined;
  const message = error instanceof Error ? error.message : String(error);
  return (
    <div className="alert alert-error" role="alert">
      {title && <strong>{title} </strong>}
      <span>{message}</span>
      {api?.requestId && (
        <span className="muted small">
          {' '}
          Reference for support: <code>{api.requestId}</code>
          {api.code && !api.code.startsWith('HTTP_') ? ` (${api.code})` : ''}
        </span>
      )}
    </div>
  );
}

export function Loading({ what = 'Loading' }: { what?: string }) {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <p className="empty">{children}</p>;
}

/** Shows loading, error, or the content once data is there. */
export function Loaded<T>({
  state,
  what,
  children,
}: {
  state: Async<T>;
  what?: string;
  children: (data: T) => ReactNode;
}) {
  if (state.error !== undefined) return <ErrorBox error={state.error} />;
  if (state.data === undefined) return <Loading {...(what ? { what } : {})} />;
  return <>{children(state.data)}</>;
}

export function usePaged<T>(items: readonly T[], pageSize = 25) {
  const [page, setPage] = useState(0);
  const pages = Math.max(1, Math.ceil(items.length / pageSize));
  const current = Math.min(page, pages - 1);
  return {
    items: items.slice(current * pageSize, (current + 1) * pageSize),
    pager:
      pages > 1 ? (
        <nav className="pager" aria-label="Pages">
          <button type="button" disabled={current === 0} onClick={() => setPage(current - 1)}>
            Previous
          </button>
          <span aria-live="polite">
            Page {current + 1} of {pages} ({items.length} items)
          </span>
          <button type="button" disabled={current >= pages - 1} onClick={() => setPage(current + 1)}>
            Next
          </button>
        </nav>
      ) : null,
    reset: () => setPage(0),
  };
}

export function When({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span className="muted">never</span>;
  const d = new Date(iso);
  return (
    <time dateTime={iso} title={d.toISOString()}>
      {d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' })}
    </time>
  );
}

/** "3 days ago": escrow freshness at a glance. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  if (s < 60) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.round(h / 24)} days ago`;
}

export function download(filename: string, content: string, type: string): void {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function toCsv(rows: readonly (readonly unknown[])[]): string {
  const cell = (v: unknown) => {
    const s = v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
    // A leading = + - @ would be a formula in a spreadsheet.
    const safe = /^[=+\-@\t\r]/.test(s) ? `'${s}` : s;
    return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  return rows.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      className="secondary"
      onClick={() => {
        void navigator.clipboard?.writeText(text).then(
          () => {
            setCopied(true);
            setTimeout(() => setCopied(false), 2000);
          },
          () => setCopied(false),
        );
      }}
    >
      {copied ? 'Copied' : label}
    </button>
  );
}

/** A secret shown once (a one-time password, an API token): copy it now, it is not shown again. */
export function ShownOnce({ label, value, onDone }: { label: string; value: string; onDone: () => void }) {
  return (
    <div className="alert alert-secret" role="status">
      <p>
        <strong>{label}</strong> It is shown only this once: copy it now.
      </p>
      <p className="secret-value">
        <code data-testid="shown-once">{value}</code>
      </p>
      <div className="row">
        <CopyButton text={value} />
        <button type="button" onClick={onDone}>
          Done
        </button>
      </div>
    </div>
  );
}

export const PASSWORD_VIEW_SECONDS = 60;

/**
 * The 48-digit recovery password in its 8 groups, large and monospaced, with a copy button. It
 * clears itself when the tab is hidden and after PASSWORD_VIEW_SECONDS, whichever comes first.
 */
export function PasswordView({
  password,
  keyId,
  onClear,
}: {
  password: string;
  keyId: string;
  onClear: (why: 'hidden' | 'timeout' | 'closed') => void;
}) {
  const [left, setLeft] = useState(PASSWORD_VIEW_SECONDS);
  const cleared = useRef(false);
  const clear = useCallback(
    (why: 'hidden' | 'timeout' | 'closed') => {
      if (cleared.current) return;
      cleared.current = true;
      onClear(why);
    },
    [onClear],
  );
  useEffect(() => {
    const started = Date.now();
    const timer = setInterval(() => {
      const remaining = PASSWORD_VIEW_SECONDS - Math.floor((Date.now() - started) / 1000);
      setLeft(Math.max(0, remaining));
      if (remaining <= 0) clear('timeout');
    }, 1000);
    const onVisibility = () => {
      if (document.visibilityState === 'hidden') clear('hidden');
    };
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [clear]);
  const groups = password.split('-');
  return (
    <section className="password-view" aria-labelledby="pw-title">
      <h2 id="pw-title">Recovery password</h2>
      <p className="muted">
        For key ID <code>{keyId}</code>. Type these 8 groups at the BitLocker recovery screen.
      </p>
      <ol
        className="password-groups"
        data-testid="recovery-password"
        aria-label="Recovery password, 8 groups"
      >
        {groups.map((g, i) => (
          <li key={i} aria-label={`Group ${i + 1}: ${g.split('').join(' ')}`}>
            <span className="group-index" aria-hidden="true">
              {i + 1}
            </span>
            <span className="group-digits">{g}</span>
          </li>
        ))}
      </ol>
      <div className="row">
        <CopyButton text={password} label="Copy password" />
        <button type="button" onClick={() => clear('closed')}>
          Hide now
        </button>
        <span className="muted" aria-live="off">
          Hides in {left} s, or when you leave this tab.
        </span>
      </div>
    </section>
  );
}

/** MBAM's reason codes for a disclosure; the chosen one (and any note) goes to the audit log. */
export const REASONS: readonly (readonly [code: string, label: string])[] = [
  ['boot-order-changed', 'Operating system boot order changed'],
  ['bios-changed', 'BIOS changed'],
  ['os-files-changed', 'Operating system files changed'],
  ['lost-startup-key', 'Lost startup key'],
  ['lost-pin', 'Lost PIN'],
  ['tpm-reset', 'TPM reset'],
  ['lost-passphrase', 'Lost passphrase'],
  ['lost-smart-card', 'Lost smart card'],
  ['other', 'Other'],
];

export const reasonLabel = (code: string) => REASONS.find(([c]) => c === code)?.[1] ?? code;

export function ReasonFields({
  reason,
  note,
  setReason,
  setNote,
}: {
  reason: string;
  note: string;
  setReason: (r: string) => void;
  setNote: (n: string) => void;
}) {
  return (
    <>
      <label>
        Reason
        <select value={reason} onChange={(e) => setReason(e.target.value)} required>
          <option value="">Choose what happened…</option>
          {REASONS.map(([code, label]) => (
            <option key={code} value={code}>
              {label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Note{' '}
        <span className="muted">(optional{reason === 'other' ? ', but please say what happened' : ''})</span>
        <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={400} />
      </label>
    </>
  );
}

export function reasonText(reasonCode: string, note: string): string {
  const n = note.trim();
  return n ? `${reasonLabel(reasonCode)}: ${n}` : reasonLabel(reasonCode);
}

export function Field({ label, children, hint }: { label: string; children: ReactNode; hint?: string }) {
  return (
    <label>
      {label}
      {children}
      {hint && <span className="hint">{hint}</span>}
    </label>
  );
}

export function shortId(id: string | null | undefined): string {
  return id ? id.replace(/^([a-z]+_)(.{6}).*$/, '$1$2…') : '';
}
