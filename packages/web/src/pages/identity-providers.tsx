/** Sign-in providers: OpenID Connect (SSO) and LDAP / Active Directory directories; secrets are write-only. */
import { useState, type FormEvent } from 'react';
import { api, get } from '../api.tsx';
import { Empty, ErrorBox, Loaded, useAction, useAsync } from '../ui.tsx';

interface OidcProvider {
  slug: string;
  displayName: string;
  issuer: string;
  clientId: string;
  hasClientSecret: boolean;
  scopes: string[];
  groupsClaim: string;
  usernameClaim: string;
  allowInsecureIssuer: boolean;
  enabled: boolean;
  redirectUri: string | null;
}

interface LdapDirectory {
  slug: string;
  displayName: string;
  url: string;
  hasCaCertificate: boolean;
  baseDn: string;
  bindDn: string | null;
  hasBindPassword: boolean;
  upnSuffix: string | null;
  enabled: boolean;
}

type Editing = { kind: 'oidc'; p?: OidcProvider } | { kind: 'ldap'; p?: LdapDirectory } | undefined;

const SLUG = '[a-z0-9][a-z0-9\\-]{1,63}';

export function IdentityProvidersPage() {
  const providers = useAsync(
    () => get<{ oidc: OidcProvider[]; ldap: LdapDirectory[] }>('/api/identity-providers'),
    [],
  );
  const [editing, setEditing] = useState<Editing>();
  const [saved, setSaved] = useState<string | undefined>();
  const { busy, error, run } = useAction();

  const done = (message: string) => {
    setEditing(undefined);
    setSaved(message);
    providers.reload();
  };
  const remove = async (kind: 'oidc' | 'ldap', slug: string) => {
    setSaved(undefined);
    if ((await run(() => api('DELETE', `/api/identity-providers/${kind}/${slug}`))) !== undefined) {
      done(`Removed ${slug}.`);
    }
  };

  return (
    <>
      <h1>Sign-in providers</h1>
      <p className="hint">
        People sign in with a local password, through an OpenID Connect provider (SSO), or with their
        directory account. Secrets are stored encrypted and never shown back.
      </p>
      {saved && (
        <p className="alert alert-ok" role="status">
          {saved}
        </p>
      )}
      <ErrorBox error={error} />
      <Loaded state={providers} what="Loading sign-in providers">
        {(p) => (
          <>
            <section className="panel" aria-labelledby="oidc-list">
              <h2 id="oidc-list">Single sign-on (OpenID Connect)</h2>
              {p.oidc.length === 0 ? (
                <Empty>No SSO provider.</Empty>
              ) : (
                <ProviderTable
                  rows={p.oidc.map((o) => ({
                    slug: o.slug,
                    name: o.displayName,
                    where: o.issuer,
                    extra: o.redirectUri ? `Redirect URI: ${o.redirectUri}` : '',
                    enabled: o.enabled,
                    onEdit: () => setEditing({ kind: 'oidc', p: o }),
                    onRemove: () => void remove('oidc', o.slug),
                  }))}
                  busy={busy}
                />
              )}
              <button type="button" className="secondary" onClick={() => setEditing({ kind: 'oidc' })}>
                Add SSO provider
              </button>
            </section>
            <section className="panel" aria-labelledby="ldap-list">
              <h2 id="ldap-list">Directory sign-in (LDAP / Active Directory)</h2>
              {p.ldap.length === 0 ? (
                <Empty>No directory.</Empty>
              ) : (
                <ProviderTable
                  rows={p.ldap.map((l) => ({
                    slug: l.slug,
                    name: l.displayName,
                    where: l.url,
                    extra: l.baseDn,
                    enabled: l.enabled,
                    onEdit: () => setEditing({ kind: 'ldap', p: l }),
                    onRemove: () => void remove('ldap', l.slug),
                  }))}
                  busy={busy}
                />
              )}
              <button type="button" className="secondary" onClick={() => setEditing({ kind: 'ldap' })}>
                Add directory
              </button>
            </section>
          </>
        )}
      </Loaded>
      {editing?.kind === 'oidc' && (
        <OidcForm
          key={editing.p?.slug ?? 'new'}
          p={editing.p}
          onDone={done}
          onCancel={() => setEditing(undefined)}
        />
      )}
      {editing?.kind === 'ldap' && (
        <LdapForm
          key={editing.p?.slug ?? 'new'}
          p={editing.p}
          onDone={done}
          onCancel={() => setEditing(undefined)}
        />
      )}
    </>
  );
}

function ProviderTable({
  rows,
  busy,
}: {
  rows: {
    slug: string;
    name: string;
    where: string;
    extra: string;
    enabled: boolean;
    onEdit: () => void;
    onRemove: () => void;
  }[];
  busy: boolean;
}) {
  return (
    <div className="table-wrap">
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Where</th>
            <th scope="col">State</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.slug}>
              <td>
                <strong>{r.name}</strong>
                <div className="muted small mono">{r.slug}</div>
              </td>
              <td className="small">
                {r.where}
                {r.extra && <div className="muted">{r.extra}</div>}
              </td>
              <td>{r.enabled ? 'on' : <span className="badge badge-superseded">off</span>}</td>
              <td className="actions">
                <button
                  type="button"
                  className="secondary small"
                  aria-label={`Edit ${r.name}`}
                  onClick={r.onEdit}
                >
                  Edit
                </button>
                <button
                  type="button"
                  className="secondary small"
                  aria-label={`Remove ${r.name}`}
                  disabled={busy}
                  onClick={r.onRemove}
                >
                  Remove
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function OidcForm({
  p,
  onDone,
  onCancel,
}: {
  p: OidcProvider | undefined;
  onDone: (message: string) => void;
  onCancel: () => void;
}) {
  const { busy, error, run } = useAction();
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const str = (k: string) => String(f.get(k) ?? '').trim();
    const slug = p?.slug ?? str('slug');
    const secret = String(f.get('clientSecret') ?? '');
    const ok = await run(() =>
      api('PUT', `/api/identity-providers/oidc/${slug}`, {
        displayName: str('displayName'),
        issuer: str('issuer'),
        clientId: str('clientId'),
        ...(secret === '' ? {} : { clientSecret: secret }),
        scopes: str('scopes').split(/\s+/).filter(Boolean),
        groupsClaim: str('groupsClaim'),
        usernameClaim: str('usernameClaim'),
        allowInsecureIssuer: f.get('allowInsecureIssuer') === 'on',
        enabled: f.get('enabled') === 'on',
      }),
    );
    if (ok !== undefined) onDone(`Saved ${slug}.`);
  };
  return (
    <form className="panel stack" onSubmit={submit} aria-labelledby="oidc-form">
      <h2 id="oidc-form">{p ? `Edit ${p.displayName}` : 'Add an SSO provider'}</h2>
      {!p && (
        <label>
          Short name{' '}
          <span className="hint">lower-case letters, digits, dashes; part of the redirect URI</span>
          <input name="slug" required pattern={SLUG} maxLength={64} placeholder="entra" />
        </label>
      )}
      <label>
        Button label
        <input
          name="displayName"
          required
          maxLength={100}
          defaultValue={p?.displayName ?? ''}
          placeholder="Contoso SSO"
        />
      </label>
      <label>
        Issuer URL
        <input name="issuer" type="url" required maxLength={2048} defaultValue={p?.issuer ?? ''} />
      </label>
      <label>
        Client ID
        <input name="clientId" required maxLength={512} defaultValue={p?.clientId ?? ''} />
      </label>
      <label>
        Client secret{' '}
        <span className="hint">
          {p?.hasClientSecret ? 'stored; leave empty to keep it' : 'empty for a public client (PKCE only)'}
        </span>
        <input name="clientSecret" type="password" autoComplete="new-password" maxLength={2048} />
      </label>
      <label>
        Scopes <span className="hint">separated by spaces</span>
        <input
          name="scopes"
          required
          maxLength={2000}
          defaultValue={(p?.scopes ?? ['openid', 'profile', 'email']).join(' ')}
        />
      </label>
      <div className="inline-form">
        <label>
          Groups claim
          <input name="groupsClaim" required maxLength={100} defaultValue={p?.groupsClaim ?? 'groups'} />
        </label>
        <label>
          User name claim
          <input
            name="usernameClaim"
            required
            maxLength={100}
            defaultValue={p?.usernameClaim ?? 'preferred_username'}
          />
        </label>
      </div>
      <label className="check">
        <input name="allowInsecureIssuer" type="checkbox" defaultChecked={p?.allowInsecureIssuer ?? false} />
        Allow an http:// issuer (a lab only, never in production)
      </label>
      <label className="check">
        <input name="enabled" type="checkbox" defaultChecked={p?.enabled ?? true} />
        Show on the sign-in page
      </label>
      <div className="row">
        <button type="submit" disabled={busy}>
          Save SSO provider
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

function LdapForm({
  p,
  onDone,
  onCancel,
}: {
  p: LdapDirectory | undefined;
  onDone: (message: string) => void;
  onCancel: () => void;
}) {
  const { busy, error, run } = useAction();
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const str = (k: string) => String(f.get(k) ?? '').trim();
    const slug = p?.slug ?? str('slug');
    const password = String(f.get('bindPassword') ?? '');
    // Optional fields are sent only when filled: the server keeps what it has for the rest.
    const optional = (k: string) => (str(k) === '' ? {} : { [k]: str(k) });
    const ok = await run(() =>
      api('PUT', `/api/identity-providers/ldap/${slug}`, {
        displayName: str('displayName'),
        url: str('url'),
        baseDn: str('baseDn'),
        ...optional('bindDn'),
        ...(password === '' ? {} : { bindPassword: password }),
        ...optional('upnSuffix'),
        ...optional('caCertificate'),
        enabled: f.get('enabled') === 'on',
      }),
    );
    if (ok !== undefined) onDone(`Saved ${slug}.`);
  };
  return (
    <form className="panel stack" onSubmit={submit} aria-labelledby="ldap-form">
      <h2 id="ldap-form">{p ? `Edit ${p.displayName}` : 'Add a directory'}</h2>
      {!p && (
        <label>
          Short name <span className="hint">lower-case letters, digits, dashes</span>
          <input name="slug" required pattern={SLUG} maxLength={64} placeholder="corp-ad" />
        </label>
      )}
      <label>
        Name shown at sign-in
        <input name="displayName" required maxLength={100} defaultValue={p?.displayName ?? ''} />
      </label>
      <label>
        Directory URL <span className="hint">ldaps://host[:port] or ldap://host (StartTLS)</span>
        <input
          name="url"
          required
          maxLength={2048}
          defaultValue={p?.url ?? ''}
          placeholder="ldaps://dc1.example.com"
        />
      </label>
      <label>
        Base DN
        <input name="baseDn" required maxLength={1024} defaultValue={p?.baseDn ?? ''} />
      </label>
      <label>
        Service account <span className="hint">optional; to look people up before binding as them</span>
        <input name="bindDn" maxLength={1024} defaultValue={p?.bindDn ?? ''} />
      </label>
      <label>
        Service account password{' '}
        <span className="hint">{p?.hasBindPassword ? 'stored; leave empty to keep it' : 'optional'}</span>
        <input name="bindPassword" type="password" autoComplete="new-password" maxLength={1024} />
      </label>
      <label>
        UPN suffix <span className="hint">optional, e.g. example.com</span>
        <input name="upnSuffix" maxLength={253} defaultValue={p?.upnSuffix ?? ''} />
      </label>
      <label>
        CA certificate{' '}
        <span className="hint">
          {p?.hasCaCertificate ? 'stored; leave empty to keep it' : 'PEM, optional'}
        </span>
        <textarea name="caCertificate" rows={3} className="mono small" maxLength={65536} />
      </label>
      <label className="check">
        <input name="enabled" type="checkbox" defaultChecked={p?.enabled ?? true} />
        Allow sign-in with this directory
      </label>
      <div className="row">
        <button type="submit" disabled={busy}>
          Save directory
        </button>
        <button type="button" className="secondary" onClick={onCancel}>
          Cancel
        </button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}
