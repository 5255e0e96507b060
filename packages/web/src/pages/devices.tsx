/** Device search (name, key id, owner) and the device page: volumes, key history, freshness, actions. */
import { useMemo, useState, type FormEvent } from 'react';
import { Link, useNavigate, useParams, useSearchParams } from 'react-router-dom';
import {
  api,
  can,
  get,
  post,
  qs,
  type Device,
  type DeviceDetail,
  type DeviceGroup,
  type RecoveryKey,
  type User,
} from '../api.tsx';
import { useSession } from '../session.tsx';
import { ago, Empty, ErrorBox, Loaded, useAction, useAsync, usePaged, When } from '../ui.tsx';
import { KeyList, StatusBadge, volumeLabel } from './self-service.tsx';

type Mode = 'name' | 'keyid' | 'owner';

const STALE_DAYS = 30;

export function DevicesPage() {
  const [params, setParams] = useSearchParams();
  const mode = (params.get('by') as Mode | null) ?? 'name';
  const q = params.get('q') ?? '';
  const [draft, setDraft] = useState(q);
  const [draftMode, setDraftMode] = useState<Mode>(mode);

  const results = useAsync(async () => {
    if (q.trim() === '') return undefined;
    if (mode === 'keyid') {
      const clean = q.replace(/[{}\s]/g, '');
      const query = /^[0-9a-fA-F]{8}$/.test(clean) ? { keyIdPrefix: clean } : { keyId: clean };
      const r = await get<{ recoveryKeys: RecoveryKey[] }>(
        `/api/recovery-keys${qs({ ...query, limit: 200 })}`,
      );
      return { kind: 'keys' as const, keys: r.recoveryKeys };
    }
    if (mode === 'owner') {
      // The server matches the owner's username or display-name prefix within the caller's scope.
      const r = await get<{ devices: Device[] }>(`/api/devices${qs({ owner: q, limit: 200 })}`);
      return { kind: 'devices' as const, devices: r.devices };
    }
    const r = await get<{ devices: Device[] }>(`/api/devices${qs({ name: q, match: 'prefix', limit: 200 })}`);
    const devices = r.devices;
    return { kind: 'devices' as const, devices };
  }, [mode, q]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    setParams({ by: draftMode, q: draft.trim() });
  };

  return (
    <>
      <h1>Devices</h1>
      <form className="panel search" role="search" onSubmit={submit}>
        <label>
          Search by
          <select name="by" value={draftMode} onChange={(e) => setDraftMode(e.target.value as Mode)}>
            <option value="name">Device name (starts with)</option>
            <option value="keyid">Recovery key ID (first 8 characters or full)</option>
            <option value="owner">Owner</option>
          </select>
        </label>
        <label className="grow">
          {draftMode === 'keyid'
            ? 'Key ID'
            : draftMode === 'owner'
              ? 'Owner (username or name, starts with)'
              : 'Name'}
          <input
            name="q"
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            required
            maxLength={draftMode === 'owner' ? 100 : 255}
            className={draftMode === 'keyid' ? 'mono' : undefined}
          />
        </label>
        <button type="submit">Search</button>
      </form>
      {q === '' ? (
        <Empty>Type a device name, the first 8 characters of a recovery key ID, or an owner.</Empty>
      ) : (
        <Loaded state={results} what="Searching">
          {(r) =>
            r === undefined ? null : r.kind === 'keys' ? (
              r.keys.length === 0 ? (
                <Empty>No recovery key ID starts with {q} among the devices you may see.</Empty>
              ) : (
                <KeyResults keys={r.keys} />
              )
            ) : r.devices.length === 0 ? (
              <Empty>No device matches “{q}”.</Empty>
            ) : (
              <DeviceTable devices={r.devices} />
            )
          }
        </Loaded>
      )}
    </>
  );
}

function DeviceTable({ devices }: { devices: Device[] }) {
  const { items, pager } = usePaged(devices, 25);
  return (
    <>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Devices</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Owner</th>
              <th scope="col">OS</th>
              <th scope="col">Last escrow</th>
            </tr>
          </thead>
          <tbody>
            {items.map((d) => (
              <tr key={d.id}>
                <td>
                  <Link to={`/devices/${d.id}`}>{d.name}</Link>
                  {d.deletedAt && <span className="badge badge-superseded">deleted</span>}
                </td>
                <td>{d.registeredOwner ?? <span className="muted">none</span>}</td>
                <td>{d.os ?? ''}</td>
                <td>
                  <Freshness iso={d.lastSeenAt} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {pager}
    </>
  );
}

function KeyResults({ keys }: { keys: RecoveryKey[] }) {
  const { items, pager } = usePaged(keys, 25);
  return (
    <>
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Recovery keys</caption>
          <thead>
            <tr>
              <th scope="col">Key ID</th>
              <th scope="col">Device</th>
              <th scope="col">Volume</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {items.map((k) => (
              <tr key={k.id}>
                <td>
                  <code className="keyid">{k.recoveryKeyId}</code>
                </td>
                <td>
                  <Link to={`/devices/${k.device.id}`}>{k.device.name}</Link>
                </td>
                <td>
                  {k.volume.driveLetter ?? ''} {volumeLabel(k.volume.volumeType)}
                </td>
                <td>
                  <StatusBadge status={k.status} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {pager}
    </>
  );
}

function Freshness({ iso }: { iso: string | null }) {
  const stale = !iso || Date.now() - new Date(iso).getTime() > STALE_DAYS * 86400_000;
  return (
    <span className={stale ? 'fresh-stale' : 'fresh-ok'} title={iso ?? 'never'}>
      {stale ? '⚠ ' : ''}
      {ago(iso)}
    </span>
  );
}

interface ServerTimeline {
  entries: { at: string; kind: string; id: string; details: Record<string, unknown> }[];
  postRecovery: { flagged: boolean; recoveriesInWindow: number; windowDays: number };
}

function timelineClass(kind: string): string {
  if (kind === 'key.escrowed') return 'escrow';
  if (kind === 'key.disclosed') return 'disclosure';
  if (kind.startsWith('rotation.') || kind === 'key.superseded') return 'rotation';
  return 'event';
}

const KIND_LABEL: Record<string, string> = {
  'key.escrowed': 'Key escrowed',
  'key.superseded': 'Key replaced',
  'key.disclosed': 'Password disclosed',
  'rotation.requested': 'Rotation requested',
  'rotation.delivered': 'Rotation delivered to the device',
  'rotation.completed': 'Rotation completed',
  'rotation.failed': 'Rotation failed',
  'rotation.overdue': 'Rotation overdue',
  'agent.event': 'BitLocker event',
};

/** One line per entry: what happened, then the identifiers and words the server gave (never a password). */
function describeEntry(e: { kind: string; details: Record<string, unknown> }): string {
  const d = e.details;
  const bits: string[] = [];
  for (const k of ['recoveryKeyId', 'eventId', 'summary', 'reason', 'reasonCode', 'path', 'failureReason']) {
    const v = d[k];
    if (typeof v === 'string' || typeof v === 'number')
      bits.push(k === 'recoveryKeyId' ? `key ${String(v).slice(0, 8)}` : String(v));
  }
  return `${KIND_LABEL[e.kind] ?? e.kind}${bits.length ? `: ${bits.join(' · ')}` : ''}`;
}

export function DevicePage() {
  const { deviceId = '' } = useParams();
  const { me } = useSession();
  const navigate = useNavigate();
  const device = useAsync(
    () => get<DeviceDetail>(`/api/devices/${encodeURIComponent(deviceId)}`),
    [deviceId],
  );
  const keys = useAsync(
    () =>
      can(me?.permissions, 'keys:read-metadata')
        ? get<{ recoveryKeys: RecoveryKey[] }>(`/api/recovery-keys${qs({ deviceId, limit: 200 })}`)
        : Promise.resolve({ recoveryKeys: [] }),
    [deviceId],
  );
  const groups = useAsync(() => get<{ deviceGroups: DeviceGroup[] }>('/api/device-groups'), []);
  // The server's device timeline (escrows, disclosures, rotations, agent events, recoveries).
  const recorded = useAsync(
    () =>
      get<ServerTimeline>(
        `/api/devices/${encodeURIComponent(deviceId)}/timeline${qs({ order: 'desc', limit: 100 })}`,
      ),
    [deviceId],
  );
  const [notice, setNotice] = useState<string | undefined>();

  const timeline = useMemo(
    () =>
      (recorded.data?.entries ?? []).map((e) => ({
        at: e.at,
        kind: timelineClass(e.kind),
        what: describeEntry(e),
      })),
    [recorded.data],
  );

  return (
    <>
      <p>
        <Link to="/devices">← Devices</Link>
      </p>
      <Loaded state={device} what="Loading device">
        {(d) => (
          <>
            <h1>
              {d.name} {d.deletedAt && <span className="badge badge-superseded">deleted</span>}
            </h1>
            {notice && (
              <p className="alert alert-ok" role="status">
                {notice}
              </p>
            )}
            <div className="grid-2">
              <section className="panel" aria-labelledby="dev-facts">
                <h2 id="dev-facts">Device</h2>
                <dl className="facts">
                  <dt>DNS name</dt>
                  <dd>{d.dnsName ?? '—'}</dd>
                  <dt>Operating system</dt>
                  <dd>{d.os ?? '—'}</dd>
                  <dt>Serial number</dt>
                  <dd>{d.serialNumber ?? '—'}</dd>
                  <dt>Registered owner</dt>
                  <dd>{d.registeredOwner ?? '—'}</dd>
                  <dt>First seen</dt>
                  <dd>
                    <When iso={d.firstSeenAt} />
                  </dd>
                  <dt>Last escrow</dt>
                  <dd>
                    <Freshness iso={d.lastSeenAt} />
                  </dd>
                  <dt>Groups</dt>
                  <dd>
                    {d.groupIds.length === 0
                      ? 'none'
                      : d.groupIds
                          .map((g) => groups.data?.deviceGroups.find((x) => x.id === g)?.name ?? g)
                          .join(', ')}
                  </dd>
                </dl>
              </section>
              <DeviceActions
                device={d}
                groups={groups.data?.deviceGroups ?? []}
                onChanged={(msg) => {
                  setNotice(msg);
                  device.reload();
                  keys.reload();
                  // A requested rotation is a timeline entry: show it without a reload.
                  recorded.reload();
                }}
                onDeleted={() => navigate('/devices', { replace: true })}
              />
            </div>
            <section aria-labelledby="dev-volumes">
              <h2 id="dev-volumes">Volumes</h2>
              {d.volumes.length === 0 ? (
                <Empty>No volume reported.</Empty>
              ) : (
                <div className="table-wrap">
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">Drive</th>
                        <th scope="col">Volume GUID</th>
                        <th scope="col">Encryption</th>
                        <th scope="col">Protection</th>
                        <th scope="col">Updated</th>
                      </tr>
                    </thead>
                    <tbody>
                      {d.volumes.map((v) => (
                        <tr key={v.id}>
                          <td>
                            {v.driveLetter ?? ''} {volumeLabel(v.volumeType)}
                          </td>
                          <td>
                            <code className="small">{v.volumeGuid}</code>
                          </td>
                          <td>{v.encryptionMethod ?? '—'}</td>
                          <td>{v.protectionStatus ?? '—'}</td>
                          <td>
                            <When iso={v.updatedAt} />
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              )}
            </section>
            <section aria-labelledby="dev-keys">
              <h2 id="dev-keys">Key history</h2>
              <Loaded state={keys} what="Loading keys">
                {({ recoveryKeys }) =>
                  recoveryKeys.length === 0 ? (
                    <Empty>No key escrowed for this device.</Empty>
                  ) : (
                    <KeyList
                      keys={recoveryKeys}
                      discloseBase="/api/recovery-keys"
                      canDisclose={can(me?.permissions, 'keys:disclose')}
                    />
                  )
                }
              </Loaded>
            </section>
            <section aria-labelledby="dev-timeline">
              <h2 id="dev-timeline">Timeline</h2>
              {recorded.data?.postRecovery.flagged && (
                <p className="alert alert-secret" role="status">
                  Flagged for post-recovery analysis: {recorded.data.postRecovery.recoveriesInWindow}{' '}
                  recoveries in {recorded.data.postRecovery.windowDays} days.
                </p>
              )}
              {timeline.length === 0 ? (
                <Empty>Nothing recorded yet.</Empty>
              ) : (
                <ol className="timeline">
                  {timeline.slice(0, 100).map((e, i) => (
                    <li key={i} className={`tl-${e.kind}`}>
                      <When iso={e.at} /> <span>{e.what}</span>
                    </li>
                  ))}
                </ol>
              )}
            </section>
          </>
        )}
      </Loaded>
    </>
  );
}

function DeviceActions({
  device,
  groups,
  onChanged,
  onDeleted,
}: {
  device: DeviceDetail;
  groups: DeviceGroup[];
  onChanged: (message: string) => void;
  onDeleted: () => void;
}) {
  const { me } = useSession();
  const isAdmin = can(me?.permissions, 'org:admin');
  const users = useAsync(
    () => (isAdmin ? get<{ users: User[] }>('/api/users') : Promise.resolve({ users: [] as User[] })),
    [isAdmin],
  );
  const [owner, setOwner] = useState(device.ownerUserId ?? '');
  const [group, setGroup] = useState('');
  const [confirmDelete, setConfirmDelete] = useState(false);
  const { busy, error, run } = useAction();
  const write = can(me?.permissions, 'devices:write');

  // A deleted device takes no more actions (the server refuses them); its keys stay for lookup.
  if (device.deletedAt) {
    return (
      <section className="panel" aria-labelledby="dev-actions">
        <h2 id="dev-actions">Actions</h2>
        <p className="muted" data-testid="device-deleted">
          This device was deleted <When iso={device.deletedAt} />. Its recovery keys are kept: they can still
          be found by key ID and their passwords viewed.
        </p>
      </section>
    );
  }

  return (
    <section className="panel" aria-labelledby="dev-actions">
      <h2 id="dev-actions">Actions</h2>
      <ErrorBox error={error} />
      {can(me?.permissions, 'rotation:request') && (
        <button
          type="button"
          disabled={busy}
          onClick={async () => {
            const r = await run(() =>
              post<{ created: number; alreadyOpen: number }>(`/api/devices/${device.id}/rotations`, {
                reason: 'requested from the portal',
              }),
            );
            if (r) {
              onChanged(
                r.created > 0
                  ? `Rotation requested for ${r.created} key(s): the device replaces them at its next check-in.`
                  : 'A rotation is already open for this device.',
              );
            }
          }}
        >
          Request key rotation
        </button>
      )}
      {write && (
        <form
          className="inline-form"
          aria-label="Change owner"
          onSubmit={async (e) => {
            e.preventDefault();
            const ok = await run(() =>
              api('PUT', `/api/devices/${device.id}/owner`, { ownerUserId: owner === '' ? null : owner }),
            );
            if (ok !== undefined) onChanged('Owner changed.');
          }}
        >
          <label>
            Owner
            {isAdmin && users.data ? (
              <select name="owner" value={owner} onChange={(e) => setOwner(e.target.value)}>
                <option value="">No owner</option>
                {users.data.users.map((u) => (
                  <option key={u.userId} value={u.userId}>
                    {u.displayName && u.displayName !== u.username
                      ? `${u.username} (${u.displayName})`
                      : u.username}
                  </option>
                ))}
              </select>
            ) : (
              <input
                value={owner}
                onChange={(e) => setOwner(e.target.value)}
                placeholder="user id (usr_…)"
                maxLength={40}
              />
            )}
          </label>
          <button type="submit" className="secondary" disabled={busy}>
            Change owner
          </button>
        </form>
      )}
      {write && groups.length > 0 && (
        <form
          className="inline-form"
          aria-label="Move to another group"
          onSubmit={async (e) => {
            e.preventDefault();
            if (!group) return;
            const add = [group];
            const remove = device.groupIds.filter((g) => g !== group);
            const ok = await run(() => post(`/api/devices/${device.id}/groups`, { add, remove }));
            if (ok !== undefined) onChanged('Device moved.');
          }}
        >
          <label>
            Move to group
            <select value={group} onChange={(e) => setGroup(e.target.value)}>
              <option value="">Choose a group…</option>
              {groups.map((g) => (
                <option key={g.id} value={g.id}>
                  {g.name}
                </option>
              ))}
            </select>
          </label>
          <button type="submit" className="secondary" disabled={busy || !group}>
            Move
          </button>
        </form>
      )}
      {can(me?.permissions, 'devices:delete') && !device.deletedAt && (
        <div className="danger-zone">
          {confirmDelete ? (
            <div role="alertdialog" aria-labelledby="del-q" className="stack">
              <p id="del-q">
                Delete <strong>{device.name}</strong>? Its recovery keys are kept and can still be found by
                key ID.
              </p>
              <div className="row">
                <button
                  type="button"
                  className="danger"
                  disabled={busy}
                  onClick={async () => {
                    if ((await run(() => api('DELETE', `/api/devices/${device.id}`))) !== undefined)
                      onDeleted();
                  }}
                >
                  Yes, delete the device
                </button>
                <button type="button" className="secondary" onClick={() => setConfirmDelete(false)}>
                  Cancel
                </button>
              </div>
            </div>
          ) : (
            <button type="button" className="danger" onClick={() => setConfirmDelete(true)}>
              Delete device (keys kept)
            </button>
          )}
        </div>
      )}
      {!write && !can(me?.permissions, 'devices:delete') && (
        <p className="muted">You can view this device only.</p>
      )}
    </section>
  );
}
