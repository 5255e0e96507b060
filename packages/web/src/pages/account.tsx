/** My account: password, two-step sign-in (authenticator app, passkeys), sessions, organizations, invitations. */
import { useState } from 'react';
import { api, get, post, type MyInvitation } from '../api.tsx';
import { useSession } from '../session.tsx';
import { ErrorBox, Loaded, useAction, useAsync, When } from '../ui.tsx';
import { RecoveryCodes } from '../recovery-codes.tsx';
import { createPasskey, passkeysSupported } from '../webauthn.tsx';
import { ChangePassword, MfaEnroll } from './sign-in.tsx';

interface MfaStatus {
  totp: boolean;
  recoveryCodesLeft: number;
  passkeys: { id: string; name: string; createdAt: string; lastUsedAt: string | null }[];
}

export function AccountPage() {
  const { me, refresh, signOut } = useSession();
  const mfa = useAsync(() => get<MfaStatus>('/api/auth/mfa'), []);
  const orgs = useAsync(
    () =>
      get<{ organizations: { organizationId: string; name: string; current: boolean }[] }>(
        '/api/me/organizations',
      ),
    [],
  );
  const [enrolling, setEnrolling] = useState(false);
  const [changing, setChanging] = useState(false);
  const [passkeyName, setPasskeyName] = useState('');
  const [message, setMessage] = useState<string | undefined>();
  // Recovery codes issued with a first passkey: shown once, in place of the page.
  const [newCodes, setNewCodes] = useState<string[] | undefined>();
  const { busy, error, run } = useAction();

  if (newCodes) {
    return (
      <section className="panel">
        <RecoveryCodes codes={newCodes} onDone={() => setNewCodes(undefined)} />
      </section>
    );
  }

  return (
    <>
      <h1>My account</h1>
      <p>
        Signed in as <strong>{me?.username}</strong>
        {me?.displayName ? ` (${me.displayName})` : ''}.
      </p>
      {message && (
        <p className="alert alert-ok" role="status">
          {message}
        </p>
      )}
      <ErrorBox error={error} />
      <Invitations
        onJoined={(name) => {
          setMessage(`You joined ${name}. Switch to it under Organizations.`);
          orgs.reload();
        }}
      />
      <section className="panel" aria-labelledby="pw-title-acc">
        <h2 id="pw-title-acc">Password</h2>
        {changing ? (
          <ChangePassword
            onDone={() => {
              setChanging(false);
              setMessage('Password changed.');
            }}
          />
        ) : (
          <button type="button" className="secondary" onClick={() => setChanging(true)}>
            Change password
          </button>
        )}
      </section>
      <section className="panel" aria-labelledby="mfa-title">
        <h2 id="mfa-title">Two-step sign-in</h2>
        <Loaded state={mfa} what="Loading">
          {(m) => (
            <>
              <p>
                Authenticator app: <strong>{m.totp ? 'on' : 'off'}</strong>
              </p>
              {(m.totp || m.passkeys.length > 0) && (
                <p data-testid="recovery-codes-left">Recovery codes left: {m.recoveryCodesLeft}</p>
              )}
              {m.totp ? (
                <button
                  type="button"
                  className="secondary"
                  disabled={busy}
                  onClick={async () => {
                    await run(() => api('DELETE', '/api/auth/mfa/totp'));
                    mfa.reload();
                  }}
                >
                  Turn off the authenticator app
                </button>
              ) : enrolling ? (
                <MfaEnroll
                  onDone={() => {
                    setEnrolling(false);
                    mfa.reload();
                    void refresh();
                  }}
                />
              ) : (
                <button type="button" onClick={() => setEnrolling(true)}>
                  Set up an authenticator app
                </button>
              )}
              <h3>Passkeys</h3>
              {m.passkeys.length === 0 ? (
                <p className="muted">No passkey yet.</p>
              ) : (
                <ul className="list">
                  {m.passkeys.map((p) => (
                    <li key={p.id}>
                      {p.name} · added <When iso={p.createdAt} /> · last used <When iso={p.lastUsedAt} />{' '}
                      <button
                        type="button"
                        className="secondary small"
                        onClick={async () => {
                          await run(() =>
                            api('DELETE', `/api/auth/mfa/webauthn/credentials/${encodeURIComponent(p.id)}`),
                          );
                          mfa.reload();
                        }}
                      >
                        Remove
                      </button>
                    </li>
                  ))}
                </ul>
              )}
              {passkeysSupported() && (
                <form
                  className="inline-form"
                  onSubmit={async (e) => {
                    e.preventDefault();
                    const ok = await run(async () => {
                      const options = await post<Record<string, unknown>>(
                        '/api/auth/mfa/webauthn/registration/options',
                      );
                      const credential = await createPasskey(options);
                      return post<{ recoveryCodes?: string[] }>(
                        '/api/auth/mfa/webauthn/registration/verify',
                        {
                          credential,
                          ...(passkeyName ? { name: passkeyName } : {}),
                        },
                      );
                    });
                    if (ok) {
                      setPasskeyName('');
                      if (ok.recoveryCodes) setNewCodes(ok.recoveryCodes);
                      mfa.reload();
                    }
                  }}
                >
                  <label>
                    Passkey name
                    <input
                      value={passkeyName}
                      onChange={(e) => setPasskeyName(e.target.value)}
                      maxLength={100}
                      placeholder="e.g. work laptop"
                    />
                  </label>
                  <button type="submit" className="secondary" disabled={busy}>
                    Add a passkey
                  </button>
                </form>
              )}
            </>
          )}
        </Loaded>
      </section>
      <Loaded state={orgs} what="Loading organizations">
        {({ organizations }) =>
          organizations.length > 1 ? (
            <section className="panel" aria-labelledby="orgs-title">
              <h2 id="orgs-title">Organizations</h2>
              <ul className="list">
                {organizations.map((o) => (
                  <li key={o.organizationId}>
                    {o.name}{' '}
                    {o.current ? (
                      <span className="badge badge-active">current</span>
                    ) : (
                      <button
                        type="button"
                        className="secondary small"
                        onClick={async () => {
                          if (
                            await run(() =>
                              post('/api/auth/switch-organization', { organizationId: o.organizationId }),
                            )
                          ) {
                            await refresh();
                            window.location.assign('/');
                          }
                        }}
                      >
                        Switch
                      </button>
                    )}
                  </li>
                ))}
              </ul>
            </section>
          ) : null
        }
      </Loaded>
      <section className="panel" aria-labelledby="sessions-title">
        <h2 id="sessions-title">Sessions</h2>
        <div className="row">
          <button type="button" className="secondary" onClick={() => void signOut()}>
            Sign out
          </button>
          <button
            type="button"
            className="danger"
            onClick={async () => {
              if (await run(() => post('/api/auth/sign-out-everywhere'))) await signOut();
            }}
          >
            Sign out everywhere
          </button>
        </div>
      </section>
    </>
  );
}

/**
 * Invitations to join other organizations: nothing changes until the account accepts one. The
 * account stays managed by the organization that created it.
 */
function Invitations({ onJoined }: { onJoined: (organizationName: string) => void }) {
  const invitations = useAsync(() => get<{ invitations: MyInvitation[] }>('/api/auth/invitations'), []);
  const { busy, error, run } = useAction();
  const answer = async (i: MyInvitation, what: 'accept' | 'decline') => {
    const done = await run(() => post(`/api/auth/invitations/${i.id}/${what}`));
    invitations.reload();
    if (done !== undefined && what === 'accept') onJoined(i.organizationName);
  };
  return (
    <Loaded state={invitations} what="Loading invitations">
      {({ invitations: list }) =>
        list.length === 0 ? null : (
          <section className="panel notice" aria-labelledby="invitations-title">
            <h2 id="invitations-title">Invitations</h2>
            <ErrorBox error={error} />
            <ul className="list" data-testid="my-invitations">
              {list.map((i) => (
                <li key={i.id}>
                  <p>
                    <strong>{i.organizationName}</strong> invites you as <strong>{i.roleName}</strong>
                    {i.deviceGroupNames ? ` for the device groups ${i.deviceGroupNames.join(', ')}` : ''}
                    {i.invitedBy ? ` (sent by ${i.invitedBy})` : ''}. Until <When iso={i.expiresAt} />.
                  </p>
                  <div className="row">
                    <button
                      type="button"
                      className="small"
                      disabled={busy}
                      aria-label={`Accept the invitation of ${i.organizationName}`}
                      onClick={() => void answer(i, 'accept')}
                    >
                      Accept
                    </button>
                    <button
                      type="button"
                      className="secondary small"
                      disabled={busy}
                      aria-label={`Decline the invitation of ${i.organizationName}`}
                      onClick={() => void answer(i, 'decline')}
                    >
                      Decline
                    </button>
                  </div>
                </li>
              ))}
            </ul>
          </section>
        )
      }
    </Loaded>
  );
}
