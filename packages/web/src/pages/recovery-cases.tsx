/** The helpdesk recovery wizard: the seven steps of a recovery case, one screen each, with progress. */
import { useEffect, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { can, get, post, qs, type User } from '../api.tsx';
import { useSession } from '../session.tsx';
import { Empty, ErrorBox, Loaded, PasswordView, useAction, useAsync, usePaged, When } from '../ui.tsx';

type Status = 'open' | 'awaiting-approval' | 'disclosed' | 'awaiting-rotation' | 'closed' | 'cancelled';

interface CaseSummary {
  id: string;
  status: Status;
  reference: string | null;
  requesterUserId: string;
  deviceId: string | null;
  nextStep: string | null;
  createdAt: string;
  updatedAt: string;
}

interface RootCauseAnswers {
  protectionMode: string;
  bootFileChange: string;
  pcrProfile: string;
  forgottenPinOrLostKey: string;
  changeCause: string;
  lastSuccessfulStart: { at?: string; whatHappenedSince: string };
  unattendedOrExposed: string;
}

interface RecoveryCase {
  id: string;
  status: Status;
  reference: string | null;
  requester: { id: string; username: string; displayName: string | null };
  createdAt: string;
  closedAt: string | null;
  nextStep: string | null;
  warnings: string[];
  identity: {
    method: string;
    verified: boolean;
    verifiedAt: string | null;
    ownerMatch: string;
    ownerOverridden: boolean;
  } | null;
  device: { id: string; name: string } | null;
  key: { entered: string; match: string; recoveryKeyRecordId: string | null; located: boolean } | null;
  rootCause: {
    answers: RootCauseAnswers;
    resolution: { class: string; title: string; steps: string[] };
  } | null;
  approval: { required: boolean; approved: boolean } | null;
  disclosure: { disclosedAt: string; reasonCode: string } | null;
  rotation: { requestId: string | null; state: 'pending' | 'completed' | 'failed' | 'not-required' } | null;
}

interface Disclosed {
  case: RecoveryCase;
  recoveryKeyId: string;
  recoveryPassword: string;
  groups: string[];
  readAloud: string[];
}

const STEPS = [
  { id: 'identity', label: 'Verify identity' },
  { id: 'device', label: 'Device name' },
  { id: 'key-id', label: 'Recovery key ID' },
  { id: 'locate', label: 'Locate password' },
  { id: 'root-cause', label: 'Root cause' },
  { id: 'disclose', label: 'Provide password' },
  { id: 'rotate', label: 'Rotate' },
] as const;

/** Which of the seven screens a server `nextStep` belongs to (approval and override sit on their step). */
function stepIndex(c: RecoveryCase): number {
  const n = c.nextStep;
  if (c.status === 'closed' || c.status === 'cancelled') return 7;
  if (n === 'identity' || (n === 'approval' && !c.identity?.verified)) return 0;
  if (n === 'device') return 1;
  if (n === 'key-id') return 2;
  if (n === 'locate') return 3;
  if (n === 'root-cause' && !c.disclosure) return 4;
  if (n === 'disclose' || n === 'approval' || n === 'owner-override') return 5;
  return 6;
}

const STATUS_LABEL: Record<Status, string> = {
  open: 'Open',
  'awaiting-approval': 'Waiting for approval',
  disclosed: 'Password given',
  'awaiting-rotation': 'Waiting for the device to rotate',
  closed: 'Closed',
  cancelled: 'Cancelled',
};

export function CasesPage() {
  const { me } = useSession();
  const navigate = useNavigate();
  const [status, setStatus] = useState('active');
  const cases = useAsync(
    () => get<{ recoveryCases: CaseSummary[] }>(`/api/recovery-cases${qs({ status, limit: 200 })}`),
    [status],
  );
  const isAdmin = can(me?.permissions, 'org:admin');
  const users = useAsync(
    () => (isAdmin ? get<{ users: User[] }>('/api/users') : Promise.resolve({ users: [] as User[] })),
    [isAdmin],
  );
  const [requester, setRequester] = useState('');
  const [reference, setReference] = useState('');
  const { busy, error, run } = useAction();
  const { items, pager } = usePaged(cases.data?.recoveryCases ?? [], 25);
  const userName = (id: string) => users.data?.users.find((u) => u.userId === id)?.username ?? id;

  const start = async (e: FormEvent) => {
    e.preventDefault();
    if (requester === '') return;
    const c = await run(() =>
      post<RecoveryCase>('/api/recovery-cases', {
        requesterUserId: requester,
        ...(reference ? { reference } : {}),
      }),
    );
    if (c) navigate(`/cases/${c.id}`);
  };

  return (
    <>
      <h1>Recovery cases</h1>
      <form className="panel" onSubmit={start} aria-labelledby="new-case">
        <h2 id="new-case">Start a recovery</h2>
        <p className="hint">
          A user is locked out at the BitLocker screen and called you. Start with who they say they are.
        </p>
        <div className="inline-form">
          <RequesterPicker value={requester} onChange={setRequester} />
          <label>
            Ticket reference <span className="hint">optional</span>
            <input value={reference} onChange={(e) => setReference(e.target.value)} maxLength={100} />
          </label>
          <button type="submit" disabled={busy || requester === ''}>
            Start recovery case
          </button>
        </div>
        <ErrorBox error={error} />
      </form>
      <div className="inline-form">
        <label>
          Show
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="active">Open cases</option>
            <option value="awaiting-rotation">Waiting for rotation</option>
            <option value="closed">Closed</option>
            <option value="all">All</option>
          </select>
        </label>
      </div>
      <Loaded state={cases} what="Loading cases">
        {() =>
          items.length === 0 ? (
            <Empty>No case here.</Empty>
          ) : (
            <>
              <div className="table-wrap">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Case</th>
                      <th scope="col">User</th>
                      <th scope="col">Status</th>
                      <th scope="col">Next step</th>
                      <th scope="col">Started</th>
                    </tr>
                  </thead>
                  <tbody>
                    {items.map((c) => (
                      <tr key={c.id}>
                        <td>
                          <Link to={`/cases/${c.id}`}>{c.reference ?? c.id}</Link>
                        </td>
                        <td>{userName(c.requesterUserId)}</td>
                        <td>{STATUS_LABEL[c.status]}</td>
                        <td>{c.nextStep ?? '—'}</td>
                        <td>
                          <When iso={c.createdAt} />
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
              {pager}
            </>
          )
        }
      </Loaded>
    </>
  );
}

interface Requester {
  userId: string;
  username: string;
  displayName: string;
  hasEmail: boolean;
}

/**
 * Type-ahead over the organization's members (username or display-name prefix, at most 20), so
 * the helpdesk picks the caller by name; the server tells whether an e-mail is on file, not which.
 */
function RequesterPicker({ value, onChange }: { value: string; onChange: (userId: string) => void }) {
  const [query, setQuery] = useState('');
  const [found, setFound] = useState<Requester[] | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    const q = query.trim();
    if (q === '') {
      setFound(undefined);
      return;
    }
    let live = true;
    // A short pause so typing a name is one request, not one per key.
    const timer = setTimeout(() => {
      get<{ requesters: Requester[] }>(`/api/recovery-cases/requesters${qs({ query: q })}`).then(
        (r) => {
          if (!live) return;
          setError(undefined);
          setFound(r.requesters);
          // A single match is the obvious choice; keep a choice that is still listed.
          if (r.requesters.length === 1) onChange(r.requesters[0]!.userId);
          else if (!r.requesters.some((x) => x.userId === value)) onChange('');
        },
        (e: unknown) => {
          if (live) setError(e);
        },
      );
    }, 250);
    return () => {
      live = false;
      clearTimeout(timer);
    };
    // Re-search on the query only: a new choice must not fire another request.
  }, [query]);

  return (
    <div className="requester-picker grow">
      <label>
        Locked-out user
        <input
          name="requester-query"
          type="search"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          placeholder="Start of the user name or display name"
          autoComplete="off"
          maxLength={100}
          aria-describedby="requester-hint"
        />
      </label>
      <span id="requester-hint" className="hint">
        Type a few letters; choose the person below.
      </span>
      <ErrorBox error={error} />
      {found !== undefined &&
        (found.length === 0 ? (
          <p className="empty">No active user starts with “{query.trim()}”.</p>
        ) : (
          <fieldset className="checks requester-results" data-testid="requester-results">
            <legend>Choose the user</legend>
            {found.map((r) => (
              <label key={r.userId} className="check">
                <input
                  type="radio"
                  name="requester"
                  value={r.userId}
                  checked={value === r.userId}
                  onChange={() => onChange(r.userId)}
                />
                <span>
                  {r.displayName} <span className="muted">({r.username})</span>{' '}
                  {r.hasEmail ? (
                    <span className="badge">e-mail on file</span>
                  ) : (
                    <span className="badge badge-superseded">no e-mail</span>
                  )}
                </span>
              </label>
            ))}
            {found.length === 20 && <span className="hint">Showing the first 20: type more to narrow.</span>}
          </fieldset>
        ))}
    </div>
  );
}

export function CasePage() {
  const { caseId = '' } = useParams();
  const state = useAsync(
    () => get<RecoveryCase>(`/api/recovery-cases/${encodeURIComponent(caseId)}`),
    [caseId],
  );
  const [current, setCurrent] = useState<RecoveryCase | undefined>();
  const [disclosed, setDisclosed] = useState<Disclosed | undefined>();
  const c = current ?? state.data;

  useEffect(() => setCurrent(state.data), [state.data]);

  // Live rotation status: poll while the case waits for the device.
  useEffect(() => {
    if (!c || (c.status !== 'awaiting-rotation' && c.status !== 'disclosed')) return;
    const t = setInterval(() => {
      get<RecoveryCase>(`/api/recovery-cases/${encodeURIComponent(caseId)}`).then(
        setCurrent,
        () => undefined,
      );
    }, 2000);
    return () => clearInterval(t);
  }, [c, caseId]);

  if (!c) return <Loaded state={state}>{() => null}</Loaded>;
  const at = stepIndex(c);
  return (
    <>
      <p>
        <Link to="/cases">← Recovery cases</Link>
      </p>
      <h1>
        Recovery for {c.requester.displayName || c.requester.username}
        {c.reference ? ` · ${c.reference}` : ''}
      </h1>
      <ol className="progress" aria-label="Steps">
        {STEPS.map((s, i) => (
          <li
            key={s.id}
            className={i < at ? 'done' : i === at ? 'current' : ''}
            aria-current={i === at ? 'step' : undefined}
          >
            {i + 1}. {s.label}
            {i < at && <span className="visually-hidden"> (done)</span>}
          </li>
        ))}
      </ol>
      {c.warnings.length > 0 && (
        <div className="alert alert-secret" role="status">
          {c.warnings.map((w) => (
            <p key={w}>{w}</p>
          ))}
        </div>
      )}
      <section className="panel wizard-step" aria-live="polite">
        {at === 0 && <IdentityStep c={c} onCase={setCurrent} />}
        {at === 1 && <DeviceStep c={c} onCase={setCurrent} />}
        {at === 2 && <KeyIdStep c={c} onCase={setCurrent} />}
        {at === 3 && <LocateStep c={c} onCase={setCurrent} />}
        {at === 4 && <RootCauseStep c={c} onCase={setCurrent} />}
        {at === 5 && <DiscloseStep c={c} onCase={setCurrent} onDisclosed={setDisclosed} />}
        {at >= 6 && <RotateStep c={c} disclosed={disclosed} onCase={setCurrent} />}
      </section>
      {c.rootCause && at >= 5 && <Resolution c={c} />}
      {c.status !== 'closed' && c.status !== 'cancelled' && <CancelCase c={c} onCase={setCurrent} />}
    </>
  );
}

type StepProps = { c: RecoveryCase; onCase: (c: RecoveryCase) => void };

function useCasePost(c: RecoveryCase, onCase: (c: RecoveryCase) => void) {
  const action = useAction();
  const send = async (step: string, body: unknown = {}) => {
    const r = await action.run(() =>
      post<RecoveryCase | { case: RecoveryCase }>(`/api/recovery-cases/${c.id}/${step}`, body),
    );
    if (r) onCase('case' in r ? r.case : r);
    return r;
  };
  return { ...action, send };
}

function IdentityStep({ c, onCase }: StepProps) {
  const policy = useAsync(() => get<{ identityMethods: string[] }>('/api/recovery-cases/policy'), []);
  const { me } = useSession();
  const [method, setMethod] = useState('');
  const [sentTo, setSentTo] = useState<string | undefined>();
  const [code, setCode] = useState('');
  const [attestation, setAttestation] = useState('call-back');
  const [note, setNote] = useState('');
  const { busy, error, send, run } = useCasePost(c, onCase);
  const methods = policy.data?.identityMethods ?? [];
  const chosen = method || methods[0] || '';
  const waiting = c.nextStep === 'approval';

  return (
    <>
      <h2>Step 1: verify who is calling</h2>
      <p>No verified identity, no password. Use a method your organization allows.</p>
      {waiting ? (
        <>
          <p className="alert alert-secret">Waiting for a second person to confirm the caller’s identity.</p>
          {can(me?.permissions, 'cases:approve') && (
            <button
              type="button"
              disabled={busy}
              onClick={() => void send('approve', { subject: 'identity' })}
            >
              Approve identity (as the second person)
            </button>
          )}
        </>
      ) : (
        <Loaded state={policy} what="Loading policy">
          {() => (
            <>
              <fieldset className="checks" aria-label="Method">
                <legend>Method</legend>
                {methods.map((m) => (
                  <label key={m} className="check">
                    <input
                      type="radio"
                      name="identity-method"
                      value={m}
                      checked={chosen === m}
                      onChange={() => setMethod(m)}
                    />
                    {m === 'email-code'
                      ? 'One-time code by e-mail'
                      : m === 'second-person'
                        ? 'Approval by a second person'
                        : 'In person or call-back (attested)'}
                  </label>
                ))}
              </fieldset>
              {chosen === 'email-code' && (
                <div className="stack">
                  <button
                    type="button"
                    className={sentTo ? 'secondary' : ''}
                    disabled={busy}
                    onClick={async () => {
                      const r = await run(() =>
                        post<{ sentTo: string }>(`/api/recovery-cases/${c.id}/identity`, {
                          method: 'email-code',
                        }),
                      );
                      if (r) setSentTo(r.sentTo);
                    }}
                  >
                    {sentTo ? 'Send a new code' : 'Send a code to the user’s e-mail'}
                  </button>
                  {sentTo && (
                    <form
                      className="inline-form"
                      onSubmit={(e) => {
                        e.preventDefault();
                        void send('identity/code', { code: code.trim() });
                      }}
                    >
                      <p className="hint">Sent to {sentTo}. Ask the user to read the 6 digits to you.</p>
                      <label>
                        Code the user reads out
                        <input
                          name="identity-code"
                          inputMode="numeric"
                          value={code}
                          onChange={(e) => setCode(e.target.value)}
                          required
                          maxLength={12}
                          className="mono"
                        />
                      </label>
                      <button type="submit" disabled={busy}>
                        Verify code
                      </button>
                    </form>
                  )}
                </div>
              )}
              {chosen === 'attested' && (
                <form
                  className="stack"
                  onSubmit={(e) => {
                    e.preventDefault();
                    void send('identity', { method: 'attested', attestation, note });
                  }}
                >
                  <label>
                    How
                    <select value={attestation} onChange={(e) => setAttestation(e.target.value)}>
                      <option value="call-back">I called the user back on their registered number</option>
                      <option value="in-person">The user is in front of me with ID</option>
                    </select>
                  </label>
                  <label>
                    Note for the audit log
                    <input
                      value={note}
                      onChange={(e) => setNote(e.target.value)}
                      required
                      minLength={3}
                      maxLength={500}
                    />
                  </label>
                  <button type="submit" disabled={busy}>
                    Record verified identity
                  </button>
                </form>
              )}
              {chosen === 'second-person' && (
                <form
                  className="stack"
                  onSubmit={(e) => {
                    e.preventDefault();
                    void send('identity', { method: 'second-person', ...(note ? { note } : {}) });
                  }}
                >
                  <label>
                    Note for the approver
                    <input value={note} onChange={(e) => setNote(e.target.value)} maxLength={500} />
                  </label>
                  <button type="submit" disabled={busy}>
                    Ask a second person
                  </button>
                </form>
              )}
            </>
          )}
        </Loaded>
      )}
      <ErrorBox error={error} />
    </>
  );
}

function DeviceStep({ c, onCase }: StepProps) {
  const [name, setName] = useState('');
  const { busy, error, send } = useCasePost(c, onCase);
  return (
    <form
      className="stack"
      onSubmit={(e) => {
        e.preventDefault();
        void send('device', { deviceName: name.trim() });
      }}
    >
      <h2>Step 2: the device name</h2>
      <p>Ask the user for the computer’s name (on a sticker, or in the asset list).</p>
      <label>
        Device name
        <input
          name="device-name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          required
          maxLength={255}
          autoFocus
        />
      </label>
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        Record device
      </button>
    </form>
  );
}

function KeyIdStep({ c, onCase }: StepProps) {
  const [keyId, setKeyId] = useState('');
  const { busy, error, send } = useCasePost(c, onCase);
  return (
    <form
      className="stack"
      onSubmit={(e) => {
        e.preventDefault();
        void send('key-id', { keyId: keyId.replace(/[\s{}-]/g, '') });
      }}
    >
      <h2>Step 3: the recovery key ID</h2>
      <p>
        The BitLocker screen of <strong>{c.device?.name}</strong> shows “Recovery key ID”. Ask the user to
        read the first 8 characters (or all 32).
      </p>
      {c.key && c.key.match !== 'this-device' && (
        <p className="alert alert-error" role="alert">
          {c.key.match === 'other-device'
            ? `Key ID ${c.key.entered} belongs to another device: the drive may have moved. Check the device name.`
            : `No key ID ${c.key.entered} is escrowed for this device. Check what the user read.`}
        </p>
      )}
      <label>
        Recovery key ID
        <input
          name="key-id"
          value={keyId}
          onChange={(e) => setKeyId(e.target.value)}
          required
          maxLength={40}
          className="mono"
          autoFocus
        />
      </label>
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        Match key ID
      </button>
    </form>
  );
}

function LocateStep({ c, onCase }: StepProps) {
  const { busy, error, send } = useCasePost(c, onCase);
  return (
    <div className="stack">
      <h2>Step 4: locate the recovery password</h2>
      <p>
        Key <code>{c.key?.entered}</code> matches <strong>{c.device?.name}</strong>. Locate it in the vault
        (within your scope); the password itself is shown only at step 6.
      </p>
      <ErrorBox error={error} />
      <button type="button" disabled={busy} onClick={() => void send('locate')}>
        Locate the password
      </button>
    </div>
  );
}

const QUESTIONS: {
  key: keyof Omit<RootCauseAnswers, 'lastSuccessfulStart'>;
  label: string;
  options: [string, string][];
}[] = [
  {
    key: 'protectionMode',
    label: 'How is the drive protected?',
    options: [
      ['tpm', 'TPM only'],
      ['tpm-pin', 'TPM + PIN'],
      ['tpm-startup-key', 'TPM + startup key'],
      ['startup-key', 'Startup key only'],
      ['unknown', 'Unknown'],
    ],
  },
  {
    key: 'bootFileChange',
    label: 'Was the recovery caused by a change to boot files?',
    options: [
      ['yes', 'Yes'],
      ['no', 'No'],
      ['unknown', 'Unknown'],
    ],
  },
  {
    key: 'pcrProfile',
    label: 'Which PCR validation profile is in use?',
    options: [
      ['default', 'Default'],
      ['unknown', 'Unknown'],
    ],
  },
  {
    key: 'forgottenPinOrLostKey',
    label: 'Did the user forget the PIN or lose the startup key?',
    options: [
      ['forgot-pin', 'Forgot the PIN'],
      ['lost-startup-key', 'Lost the startup key'],
      ['no', 'No'],
      ['unknown', 'Unknown'],
    ],
  },
  {
    key: 'changeCause',
    label: 'Was it an intended change, or malicious software?',
    options: [
      ['bios-firmware-update', 'BIOS / firmware update'],
      ['tpm-cleared-or-replaced', 'TPM cleared or replaced'],
      ['other-intended-change', 'Other intended change'],
      ['malicious-software', 'Malicious software suspected'],
      ['none', 'No change known'],
      ['unknown', 'Unknown'],
    ],
  },
  {
    key: 'unattendedOrExposed',
    label: 'Was the device left unattended or exposed to malware?',
    options: [
      ['yes', 'Yes'],
      ['no', 'No'],
      ['unknown', 'Unknown'],
    ],
  },
];

function RootCauseStep({ c, onCase }: StepProps) {
  const [answers, setAnswers] = useState<Record<string, string>>(() =>
    Object.fromEntries(QUESTIONS.map((q) => [q.key, 'unknown'])),
  );
  const [lastStart, setLastStart] = useState('');
  const [since, setSince] = useState('');
  const { busy, error, send } = useCasePost(c, onCase);
  return (
    <form
      className="stack"
      onSubmit={(e) => {
        e.preventDefault();
        void send('root-cause', {
          answers: {
            ...answers,
            lastSuccessfulStart: {
              ...(lastStart ? { at: new Date(lastStart).toISOString() } : {}),
              whatHappenedSince: since || 'not known',
            },
          },
        });
      }}
    >
      <h2>Step 5: why did the device ask for recovery?</h2>
      <p>Ask these before giving the password; the answers pick the resolution steps.</p>
      {QUESTIONS.map((q) => (
        <label key={q.key}>
          {q.label}
          <select
            name={q.key}
            value={answers[q.key]}
            onChange={(e) => setAnswers({ ...answers, [q.key]: e.target.value })}
          >
            {q.options.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </label>
      ))}
      <div className="inline-form">
        <label>
          Last successful start
          <input type="datetime-local" value={lastStart} onChange={(e) => setLastStart(e.target.value)} />
        </label>
        <label className="grow">
          What happened since?
          <input name="since" value={since} onChange={(e) => setSince(e.target.value)} maxLength={500} />
        </label>
      </div>
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        Record answers
      </button>
    </form>
  );
}

const REASON_CODES: [string, string][] = [
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

function DiscloseStep({ c, onCase, onDisclosed }: StepProps & { onDisclosed: (d: Disclosed) => void }) {
  const { me } = useSession();
  const [reasonCode, setReasonCode] = useState('');
  const [reason, setReason] = useState('');
  const [note, setNote] = useState('');
  const { busy, error, send, run } = useCasePost(c, onCase);
  if (c.nextStep === 'owner-override') {
    return (
      <form
        className="stack"
        onSubmit={(e) => {
          e.preventDefault();
          void send('owner-override', { note });
        }}
      >
        <h2>Step 6: the device belongs to someone else</h2>
        <p className="alert alert-error">
          The verified user is not the device’s owner. Go on only with a reason you can defend.
        </p>
        {can(me?.permissions, 'cases:override-owner') ? (
          <>
            <label>
              Why the password may be given anyway
              <input
                value={note}
                onChange={(e) => setNote(e.target.value)}
                required
                minLength={3}
                maxLength={500}
              />
            </label>
            <button type="submit" disabled={busy}>
              Override the owner check
            </button>
          </>
        ) : (
          <p>An administrator with the owner-override permission must continue this case.</p>
        )}
        <ErrorBox error={error} />
      </form>
    );
  }
  if (c.nextStep === 'approval') {
    return (
      <div className="stack">
        <h2>Step 6: waiting for approval</h2>
        <p>Your organization asks a second person to approve before the password is given.</p>
        {can(me?.permissions, 'cases:approve') && (
          <button
            type="button"
            disabled={busy}
            onClick={() => void send('approve', { subject: 'disclosure' })}
          >
            Approve disclosure (as the second person)
          </button>
        )}
        <ErrorBox error={error} />
      </div>
    );
  }
  return (
    <form
      className="stack"
      onSubmit={async (e) => {
        e.preventDefault();
        const r = await run(() =>
          post<Disclosed>(`/api/recovery-cases/${c.id}/disclose`, {
            reasonCode,
            ...(reason ? { reason } : {}),
          }),
        );
        if (r) {
          onDisclosed(r);
          onCase(r.case);
        }
      }}
    >
      <h2>Step 6: provide the password</h2>
      <p>The password is shown once, for 60 seconds. Read it to the user group by group.</p>
      <label>
        Reason
        <select
          name="reason-code"
          value={reasonCode}
          onChange={(e) => setReasonCode(e.target.value)}
          required
        >
          <option value="">Choose what happened…</option>
          {REASON_CODES.map(([v, l]) => (
            <option key={v} value={v}>
              {l}
            </option>
          ))}
        </select>
      </label>
      <label>
        Details <span className="hint">optional</span>
        <input value={reason} onChange={(e) => setReason(e.target.value)} maxLength={500} />
      </label>
      <ErrorBox error={error} />
      <button type="submit" disabled={busy || !reasonCode}>
        Show the password
      </button>
    </form>
  );
}

/** The helpdesk types what the user reads back; the server says which groups are wrong. */
function ReadBack({ caseId }: { caseId: string }) {
  const [groups, setGroups] = useState<string[]>(Array(8).fill(''));
  const [verdicts, setVerdicts] = useState<{ group: number; verdict: string }[] | undefined>();
  const [ok, setOk] = useState<boolean | undefined>();
  const { busy, error, run } = useAction();
  return (
    <form
      className="stack"
      onSubmit={async (e) => {
        e.preventDefault();
        const r = await run(() =>
          post<{ ok: boolean; groups: { group: number; verdict: string }[] }>(
            `/api/recovery-cases/${caseId}/read-back`,
            {
              typed: groups.join('-'),
            },
          ),
        );
        if (r) {
          setVerdicts(r.groups);
          setOk(r.ok);
        }
      }}
    >
      <h3>Read-back check</h3>
      <p className="hint">Type what the user typed, as they read it back to you. Wrong groups are marked.</p>
      <div className="readback">
        {groups.map((g, i) => {
          const v = verdicts?.find((x) => x.group === i + 1)?.verdict;
          return (
            <label key={i}>
              <span className="visually-hidden">Group {i + 1}</span>
              <input
                aria-label={`Read-back group ${i + 1}`}
                inputMode="numeric"
                maxLength={6}
                value={g}
                className={v === undefined ? '' : v === 'ok' ? 'right' : 'wrong'}
                aria-invalid={v !== undefined && v !== 'ok'}
                onChange={(e) => {
                  const next = [...groups];
                  next[i] = e.target.value.replace(/\D/g, '');
                  setGroups(next);
                  setVerdicts(undefined);
                }}
              />
            </label>
          );
        })}
      </div>
      {verdicts && (
        <p
          className={`alert ${ok ? 'alert-ok' : 'alert-error'}`}
          role="status"
          data-testid="read-back-result"
        >
          {ok
            ? 'All 8 groups are right.'
            : `Wrong: ${verdicts
                .filter((v) => v.verdict !== 'ok')
                .map(
                  (v) =>
                    `group ${v.group}${v.verdict === 'checksum' ? ' (not a valid group)' : v.verdict === 'missing' ? ' (missing)' : ''}`,
                )
                .join(', ')}.`}
        </p>
      )}
      <ErrorBox error={error} />
      <button type="submit" className="secondary" disabled={busy}>
        Check read-back
      </button>
    </form>
  );
}

function RotateStep({ c, disclosed, onCase }: StepProps & { disclosed: Disclosed | undefined }) {
  const [show, setShow] = useState(true);
  const rotation = c.rotation?.state;
  return (
    <div className="stack">
      {disclosed && show && (
        <>
          <PasswordView
            password={disclosed.recoveryPassword}
            keyId={disclosed.recoveryKeyId}
            onClear={() => setShow(false)}
          />
          <details>
            <summary>Read-aloud form</summary>
            <ol className="small">
              {disclosed.readAloud.map((g, i) => (
                <li key={i}>{g}</li>
              ))}
            </ol>
          </details>
        </>
      )}
      {disclosed && <ReadBack caseId={c.id} />}
      {c.nextStep === 'root-cause' && <RootCauseStep c={c} onCase={onCase} />}
      <h2>Step 7: rotation</h2>
      <p data-testid="rotation-status" role="status" aria-live="polite">
        {c.status === 'closed'
          ? 'Rotation confirmed: the device escrowed a new password and removed the old one. Case closed.'
          : rotation === 'failed'
            ? 'The device reported that rotation failed. Follow up with the user.'
            : rotation === 'not-required'
              ? 'Your organization does not rotate disclosed passwords. The case is complete.'
              : 'Waiting for the device: at its next check-in it replaces the password the user just typed.'}
      </p>
      {c.status !== 'closed' && rotation === 'pending' && (
        <p className="muted">
          <span className="spinner" aria-hidden="true" /> Checking every few seconds…
        </p>
      )}
    </div>
  );
}

function Resolution({ c }: { c: RecoveryCase }) {
  if (!c.rootCause) return null;
  return (
    <section className="panel" aria-labelledby="resolution-title">
      <h2 id="resolution-title">Resolution: {c.rootCause.resolution.title}</h2>
      <ol>
        {c.rootCause.resolution.steps.map((s) => (
          <li key={s}>{s}</li>
        ))}
      </ol>
    </section>
  );
}

function CancelCase({ c, onCase }: StepProps) {
  const [open, setOpen] = useState(false);
  const [note, setNote] = useState('');
  const { busy, error, send } = useCasePost(c, onCase);
  if (!open) {
    return (
      <button type="button" className="link" onClick={() => setOpen(true)}>
        Cancel this case
      </button>
    );
  }
  return (
    <form
      className="inline-form"
      onSubmit={(e) => {
        e.preventDefault();
        void send('cancel', { note });
      }}
    >
      <label>
        Why cancel?
        <input
          value={note}
          onChange={(e) => setNote(e.target.value)}
          required
          minLength={3}
          maxLength={500}
        />
      </label>
      <button type="submit" className="danger" disabled={busy}>
        Cancel case
      </button>
      <ErrorBox error={error} />
    </form>
  );
}
