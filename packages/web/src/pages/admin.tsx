/** Administration: users, roles, device groups with scoped assignments, policies, tokens. */
import { useState, type FormEvent } from 'react';
import {
  api,
  get,
  organizationWideGrants,
  post,
  PERMISSIONS,
  type ApiToken,
  type EnrollmentTokenSummary,
  type DeviceGroup,
  type Invitation,
  type OrgSettings,
  type Role,
  type RoleAssignment,
  type User,
} from '../api.tsx';
import { useSession } from '../session.tsx';
import { Empty, ErrorBox, Loaded, ShownOnce, shortId, useAction, useAsync, usePaged, When } from '../ui.tsx';

function useUsers() {
  return useAsync(() => get<{ users: User[] }>('/api/users'), []);
}

export function UsersPage() {
  const users = useUsers();
  const [username, setUsername] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [email, setEmail] = useState('');
  const [secret, setSecret] = useState<{ label: string; value: string } | undefined>();
  const { busy, error, run } = useAction();

  const create = async (e: FormEvent) => {
    e.preventDefault();
    const r = await run(() =>
      post<{ userId: string; oneTimePassword: string }>('/api/users', {
        username,
        ...(displayName ? { displayName } : {}),
        ...(email ? { email } : {}),
      }),
    );
    if (r) {
      setSecret({ label: `One-time password for ${username}.`, value: r.oneTimePassword });
      setUsername('');
      setDisplayName('');
      setEmail('');
      users.reload();
    }
  };
  const act = async (u: User, what: UserAction) => {
    const r = await run(() =>
      what === 'remove'
        ? api<null>('DELETE', `/api/organization/members/${u.userId}`)
        : post<{ oneTimePassword?: string } | null>(`/api/users/${u.userId}/${what}`),
    );
    if (r && 'oneTimePassword' in r && r.oneTimePassword) {
      setSecret({ label: `New one-time password for ${u.username}.`, value: r.oneTimePassword });
    }
    users.reload();
  };

  return (
    <>
      <h1>Users</h1>
      {secret && <ShownOnce label={secret.label} value={secret.value} onDone={() => setSecret(undefined)} />}
      <form className="panel inline-form" onSubmit={create} aria-labelledby="new-user">
        <h2 id="new-user">Add a user</h2>
        <label>
          User name
          <input
            name="new-username"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            required
            maxLength={256}
          />
        </label>
        <label>
          Display name
          <input value={displayName} onChange={(e) => setDisplayName(e.target.value)} maxLength={200} />
        </label>
        <label>
          E-mail <span className="hint">for helpdesk identity codes and notices</span>
          <input
            name="new-email"
            type="email"
            value={email}
            onChange={(e) => setEmail(e.target.value)}
            maxLength={254}
          />
        </label>
        <button type="submit" disabled={busy}>
          Add user
        </button>
        <p className="hint">
          Give the user a role under Roles &amp; groups. They change the one-time password at first sign-in.
        </p>
      </form>
      <InviteSection onAnswered={() => users.reload()} />
      <ErrorBox error={error} />
      <Loaded state={users} what="Loading users">
        {({ users: list }) => (
          <UserTable users={list} act={act} busy={busy} onEdited={() => users.reload()} />
        )}
      </Loaded>
    </>
  );
}

type UserAction = 'reset-password' | 'disable' | 'enable' | 'revoke-sessions' | 'remove';

/**
 * Another organization's account (an MSP technician, say) joins only if it accepts: the
 * administrator invites a user name, and the answer is the same whether or not it exists.
 */
function InviteSection({ onAnswered }: { onAnswered: () => void }) {
  const roles = useAsync(() => get<{ roles: Role[] }>('/api/roles'), []);
  const groups = useAsync(() => get<{ deviceGroups: DeviceGroup[] }>('/api/device-groups'), []);
  const invitations = useAsync(() => get<{ invitations: Invitation[] }>('/api/organization/invitations'), []);
  const [username, setUsername] = useState('');
  const [roleId, setRoleId] = useState('');
  const [scope, setScope] = useState<string[]>([]);
  const [sent, setSent] = useState<string | undefined>();
  const { busy, error, run } = useAction();
  const roleName = (id: string) => roles.data?.roles.find((r) => r.id === id)?.name ?? id;
  const groupName = (id: string) => groups.data?.deviceGroups.find((g) => g.id === id)?.name ?? shortId(id);

  const invite = async (e: FormEvent) => {
    e.preventDefault();
    setSent(undefined);
    const r = await run(() =>
      post<Invitation>('/api/organization/invitations', {
        username,
        roleId,
        ...(scope.length > 0 ? { deviceGroupIds: scope } : {}),
      }),
    );
    if (r) {
      setSent(
        `Invitation recorded for ${r.username}. If an account has that name, it can accept under My account until ${new Date(r.expiresAt).toLocaleDateString()}.`,
      );
      setUsername('');
      setScope([]);
      invitations.reload();
    }
  };

  return (
    <section className="panel" aria-labelledby="invite-title">
      <h2 id="invite-title">Invite an existing account</h2>
      <p className="hint">
        For someone who already has an account in another organization (an MSP technician, say). They join
        with the role you choose once they accept; their account stays managed by its own organization.
      </p>
      <form className="stack" onSubmit={invite} aria-label="Invite an existing account">
        <div className="inline-form">
          <label>
            Account to invite <span className="hint">its sign-in name</span>
            <input
              name="invite-username"
              value={username}
              onChange={(e) => setUsername(e.target.value)}
              required
              maxLength={100}
            />
          </label>
          <label>
            Role
            <select name="invite-role" value={roleId} onChange={(e) => setRoleId(e.target.value)} required>
              <option value="">Choose a role…</option>
              {(roles.data?.roles ?? []).map((r) => (
                <option key={r.id} value={r.id}>
                  {r.name}
                </option>
              ))}
            </select>
          </label>
        </div>
        {(groups.data?.deviceGroups.length ?? 0) > 0 && (
          <fieldset className="checks">
            <legend>Scope: leave all unticked for the whole organization, or limit to device groups</legend>
            {groups.data!.deviceGroups.map((g) => (
              <label key={g.id} className="check">
                <input
                  type="checkbox"
                  name="invite-group"
                  value={g.name}
                  checked={scope.includes(g.id)}
                  onChange={(e) =>
                    setScope(e.target.checked ? [...scope, g.id] : scope.filter((x) => x !== g.id))
                  }
                />
                {g.name}
              </label>
            ))}
          </fieldset>
        )}
        <button type="submit" disabled={busy}>
          Send invitation
        </button>
      </form>
      {sent && (
        <p className="alert alert-ok" role="status">
          {sent}
        </p>
      )}
      <ErrorBox error={error} />
      <h3>Pending invitations</h3>
      <Loaded state={invitations} what="Loading invitations">
        {({ invitations: list }) => {
          const pending = list.filter((i) => i.status === 'pending');
          return pending.length === 0 ? (
            <Empty>No pending invitation.</Empty>
          ) : (
            <div className="table-wrap">
              <table data-testid="invitations">
                <caption className="visually-hidden">Pending invitations</caption>
                <thead>
                  <tr>
                    <th scope="col">User name</th>
                    <th scope="col">Role</th>
                    <th scope="col">Scope</th>
                    <th scope="col">Sent</th>
                    <th scope="col">Expires</th>
                    <th scope="col">
                      <span className="visually-hidden">Actions</span>
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {pending.map((i) => (
                    <tr key={i.id}>
                      <td>{i.username}</td>
                      <td>{roleName(i.roleId)}</td>
                      <td>
                        {i.deviceGroupIds
                          ? `Groups: ${i.deviceGroupIds.map(groupName).join(', ')}`
                          : 'Whole organization'}
                      </td>
                      <td>
                        <When iso={i.createdAt} />
                      </td>
                      <td>
                        <When iso={i.expiresAt} />
                      </td>
                      <td>
                        <button
                          type="button"
                          className="secondary small"
                          disabled={busy}
                          aria-label={`Revoke the invitation of ${i.username}`}
                          onClick={async () => {
                            await run(() => api('DELETE', `/api/organization/invitations/${i.id}`));
                            invitations.reload();
                            onAnswered();
                          }}
                        >
                          Revoke
                        </button>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          );
        }}
      </Loaded>
    </section>
  );
}

/** Suspends a member in this organization only, with the reason the audit log keeps. */
function SuspendMember({ user, onDone }: { user: User; onDone: (suspended: boolean) => void }) {
  const [reason, setReason] = useState('');
  const { busy, error, run } = useAction();
  return (
    <form
      className="stack"
      aria-label={`Suspend ${user.username} here`}
      onSubmit={async (e) => {
        e.preventDefault();
        const ok = await run(() => post('/api/account-suspensions', { userId: user.userId, reason }));
        if (ok !== undefined) onDone(true);
      }}
    >
      <label>
        Reason <span className="hint">kept in the audit log</span>
        <input
          name="suspend-reason"
          value={reason}
          onChange={(e) => setReason(e.target.value)}
          required
          maxLength={500}
        />
      </label>
      <div className="row">
        <button type="submit" className="small" disabled={busy}>
          Suspend here
        </button>
        <button type="button" className="secondary small" onClick={() => onDone(false)}>
          Cancel
        </button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

/** Changes a user's display name and e-mail address (identity codes and notices go there). */
function EditUser({ user, onDone }: { user: User; onDone: (saved: boolean) => void }) {
  const [displayName, setDisplayName] = useState(user.displayName ?? '');
  const [email, setEmail] = useState(user.email ?? '');
  const { busy, error, run } = useAction();
  const save = async (e: FormEvent) => {
    e.preventDefault();
    const name = displayName.trim();
    const address = email.trim();
    const body = {
      ...(name !== '' && name !== (user.displayName ?? '') ? { displayName: name } : {}),
      // An empty field removes the address; the server takes null for that.
      ...(address !== (user.email ?? '') ? { email: address === '' ? null : address } : {}),
    };
    if (Object.keys(body).length === 0) return onDone(false);
    const ok = await run(() => api('PATCH', `/api/users/${user.userId}`, body));
    if (ok !== undefined) onDone(true);
  };
  return (
    <form className="edit-user stack" onSubmit={save} aria-label={`Edit ${user.username}`}>
      <label>
        Display name
        <input
          name="edit-display-name"
          value={displayName}
          onChange={(e) => setDisplayName(e.target.value)}
          maxLength={200}
        />
      </label>
      <label>
        E-mail <span className="hint">empty to remove</span>
        <input
          name="edit-email"
          type="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          maxLength={254}
        />
      </label>
      <div className="row">
        <button type="submit" className="small" disabled={busy}>
          Save
        </button>
        <button type="button" className="secondary small" onClick={() => onDone(false)}>
          Cancel
        </button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

function UserTable({
  users,
  act,
  busy,
  onEdited,
}: {
  users: User[];
  act: (u: User, what: UserAction) => void;
  busy: boolean;
  onEdited: () => void;
}) {
  const { me } = useSession();
  const { items, pager } = usePaged(users, 25);
  const [editing, setEditing] = useState<string | undefined>();
  const [suspending, setSuspending] = useState<string | undefined>();
  const [confirmRemove, setConfirmRemove] = useState<string | undefined>();
  const [saved, setSaved] = useState<string | undefined>();
  return (
    <>
      {saved && (
        <p className="alert alert-ok" role="status">
          {saved}
        </p>
      )}
      <div className="table-wrap">
        <table>
          <caption className="visually-hidden">Users</caption>
          <thead>
            <tr>
              <th scope="col">User</th>
              <th scope="col">Source</th>
              <th scope="col">Permissions</th>
              <th scope="col">Created</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {items.map((u) => (
              <tr key={u.userId}>
                <td>
                  <strong>{u.username}</strong>
                  {editing === u.userId ? (
                    <EditUser
                      user={u}
                      onDone={(changed) => {
                        setEditing(undefined);
                        if (changed) {
                          setSaved(`Saved ${u.username}.`);
                          onEdited();
                        }
                      }}
                    />
                  ) : (
                    <>
                      {u.displayName && u.displayName !== u.username && (
                        <div className="muted small">{u.displayName}</div>
                      )}
                      {u.email && <div className="muted small">{u.email}</div>}
                    </>
                  )}
                  {u.disabledAt && <span className="badge badge-superseded">disabled</span>}
                  {u.mustChangePassword && (
                    <span className="badge badge-rotation_pending">one-time password</span>
                  )}
                  {u.managedHere === false && (
                    <>
                      <span className="badge">managed elsewhere</span>
                      <p className="hint" data-testid="managed-elsewhere">
                        Another organization manages this account: only its administrators can reset the
                        password, change the profile or e-mail, disable the account or sign it out everywhere.
                        Here you can suspend or remove the membership.
                      </p>
                    </>
                  )}
                  {suspending === u.userId && (
                    <SuspendMember
                      user={u}
                      onDone={(done) => {
                        setSuspending(undefined);
                        if (done) setSaved(`Suspended ${u.username} in this organization.`);
                      }}
                    />
                  )}
                  {confirmRemove === u.userId && (
                    <div role="alertdialog" aria-labelledby={`remove-q-${u.userId}`} className="stack">
                      <p id={`remove-q-${u.userId}`}>
                        Remove <strong>{u.username}</strong> from this organization? Their roles, device
                        groups and sessions here end; their account stays with its own organization.
                      </p>
                      <div className="row">
                        <button
                          type="button"
                          className="danger small"
                          disabled={busy}
                          onClick={() => {
                            setConfirmRemove(undefined);
                            act(u, 'remove');
                          }}
                        >
                          Yes, remove from this organization
                        </button>
                        <button
                          type="button"
                          className="secondary small"
                          onClick={() => setConfirmRemove(undefined)}
                        >
                          Cancel
                        </button>
                      </div>
                    </div>
                  )}
                </td>
                <td>{u.authSource}</td>
                <td className="small">{u.permissions.join(', ') || <span className="muted">none</span>}</td>
                <td>
                  <When iso={u.createdAt} />
                </td>
                <td className="actions">
                  {u.managedHere === false ? (
                    <button
                      type="button"
                      className="secondary small"
                      disabled={busy}
                      aria-label={`Remove ${u.username} from this organization`}
                      onClick={() => {
                        setSaved(undefined);
                        setConfirmRemove(u.userId);
                      }}
                    >
                      Remove from organization
                    </button>
                  ) : (
                    <AccountActions
                      user={u}
                      act={act}
                      busy={busy}
                      canEdit={editing !== u.userId}
                      onEdit={() => {
                        setSaved(undefined);
                        setEditing(u.userId);
                      }}
                    />
                  )}
                  {u.userId !== me?.userId && suspending !== u.userId && (
                    <button
                      type="button"
                      className="secondary small"
                      disabled={busy}
                      aria-label={`Suspend ${u.username} here`}
                      onClick={() => {
                        setSaved(undefined);
                        setSuspending(u.userId);
                      }}
                    >
                      Suspend here
                    </button>
                  )}
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

/** What only the organization that manages the account can do: it acts on the account everywhere. */
function AccountActions({
  user: u,
  act,
  busy,
  canEdit,
  onEdit,
}: {
  user: User;
  act: (u: User, what: UserAction) => void;
  busy: boolean;
  canEdit: boolean;
  onEdit: () => void;
}) {
  return (
    <>
      {canEdit && (
        <button
          type="button"
          className="secondary small"
          disabled={busy}
          aria-label={`Edit ${u.username}`}
          onClick={onEdit}
        >
          Edit
        </button>
      )}
      {u.authSource === 'local' && (
        <button
          type="button"
          className="secondary small"
          disabled={busy}
          onClick={() => act(u, 'reset-password')}
        >
          Reset password
        </button>
      )}
      {u.disabledAt ? (
        <button type="button" className="secondary small" disabled={busy} onClick={() => act(u, 'enable')}>
          Enable
        </button>
      ) : (
        <button type="button" className="secondary small" disabled={busy} onClick={() => act(u, 'disable')}>
          Disable
        </button>
      )}
      <button
        type="button"
        className="secondary small"
        disabled={busy}
        onClick={() => act(u, 'revoke-sessions')}
      >
        Sign out everywhere
      </button>
    </>
  );
}

export function RolesPage() {
  const roles = useAsync(() => get<{ roles: Role[] }>('/api/roles'), []);
  const groups = useAsync(() => get<{ deviceGroups: DeviceGroup[] }>('/api/device-groups'), []);
  const assignments = useAsync(() => get<{ roleAssignments: RoleAssignment[] }>('/api/role-assignments'), []);
  const users = useUsers();
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [perms, setPerms] = useState<string[]>([]);
  const { busy, error, run } = useAction();

  const roleName = (id: string) => roles.data?.roles.find((r) => r.id === id)?.name ?? id;
  const userName = (id: string | null) =>
    id ? (users.data?.users.find((u) => u.userId === id)?.username ?? shortId(id)) : '';
  const groupName = (id: string) => groups.data?.deviceGroups.find((g) => g.id === id)?.name ?? shortId(id);

  return (
    <>
      <h1>Roles &amp; groups</h1>
      <ErrorBox error={error} />
      <AssignmentForm
        roles={roles.data?.roles ?? []}
        users={users.data?.users ?? []}
        groups={groups.data?.deviceGroups ?? []}
        onDone={() => assignments.reload()}
      />
      <section aria-labelledby="assignments-title">
        <h2 id="assignments-title">Role assignments</h2>
        <Loaded state={assignments} what="Loading assignments">
          {({ roleAssignments }) =>
            roleAssignments.length === 0 ? (
              <Empty>No assignment yet.</Empty>
            ) : (
              <div className="table-wrap">
                <table data-testid="assignments">
                  <thead>
                    <tr>
                      <th scope="col">Who</th>
                      <th scope="col">Role</th>
                      <th scope="col">Scope</th>
                      <th scope="col">Since</th>
                      <th scope="col">
                        <span className="visually-hidden">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {roleAssignments.map((a) => (
                      <tr key={a.id}>
                        <td>{a.userId ? userName(a.userId) : `directory group ${a.externalGroup ?? ''}`}</td>
                        <td>{roleName(a.roleId)}</td>
                        <td>
                          {a.deviceGroupIds && a.deviceGroupIds.length > 0
                            ? `Groups: ${a.deviceGroupIds.map(groupName).join(', ')}`
                            : 'Whole organization'}
                        </td>
                        <td>
                          <When iso={a.createdAt} />
                        </td>
                        <td>
                          <button
                            type="button"
                            className="secondary small"
                            disabled={busy}
                            aria-label={`Remove ${roleName(a.roleId)} from ${a.userId ? userName(a.userId) : `directory group ${a.externalGroup ?? ''}`}`}
                            onClick={async () => {
                              await run(() => api('DELETE', `/api/role-assignments/${a.id}`));
                              assignments.reload();
                            }}
                          >
                            Remove
                          </button>
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Loaded>
      </section>
      <GroupsSection groups={groups} />
      <section aria-labelledby="roles-title">
        <h2 id="roles-title">Roles</h2>
        <Loaded state={roles} what="Loading roles">
          {({ roles: list }) => (
            <ul className="cards">
              {list.map((r) => (
                <li key={r.id} className="card">
                  <h3>
                    {r.name}{' '}
                    {r.builtIn ? (
                      <span className="badge">built-in</span>
                    ) : (
                      <span className="badge badge-active">custom</span>
                    )}
                  </h3>
                  {r.description && <p className="small">{r.description}</p>}
                  <p className="small mono">{r.permissions.join(' ')}</p>
                  {!r.builtIn && (
                    <button
                      type="button"
                      className="secondary small"
                      disabled={busy}
                      aria-label={`Delete role ${r.name}`}
                      onClick={async () => {
                        await run(() => api('DELETE', `/api/roles/${r.id}`));
                        roles.reload();
                      }}
                    >
                      Delete role
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
        </Loaded>
        <form
          className="panel"
          aria-labelledby="new-role-title"
          onSubmit={async (e) => {
            e.preventDefault();
            const r = await run(() =>
              post<Role>('/api/roles', { name, permissions: perms, ...(description ? { description } : {}) }),
            );
            if (r) {
              setName('');
              setDescription('');
              setPerms([]);
              roles.reload();
            }
          }}
        >
          <h3 id="new-role-title">New custom role</h3>
          <div className="inline-form">
            <label>
              Name
              <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
            </label>
            <label className="grow">
              Description
              <input value={description} onChange={(e) => setDescription(e.target.value)} maxLength={500} />
            </label>
          </div>
          <fieldset className="checks">
            <legend>Permissions</legend>
            {PERMISSIONS.map((p) => (
              <label key={p} className="check">
                <input
                  type="checkbox"
                  checked={perms.includes(p)}
                  onChange={(e) => setPerms(e.target.checked ? [...perms, p] : perms.filter((x) => x !== p))}
                />
                <code>{p}</code>
              </label>
            ))}
          </fieldset>
          <button type="submit" disabled={busy || perms.length === 0}>
            Create role
          </button>
        </form>
      </section>
    </>
  );
}

function AssignmentForm({
  roles,
  users,
  groups,
  onDone,
}: {
  roles: Role[];
  users: User[];
  groups: DeviceGroup[];
  onDone: () => void;
}) {
  const [userId, setUserId] = useState('');
  const [roleId, setRoleId] = useState('');
  const [scope, setScope] = useState<string[]>([]);
  const { busy, error, run } = useAction();
  const role = roles.find((r) => r.id === roleId);
  // Limited to device groups, a role gives only its device and key permissions (the server's rule).
  const notGiven = scope.length > 0 && role ? organizationWideGrants(role.permissions) : [];
  return (
    <form
      className="panel"
      aria-labelledby="assign-title"
      onSubmit={async (e) => {
        e.preventDefault();
        const r = await run(() =>
          post<RoleAssignment>('/api/role-assignments', {
            roleId,
            userId,
            ...(scope.length > 0 ? { deviceGroupIds: scope } : {}),
          }),
        );
        if (r) {
          setScope([]);
          onDone();
        }
      }}
    >
      <h2 id="assign-title">Assign a role</h2>
      <div className="inline-form">
        <label>
          User
          <select name="assign-user" value={userId} onChange={(e) => setUserId(e.target.value)} required>
            <option value="">Choose a user…</option>
            {users.map((u) => (
              <option key={u.userId} value={u.userId}>
                {u.username}
              </option>
            ))}
          </select>
        </label>
        <label>
          Role
          <select name="assign-role" value={roleId} onChange={(e) => setRoleId(e.target.value)} required>
            <option value="">Choose a role…</option>
            {roles.map((r) => (
              <option key={r.id} value={r.id}>
                {r.name}
              </option>
            ))}
          </select>
        </label>
      </div>
      <fieldset className="checks">
        <legend>Scope: leave all unticked for the whole organization, or limit to device groups</legend>
        {groups.length === 0 && <span className="muted">No device group yet.</span>}
        {groups.map((g) => (
          <label key={g.id} className="check">
            <input
              type="checkbox"
              name="assign-group"
              value={g.name}
              checked={scope.includes(g.id)}
              onChange={(e) =>
                setScope(e.target.checked ? [...scope, g.id] : scope.filter((x) => x !== g.id))
              }
            />
            {g.name}
          </label>
        ))}
      </fieldset>
      {notGiven.length > 0 && (
        <p className="hint" role="status" data-testid="scope-note">
          Limited to device groups, {role?.name} gives only its device and key permissions, on those groups.{' '}
          {notGiven.join(', ')} {notGiven.length === 1 ? 'is' : 'are'} about the whole organization and{' '}
          {notGiven.length === 1 ? 'needs' : 'need'} an assignment without device groups.
        </p>
      )}
      <ErrorBox error={error} />
      <button type="submit" disabled={busy}>
        Assign
      </button>
    </form>
  );
}

function GroupsSection({ groups }: { groups: ReturnType<typeof useAsync<{ deviceGroups: DeviceGroup[] }>> }) {
  const [name, setName] = useState('');
  const [open, setOpen] = useState<string | undefined>();
  const { busy, error, run } = useAction();
  return (
    <section aria-labelledby="groups-title">
      <h2 id="groups-title">Device groups</h2>
      <ErrorBox error={error} />
      <Loaded state={groups} what="Loading groups">
        {({ deviceGroups }) =>
          deviceGroups.length === 0 ? (
            <Empty>No device group yet. Enrollment tokens can put new devices in a group.</Empty>
          ) : (
            <ul className="list">
              {deviceGroups.map((g) => (
                <li key={g.id}>
                  <strong>{g.name}</strong>{' '}
                  <button
                    type="button"
                    className="link"
                    onClick={() => setOpen(open === g.id ? undefined : g.id)}
                    aria-expanded={open === g.id}
                    aria-label={`Members of ${g.name}`}
                  >
                    members
                  </button>{' '}
                  <button
                    type="button"
                    className="link danger-text"
                    disabled={busy}
                    aria-label={`Delete group ${g.name}`}
                    onClick={async () => {
                      await run(() => api('DELETE', `/api/device-groups/${g.id}`));
                      groups.reload();
                    }}
                  >
                    delete
                  </button>
                  {open === g.id && <GroupMembers groupId={g.id} />}
                </li>
              ))}
            </ul>
          )
        }
      </Loaded>
      <form
        className="inline-form"
        aria-label="New device group"
        onSubmit={async (e) => {
          e.preventDefault();
          if (await run(() => post('/api/device-groups', { name }))) {
            setName('');
            groups.reload();
          }
        }}
      >
        <label>
          New group
          <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
        </label>
        <button type="submit" className="secondary" disabled={busy}>
          Create group
        </button>
      </form>
    </section>
  );
}

function GroupMembers({ groupId }: { groupId: string }) {
  const members = useAsync(
    () => get<{ deviceIds: string[]; userIds: string[] }>(`/api/device-groups/${groupId}/members`),
    [groupId],
  );
  return (
    <Loaded state={members} what="Loading members">
      {(m) => (
        <p className="small">
          {m.deviceIds.length} device(s)
          {m.deviceIds.length > 0 && `: ${m.deviceIds.slice(0, 20).map(shortId).join(', ')}`};{' '}
          {m.userIds.length} user(s) whose devices belong to it.
        </p>
      )}
    </Loaded>
  );
}

/**
 * MFA for everyone who can disclose keys. The server applies it at once, to sessions already open
 * too, so an administrator without a second factor is sent to set one up right after turning it on.
 */
function MfaPolicy() {
  const policy = useAsync(() => get<{ requireMfaForDisclosure: boolean }>('/api/auth/mfa-policy'), []);
  // The checkbox follows the click at once; a refused change puts it back.
  const [value, setValue] = useState<boolean | undefined>();
  const [saved, setSaved] = useState(false);
  const { busy, error, run } = useAction();
  return (
    <Loaded state={policy} what="Loading MFA policy">
      {(m) => (
        <section className="panel" aria-labelledby="mfa-policy">
          <h2 id="mfa-policy">Multi-factor authentication</h2>
          <label className="check">
            <input
              type="checkbox"
              name="requireMfaForDisclosure"
              checked={value ?? m.requireMfaForDisclosure}
              disabled={busy}
              aria-describedby="mfa-policy-hint"
              onChange={async (e) => {
                const next = e.target.checked;
                setSaved(false);
                setValue(next);
                if (await run(() => api('PUT', '/api/auth/mfa-policy', { requireMfaForDisclosure: next }))) {
                  setSaved(true);
                  policy.reload();
                } else {
                  setValue(undefined);
                }
              }}
            />
            Require MFA for every account that can disclose keys
          </label>
          <p className="hint" id="mfa-policy-hint">
            It holds at once, for sessions already open too: whoever can disclose keys and has no
            authenticator app or passkey (you too) is asked to set one up before going on.
          </p>
          {saved && (
            <p className="alert alert-ok" role="status">
              MFA policy saved.
            </p>
          )}
          <ErrorBox error={error} />
        </section>
      )}
    </Loaded>
  );
}

function RotationPolicy() {
  const policy = useAsync(
    () => get<{ singleUsePasswords: boolean; deadlineDays: number }>('/api/rotation-policy'),
    [],
  );
  const [saved, setSaved] = useState(false);
  const { busy, error, run } = useAction();
  return (
    <Loaded state={policy} what="Loading rotation policy">
      {(p) => (
        <form
          className="panel"
          aria-labelledby="rot-policy"
          onSubmit={async (e) => {
            e.preventDefault();
            const f = new FormData(e.currentTarget);
            const body = {
              singleUsePasswords: f.get('single-use') === 'on',
              deadlineDays: Number(f.get('deadline')),
            };
            setSaved(false);
            if (await run(() => api('PATCH', '/api/rotation-policy', body))) {
              setSaved(true);
              policy.reload();
            }
          }}
        >
          <h2 id="rot-policy">Rotation</h2>
          <label className="check">
            <input type="checkbox" name="single-use" defaultChecked={p.singleUsePasswords} />
            Single-use passwords: a disclosed password is replaced by the device
          </label>
          <div className="inline-form">
            <label>
              Rotation deadline (days)
              <input name="deadline" type="number" min={1} max={365} defaultValue={p.deadlineDays} />
            </label>
            <button type="submit" className="secondary" disabled={busy}>
              Save rotation policy
            </button>
          </div>
          {saved && (
            <p className="alert alert-ok" role="status">
              Rotation policy saved.
            </p>
          )}
          <ErrorBox error={error} />
        </form>
      )}
    </Loaded>
  );
}

const IDENTITY_METHODS: [string, string][] = [
  ['email-code', 'One-time code to the user’s e-mail'],
  ['second-person', 'Approval by a second person'],
  ['attested', 'In person or call-back, attested with a note'],
];

function CasePolicy() {
  const policy = useAsync(
    () =>
      get<{
        identityMethods: string[];
        requireDisclosureApproval: boolean;
        allowRootCauseAfterDisclosure: boolean;
      }>('/api/recovery-cases/policy'),
    [],
  );
  const [saved, setSaved] = useState(false);
  const [noMethod, setNoMethod] = useState(false);
  const { busy, error, run } = useAction();
  return (
    <Loaded state={policy} what="Loading helpdesk policy">
      {(p) => (
        <form
          className="panel"
          aria-labelledby="case-policy"
          onSubmit={async (e) => {
            e.preventDefault();
            const f = new FormData(e.currentTarget);
            const body = {
              identityMethods: f.getAll('identity-method').map(String),
              requireDisclosureApproval: f.get('approval') === 'on',
              allowRootCauseAfterDisclosure: f.get('root-cause-after') === 'on',
            };
            setSaved(false);
            // The helpdesk needs at least one way to verify who is calling.
            setNoMethod(body.identityMethods.length === 0);
            if (body.identityMethods.length === 0) return;
            if (await run(() => api('PUT', '/api/recovery-cases/policy', body))) {
              setSaved(true);
              policy.reload();
            }
          }}
        >
          <h2 id="case-policy">Helpdesk recovery</h2>
          <fieldset className="checks" aria-describedby={noMethod ? 'no-identity-method' : undefined}>
            <legend>Allowed identity-verification methods</legend>
            {IDENTITY_METHODS.map(([v, l]) => (
              <label key={v} className="check">
                <input
                  type="checkbox"
                  name="identity-method"
                  value={v}
                  defaultChecked={p.identityMethods.includes(v)}
                />
                {l}
              </label>
            ))}
          </fieldset>
          <label className="check">
            <input type="checkbox" name="approval" defaultChecked={p.requireDisclosureApproval} />A second
            person approves before a password is given
          </label>
          <label className="check">
            <input type="checkbox" name="root-cause-after" defaultChecked={p.allowRootCauseAfterDisclosure} />
            Root-cause questions may be answered after the password is given
          </label>
          {noMethod && (
            <p className="field-error" role="alert" id="no-identity-method">
              Choose at least one identity-verification method: the helpdesk needs one to verify who is
              calling.
            </p>
          )}
          <button type="submit" className="secondary" disabled={busy}>
            Save helpdesk policy
          </button>
          {saved && (
            <p className="alert alert-ok" role="status">
              Helpdesk policy saved.
            </p>
          )}
          <ErrorBox error={error} />
        </form>
      )}
    </Loaded>
  );
}

export function PoliciesPage() {
  const settings = useAsync(() => get<OrgSettings>('/api/organization/settings'), []);
  const suspensions = useAsync(
    () =>
      get<{
        suspensions: {
          id: string;
          subjectType: string;
          subjectId: string;
          reason: string;
          createdAt: string;
          liftedAt: string | null;
        }[];
      }>('/api/account-suspensions'),
    [],
  );
  const { busy, error, run } = useAction();
  const [saved, setSaved] = useState<string | undefined>();

  // The checkbox follows the click at once; a refused change puts it back.
  const [restrict, setRestrict] = useState<boolean | undefined>();
  const patch = async (body: Partial<OrgSettings>) => {
    setSaved(undefined);
    if (body.restrictOwnerKeyRecovery !== undefined) setRestrict(body.restrictOwnerKeyRecovery);
    if (await run(() => api('PATCH', '/api/organization/settings', body))) {
      settings.reload();
      setSaved('Saved.');
    } else {
      setRestrict(undefined);
    }
  };

  return (
    <>
      <h1>Policies</h1>
      <ErrorBox error={error} />
      {saved && (
        <p className="alert alert-ok" role="status">
          {saved}
        </p>
      )}
      <Loaded state={settings} what="Loading settings">
        {(s) => (
          <section className="panel" aria-labelledby="ss-policy">
            <h2 id="ss-policy">Self-service</h2>
            <label className="check">
              <input
                type="checkbox"
                name="restrictOwnerKeyRecovery"
                checked={restrict ?? s.restrictOwnerKeyRecovery}
                disabled={busy}
                onChange={(e) => void patch({ restrictOwnerKeyRecovery: e.target.checked })}
              />
              Restrict users from recovering the BitLocker key(s) for their owned devices
            </label>
            <p className="hint">When on, device owners see a page telling them to contact the helpdesk.</p>
            <form
              className="stack"
              aria-labelledby="ss-contact"
              onSubmit={(e) => {
                e.preventDefault();
                const f = new FormData(e.currentTarget);
                const text = String(f.get('contactText') ?? '').trim();
                const link = String(f.get('contactLink') ?? '').trim();
                void patch({
                  selfServiceContactText: text === '' ? null : text,
                  selfServiceContactLink: link === '' ? null : link,
                });
              }}
            >
              <h3 id="ss-contact">What that page tells them</h3>
              <label>
                Contact text <span className="hint">optional, up to 500 characters</span>
                <textarea
                  name="contactText"
                  rows={3}
                  maxLength={500}
                  defaultValue={s.selfServiceContactText ?? ''}
                  placeholder="Call the service desk on 555-0100, weekdays 8–18."
                />
              </label>
              <label>
                Contact link <span className="hint">optional, https: or mailto:</span>
                <input
                  name="contactLink"
                  type="text"
                  inputMode="url"
                  maxLength={500}
                  pattern="(https://|mailto:).+"
                  title="A link starting with https:// or mailto:"
                  defaultValue={s.selfServiceContactLink ?? ''}
                  placeholder="https://help.example.com/bitlocker or mailto:helpdesk@example.com"
                />
              </label>
              <button type="submit" className="secondary" disabled={busy}>
                Save contact
              </button>
            </form>
            <h2>Disclosure alerts</h2>
            <form
              className="inline-form"
              onSubmit={(e) => {
                e.preventDefault();
                const f = new FormData(e.currentTarget);
                void patch({
                  disclosureAlertThreshold: Number(f.get('threshold')),
                  disclosureAlertWindowMinutes: Number(f.get('window')),
                  suspendOnDisclosureAlert: f.get('suspend') === 'on',
                });
              }}
            >
              <label>
                Alert after this many disclosures
                <input
                  name="threshold"
                  type="number"
                  min={1}
                  max={10000}
                  defaultValue={s.disclosureAlertThreshold}
                />
              </label>
              <label>
                within (minutes)
                <input
                  name="window"
                  type="number"
                  min={1}
                  max={10080}
                  defaultValue={s.disclosureAlertWindowMinutes}
                />
              </label>
              <label className="check">
                <input name="suspend" type="checkbox" defaultChecked={s.suspendOnDisclosureAlert} />
                Suspend the account automatically
              </label>
              <button type="submit" className="secondary" disabled={busy}>
                Save alert settings
              </button>
            </form>
          </section>
        )}
      </Loaded>
      <MfaPolicy />
      <RotationPolicy />
      <CasePolicy />
      <section aria-labelledby="susp-title">
        <h2 id="susp-title">Suspended accounts</h2>
        <Loaded state={suspensions} what="Loading suspensions">
          {({ suspensions: list }) =>
            list.filter((x) => !x.liftedAt).length === 0 ? (
              <Empty>No account is suspended.</Empty>
            ) : (
              <ul className="list">
                {list
                  .filter((x) => !x.liftedAt)
                  .map((x) => (
                    <li key={x.id}>
                      {x.subjectType} <code>{x.subjectId}</code>: {x.reason} (<When iso={x.createdAt} />){' '}
                      <button
                        type="button"
                        className="secondary small"
                        onClick={async () => {
                          await run(() => api('DELETE', `/api/account-suspensions/${x.id}`));
                          suspensions.reload();
                        }}
                      >
                        Lift
                      </button>
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

export function TokensPage() {
  const tokens = useAsync(() => get<{ apiTokens: ApiToken[] }>('/api/api-tokens'), []);
  const enrollment = useAsync(
    () => get<{ enrollmentTokens: EnrollmentTokenSummary[] }>('/api/enrollment-tokens'),
    [],
  );
  const groups = useAsync(() => get<{ deviceGroups: DeviceGroup[] }>('/api/device-groups'), []);
  const [secret, setSecret] = useState<{ label: string; value: string } | undefined>();
  const [name, setName] = useState('');
  const [perms, setPerms] = useState<string[]>(['keys:read-metadata']);
  const [kind, setKind] = useState<'personal' | 'service'>('service');
  const [days, setDays] = useState('90');
  const [enrollGroup, setEnrollGroup] = useState('');
  const [enrollUses, setEnrollUses] = useState('100');
  const [enrollHours, setEnrollHours] = useState('168');
  const { busy, error, run } = useAction();

  return (
    <>
      <h1>Tokens</h1>
      {secret && <ShownOnce label={secret.label} value={secret.value} onDone={() => setSecret(undefined)} />}
      <ErrorBox error={error} />
      <form
        className="panel"
        aria-labelledby="enroll-title"
        onSubmit={async (e) => {
          e.preventDefault();
          const r = await run(() =>
            post<{ enrollmentToken: string; expiresAt: string }>('/api/enrollment-tokens', {
              ...(enrollGroup ? { deviceGroupName: enrollGroup } : {}),
              maxUses: Number(enrollUses),
              expiresInHours: Number(enrollHours),
            }),
          );
          if (r) {
            setSecret({
              label: `Enrollment token (valid until ${new Date(r.expiresAt).toLocaleString()}).`,
              value: r.enrollmentToken,
            });
            enrollment.reload();
          }
        }}
      >
        <h2 id="enroll-title">Enrollment token for the agent</h2>
        <p className="hint">Devices enrolled with it escrow their keys; it grants nothing else.</p>
        <div className="inline-form">
          <label>
            Put devices in group
            <input
              list="group-names"
              value={enrollGroup}
              onChange={(e) => setEnrollGroup(e.target.value)}
              maxLength={200}
            />
            <datalist id="group-names">
              {(groups.data?.deviceGroups ?? []).map((g) => (
                <option key={g.id} value={g.name} />
              ))}
            </datalist>
          </label>
          <label>
            Uses
            <input
              type="number"
              min={1}
              max={100000}
              value={enrollUses}
              onChange={(e) => setEnrollUses(e.target.value)}
            />
          </label>
          <label>
            Valid for (hours)
            <input
              type="number"
              min={1}
              max={8760}
              value={enrollHours}
              onChange={(e) => setEnrollHours(e.target.value)}
            />
          </label>
          <button type="submit" disabled={busy}>
            Create enrollment token
          </button>
        </div>
      </form>
      <form
        className="panel"
        aria-labelledby="api-token-title"
        onSubmit={async (e: FormEvent) => {
          e.preventDefault();
          const r = await run(() =>
            post<ApiToken & { token: string }>('/api/api-tokens', {
              name,
              permissions: perms,
              kind,
              ...(days ? { expiresInDays: Number(days) } : {}),
            }),
          );
          if (r) {
            setSecret({ label: `API token “${r.name}”.`, value: r.token });
            setName('');
            tokens.reload();
          }
        }}
      >
        <h2 id="api-token-title">New API token</h2>
        <div className="inline-form">
          <label>
            Name
            <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={100} />
          </label>
          <label>
            Kind
            <select value={kind} onChange={(e) => setKind(e.target.value as 'personal' | 'service')}>
              <option value="service">Service</option>
              <option value="personal">Personal (never more than my rights)</option>
            </select>
          </label>
          <label>
            Expires in (days)
            <input type="number" min={1} max={3650} value={days} onChange={(e) => setDays(e.target.value)} />
          </label>
        </div>
        <fieldset className="checks">
          <legend>Permissions</legend>
          {PERMISSIONS.map((p) => (
            <label key={p} className="check">
              <input
                type="checkbox"
                checked={perms.includes(p)}
                onChange={(e) => setPerms(e.target.checked ? [...perms, p] : perms.filter((x) => x !== p))}
              />
              <code>{p}</code>
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={busy || perms.length === 0}>
          Create API token
        </button>
      </form>
      <section aria-labelledby="enrollment-tokens-title">
        <h2 id="enrollment-tokens-title">Enrollment tokens</h2>
        <Loaded state={enrollment} what="Loading enrollment tokens">
          {({ enrollmentTokens }) =>
            enrollmentTokens.length === 0 ? (
              <Empty>No enrollment token yet.</Empty>
            ) : (
              <div className="table-wrap">
                <table>
                  <caption className="visually-hidden">Enrollment tokens</caption>
                  <thead>
                    <tr>
                      <th scope="col">Created</th>
                      <th scope="col">Group</th>
                      <th scope="col">Used</th>
                      <th scope="col">Expires</th>
                      <th scope="col">Status</th>
                      <th scope="col">
                        <span className="visually-hidden">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {enrollmentTokens.map((t) => (
                      <tr key={t.id}>
                        <td>
                          <When iso={t.createdAt} /> <span className="small">{t.description}</span>
                        </td>
                        <td>
                          {groups.data?.deviceGroups.find((g) => g.id === t.deviceGroupId)?.name ?? '—'}
                        </td>
                        <td>
                          {t.useCount} of {t.maxUses}
                        </td>
                        <td>
                          <When iso={t.expiresAt} />
                        </td>
                        <td>
                          <span className={t.status === 'active' ? 'badge' : 'badge badge-superseded'}>
                            {t.status}
                          </span>
                        </td>
                        <td>
                          {t.status === 'active' && (
                            <button
                              type="button"
                              className="secondary small"
                              disabled={busy}
                              aria-label={`Revoke the enrollment token created ${new Date(t.createdAt).toLocaleString()}`}
                              onClick={async () => {
                                await run(() => api('DELETE', `/api/enrollment-tokens/${t.id}`));
                                enrollment.reload();
                              }}
                            >
                              Revoke
                            </button>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Loaded>
      </section>
      <section aria-labelledby="tokens-title">
        <h2 id="tokens-title">API tokens</h2>
        <Loaded state={tokens} what="Loading tokens">
          {({ apiTokens }) =>
            apiTokens.length === 0 ? (
              <Empty>No API token yet.</Empty>
            ) : (
              <div className="table-wrap">
                <table>
                  <caption className="visually-hidden">API tokens</caption>
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Kind</th>
                      <th scope="col">Permissions</th>
                      <th scope="col">Expires</th>
                      <th scope="col">Last used</th>
                      <th scope="col">
                        <span className="visually-hidden">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {apiTokens.map((t) => (
                      <tr key={t.id}>
                        <td>
                          {t.name} {t.revokedAt && <span className="badge badge-superseded">revoked</span>}
                        </td>
                        <td>{t.kind}</td>
                        <td className="small">{t.permissions.join(', ')}</td>
                        <td>
                          <When iso={t.expiresAt} />
                        </td>
                        <td>
                          <When iso={t.lastUsedAt} />
                        </td>
                        <td>
                          {!t.revokedAt && (
                            <button
                              type="button"
                              className="secondary small"
                              disabled={busy}
                              aria-label={`Revoke ${t.name}`}
                              onClick={async () => {
                                await run(() => api('DELETE', `/api/api-tokens/${t.id}`));
                                tokens.reload();
                              }}
                            >
                              Revoke
                            </button>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Loaded>
      </section>
    </>
  );
}
