/** Self-service: my devices, their BitLocker keys, and the password behind a reason, audited. */
import { useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router-dom';
import { ApiError, get, post, type Device, type Disclosure, type RecoveryKey } from '../api.tsx';
import {
  ErrorBox,
  Loaded,
  PasswordView,
  ReasonFields,
  ago,
  reasonText,
  useAction,
  useAsync,
  When,
  Empty,
} from '../ui.tsx';

export function MyDevicesPage() {
  const devices = useAsync(() => get<{ devices: Device[] }>('/api/self-service/devices'), []);
  return (
    <>
      <h1>My devices</h1>
      <KeyIdEntry />
      <section aria-labelledby="my-devices-title">
        <h2 id="my-devices-title">Devices registered to you</h2>
        <Loaded state={devices} what="Loading your devices">
          {({ devices: list }) =>
            list.length === 0 ? (
              <Empty>
                No device is registered to you yet. If you are locked out, type the key ID above or call the
                helpdesk.
              </Empty>
            ) : (
              <ul className="cards">
                {list.map((d) => (
                  <li key={d.id} className="card">
                    <h3>
                      <Link to={`/my-devices/${d.id}`}>{d.name}</Link>
                    </h3>
                    <p className="muted small">
                      {d.os ?? 'Windows'} · last seen {ago(d.lastSeenAt)}
                    </p>
                    <Link
                      className="button secondary"
                      to={`/my-devices/${d.id}`}
                      aria-label={`View BitLocker keys of ${d.name}`}
                    >
                      View BitLocker keys
                    </Link>
                  </li>
                ))}
              </ul>
            )
          }
        </Loaded>
      </section>
    </>
  );
}

/** The preboot screen says "use the first 8 characters of the recovery key ID": start from there. */
function KeyIdEntry() {
  const navigate = useNavigate();
  const [keyId, setKeyId] = useState('');
  const clean = keyId
    .replace(/[{}\s-]/g, '')
    .slice(0, 8)
    .toUpperCase();
  const valid = /^[0-9A-F]{8}$/.test(clean);
  return (
    <form
      className="panel keyid-entry"
      onSubmit={(e: FormEvent) => {
        e.preventDefault();
        if (valid) navigate(`/recover?keyId=${clean}`);
      }}
    >
      <h2>Locked out at the BitLocker screen?</h2>
      <label>
        Recovery key ID <span className="hint">the first 8 characters shown on the recovery screen</span>
        <input
          name="keyId"
          value={keyId}
          onChange={(e) => setKeyId(e.target.value)}
          placeholder="4290B6C0"
          maxLength={40}
          autoComplete="off"
          spellCheck={false}
          className="mono"
        />
      </label>
      <button type="submit" disabled={!valid}>
        Find my key
      </button>
    </form>
  );
}

/** FORBIDDEN from a self-service key route means the organization restricts self-service. */
function isRestricted(e: unknown): e is ApiError {
  return e instanceof ApiError && e.code === 'FORBIDDEN';
}

/** The administrator's contact text and link, when the refusal carries them. */
function contactOf(error: ApiError): { text: string | null; link: string | null } {
  const contact = (error.details as { contact?: { text?: unknown; link?: unknown } } | undefined)?.contact;
  const text = typeof contact?.text === 'string' && contact.text !== '' ? contact.text : null;
  const raw = typeof contact?.link === 'string' ? contact.link : '';
  // The server only stores https: and mailto: links; checked again so nothing else is ever a link here.
  const link = /^(https:\/\/|mailto:)/i.test(raw) ? raw : null;
  return { text, link };
}

export function RestrictedPage({ error }: { error: ApiError }) {
  const contact = contactOf(error);
  return (
    <section className="panel notice" data-testid="self-service-restricted">
      <h2>Your organization restricts self-service recovery</h2>
      <p>
        You cannot view BitLocker recovery passwords here. Contact the helpdesk: they can verify who you are
        and read the password to you.
      </p>
      {(contact.text !== null || contact.link !== null) && (
        <div className="contact" data-testid="self-service-contact">
          <h3>How to reach the helpdesk</h3>
          {contact.text !== null && <p className="pre-line">{contact.text}</p>}
          {contact.link !== null && (
            <p>
              <a href={contact.link} rel="noopener noreferrer" target="_blank">
                {contact.link.replace(/^mailto:/i, '')}
              </a>
            </p>
          )}
        </div>
      )}
      <p className="muted small">
        {error.serverMessage} {error.requestId && <>(reference {error.requestId})</>}
      </p>
    </section>
  );
}

export function NoKeyPage({ deviceName }: { deviceName?: string }) {
  return (
    <section className="panel notice" data-testid="no-key">
      <h2>No key escrowed for {deviceName ?? 'this device'}</h2>
      <p>
        bdevault holds no BitLocker recovery key for it. The device may never have reported its key, or
        BitLocker may not be on. Contact the helpdesk; they may find the key elsewhere (Active Directory, a
        printout).
      </p>
    </section>
  );
}

export function MyDevicePage() {
  const { deviceId = '' } = useParams();
  const devices = useAsync(() => get<{ devices: Device[] }>('/api/self-service/devices'), []);
  const keys = useAsync(
    () =>
      get<{ recoveryKeys: RecoveryKey[] }>(
        `/api/self-service/devices/${encodeURIComponent(deviceId)}/recovery-keys`,
      ),
    [deviceId],
  );
  const device = devices.data?.devices.find((d) => d.id === deviceId);
  return (
    <>
      <p>
        <Link to="/my-devices">← My devices</Link>
      </p>
      <h1>{device?.name ?? 'Device'}: BitLocker keys</h1>
      {isRestricted(keys.error) ? (
        <RestrictedPage error={keys.error} />
      ) : (
        <Loaded state={keys} what="Loading keys">
          {({ recoveryKeys }) =>
            recoveryKeys.length === 0 ? (
              <NoKeyPage {...(device ? { deviceName: device.name } : {})} />
            ) : (
              <KeyList keys={recoveryKeys} discloseBase="/api/self-service/recovery-keys" />
            )
          }
        </Loaded>
      )}
    </>
  );
}

export function RecoverByKeyIdPage() {
  const [params] = useSearchParams();
  const keyId = (params.get('keyId') ?? '').toUpperCase();
  const keys = useAsync(
    () =>
      /^[0-9A-F]{8}$/.test(keyId)
        ? get<{ recoveryKeys: RecoveryKey[] }>(`/api/self-service/recovery-keys?keyIdPrefix=${keyId}`)
        : Promise.resolve({ recoveryKeys: [] }),
    [keyId],
  );
  return (
    <>
      <p>
        <Link to="/my-devices">← My devices</Link>
      </p>
      <h1>
        Recovery key ID <code>{keyId}…</code>
      </h1>
      {isRestricted(keys.error) ? (
        <RestrictedPage error={keys.error} />
      ) : (
        <Loaded state={keys} what="Looking for the key">
          {({ recoveryKeys }) =>
            recoveryKeys.length === 0 ? (
              <section className="panel notice" data-testid="no-key">
                <h2>No key of yours starts with {keyId}</h2>
                <p>
                  Check the 8 characters on the recovery screen (after “Recovery key ID”). If they are right,
                  the key is not escrowed for a device registered to you: contact the helpdesk.
                </p>
              </section>
            ) : (
              <KeyList keys={recoveryKeys} discloseBase="/api/self-service/recovery-keys" showDevice />
            )
          }
        </Loaded>
      )}
    </>
  );
}

/** Keys with metadata only; a password is fetched one at a time, behind a reason, and shown briefly. */
export function KeyList({
  keys,
  discloseBase,
  showDevice = false,
  canDisclose = true,
}: {
  keys: RecoveryKey[];
  discloseBase: string;
  showDevice?: boolean;
  canDisclose?: boolean;
}) {
  const [open, setOpen] = useState<string | undefined>();
  const openKey = keys.find((k) => k.id === open);
  return (
    <div>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Recovery keys</caption>
          <thead>
            <tr>
              <th scope="col">Key ID</th>
              {showDevice && <th scope="col">Device</th>}
              <th scope="col">Volume</th>
              <th scope="col">Created</th>
              <th scope="col">Status</th>
              {canDisclose && <th scope="col">Password</th>}
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.id}>
                <td>
                  <code className="keyid">{k.recoveryKeyId}</code>
                </td>
                {showDevice && <td>{k.device.name}</td>}
                <td>
                  {k.volume.driveLetter ?? ''} {volumeLabel(k.volume.volumeType)}
                </td>
                <td>
                  <When iso={k.createdAt} />
                </td>
                <td>
                  <StatusBadge status={k.status} />
                </td>
                {canDisclose && (
                  <td>
                    <button
                      type="button"
                      onClick={() => setOpen(k.id)}
                      disabled={k.status === 'superseded' || open === k.id}
                      aria-label={`View recovery password for key ${k.recoveryKeyId.slice(0, 8)}`}
                    >
                      View recovery password
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {openKey && (
        <section
          className="panel disclose-panel"
          aria-label={`Recovery password for key ${openKey.recoveryKeyId}`}
        >
          <h3>
            Key <code>{openKey.recoveryKeyId}</code>
          </h3>
          <DiscloseFlow
            key={openKey.id}
            recoveryKey={openKey}
            discloseBase={discloseBase}
            onClose={() => setOpen(undefined)}
          />
        </section>
      )}
    </div>
  );
}

export function volumeLabel(t: string): string {
  return t === 'os' ? 'Operating system drive' : t === 'fixed' ? 'Fixed data drive' : 'Removable drive';
}

export function StatusBadge({ status }: { status: string }) {
  const label =
    status === 'active'
      ? 'Current'
      : status === 'rotation_pending'
        ? 'Being replaced'
        : status === 'superseded'
          ? 'Replaced'
          : status;
  return <span className={`badge badge-${status}`}>{label}</span>;
}

/** Reason, then the password; when it hides, say what happens next (the key will be rotated). */
export function DiscloseFlow({
  recoveryKey,
  discloseBase,
  onClose,
}: {
  recoveryKey: RecoveryKey;
  discloseBase: string;
  onClose: () => void;
}) {
  const withReasonCode = discloseBase.startsWith('/api/self-service');
  const [reason, setReason] = useState('');
  const [note, setNote] = useState('');
  const [shown, setShown] = useState<Disclosure | undefined>();
  const [hidden, setHidden] = useState<string | undefined>();
  const { busy, error, run } = useAction();

  if (shown) {
    return (
      <PasswordView
        password={shown.recoveryPassword}
        keyId={shown.recoveryKeyId}
        onClear={(why) => {
          setShown(undefined);
          setHidden(
            why === 'hidden'
              ? 'The password was hidden because you left the page.'
              : why === 'timeout'
                ? 'The password was hidden after 60 seconds.'
                : 'The password is hidden.',
          );
        }}
      />
    );
  }
  if (hidden) {
    return (
      <div className="stack" role="status">
        <p>{hidden} This password works once: after you use it, the device gets a new one.</p>
        <div className="row">
          <button type="button" onClick={() => setHidden(undefined)}>
            Show again
          </button>
          <button type="button" className="secondary" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
    );
  }
  return (
    <form
      className="stack disclose-form"
      onSubmit={async (e) => {
        e.preventDefault();
        const r = await run(() =>
          post<Disclosure>(`${discloseBase}/${encodeURIComponent(recoveryKey.id)}/disclose`, {
            reason: reasonText(reason, note),
            // Self-service records MBAM's reason code for the reports; the operator route takes words only.
            ...(withReasonCode ? { reasonCode: reason } : {}),
          }),
        );
        if (r) setShown(r);
      }}
    >
      <p className="small">Viewing the password is recorded in the audit log with your reason.</p>
      <ReasonFields reason={reason} note={note} setReason={setReason} setNote={setNote} />
      <ErrorBox error={error} />
      <div className="row">
        <button type="submit" disabled={busy || reason === ''}>
          Show password
        </button>
        <button type="button" className="secondary" onClick={onClose}>
          Cancel
        </button>
      </div>
    </form>
  );
}
