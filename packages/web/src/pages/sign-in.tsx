/** Sign-in: local or directory account, then the MFA step or MFA set-up, then a first password change. */
import { useEffect, useState, type FormEvent } from 'react';
import { useNavigate } from 'react-router-dom';
import { api, get, post, setCsrfToken, type SessionState, type SignInResult } from '../api.tsx';
import { useSession } from '../session.tsx';
import { ErrorBox, useAction } from '../ui.tsx';
import { getPasskeyAssertion, passkeysSupported } from '../webauthn.tsx';
import { RecoveryCodes } from '../recovery-codes.tsx';

interface Provider {
  kind: 'oidc' | 'ldap';
  slug: string;
  displayName: string;
}

type Step =
  | { kind: 'credentials' }
  | { kind: 'mfa'; methods: string[] }
  | { kind: 'mfa-enroll' }
  | { kind: 'change-password'; currentPassword: string };

export function SignInPage() {
  const session = useSession();
  const navigate = useNavigate();
  const [step, setStep] = useState<Step>(() =>
    session.state === 'mfa-pending'
      ? { kind: 'mfa', methods: ['totp', 'webauthn', 'recovery-code'] }
      : session.state === 'mfa-enrollment-required'
        ? { kind: 'mfa-enroll' }
        : { kind: 'credentials' },
  );
  const [password, setPassword] = useState('');
  const [mustChange, setMustChange] = useState(false);

  const finish = async (state: SessionState, csrf: string, needsChange: boolean) => {
    setCsrfToken(csrf);
    if (state === 'mfa-pending')
      return setStep({ kind: 'mfa', methods: ['totp', 'webauthn', 'recovery-code'] });
    if (state === 'mfa-enrollment-required') return setStep({ kind: 'mfa-enroll' });
    if (needsChange) return setStep({ kind: 'change-password', currentPassword: password });
    await session.refresh();
    navigate('/', { replace: true });
  };

  return (
    <main className="sign-in" id="main">
      <div className="sign-in-card">
        <h1>
          <span className="logo" aria-hidden="true" /> bdevault
        </h1>
        {step.kind === 'credentials' && (
          <Credentials
            password={password}
            setPassword={setPassword}
            onDone={(r) => {
              setMustChange(r.mustChangePassword);
              if (r.state === 'mfa-pending') {
                setCsrfToken(r.csrfToken);
                setStep({ kind: 'mfa', methods: r.mfaMethods });
                return;
              }
              void finish(r.state, r.csrfToken, r.mustChangePassword);
            }}
          />
        )}
        {step.kind === 'mfa' && (
          <MfaStep methods={step.methods} onDone={(s, csrf) => void finish(s, csrf, mustChange)} />
        )}
        {step.kind === 'mfa-enroll' && <MfaEnroll onDone={(s, csrf) => void finish(s, csrf, mustChange)} />}
        {step.kind === 'change-password' && (
          <ChangePassword
            initialCurrent={step.currentPassword}
            onDone={async () => {
              await session.refresh();
              navigate('/', { replace: true });
            }}
          />
        )}
      </div>
    </main>
  );
}

function Credentials({
  password,
  setPassword,
  onDone,
}: {
  password: string;
  setPassword: (p: string) => void;
  onDone: (r: SignInResult) => void;
}) {
  const [username, setUsername] = useState('');
  const [via, setVia] = useState('local');
  const [providers, setProviders] = useState<Provider[]>([]);
  const { busy, error, run } = useAction();

  useEffect(() => {
    get<{ providers: Provider[] }>('/api/auth/providers').then(
      (r) => setProviders(r.providers),
      () => setProviders([]),
    );
  }, []);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const url = via === 'local' ? '/api/auth/sign-in' : `/api/auth/ldap/${encodeURIComponent(via)}/sign-in`;
    const r = await run(() => post<SignInResult>(url, { username, password }));
    if (r) onDone(r);
  };
  const ldap = providers.filter((p) => p.kind === 'ldap');
  const oidc = providers.filter((p) => p.kind === 'oidc');

  return (
    <>
      <h2>Sign in</h2>
      <form onSubmit={submit} className="stack">
        {ldap.length > 0 && (
          <label>
            Account
            <select value={via} onChange={(e) => setVia(e.target.value)}>
              <option value="local">bdevault account</option>
              {ldap.map((p) => (
                <option key={p.slug} value={p.slug}>
                  {p.displayName}
                </option>
              ))}
            </select>
          </label>
        )}
        <label>
          User name
          <input
            name="username"
            autoComplete="username"
            value={username}
            onChange={(e) => setUsername(e.target.value)}
            required
            maxLength={256}
            autoFocus
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            required
            maxLength={256}
          />
        </label>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      {oidc.length > 0 && (
        <div className="sso">
          <p className="muted">or</p>
          {oidc.map((p) => (
            <a
              key={p.slug}
              className="button secondary block"
              href={`/api/auth/oidc/${encodeURIComponent(p.slug)}/start`}
            >
              Sign in with {p.displayName}
            </a>
          ))}
        </div>
      )}
    </>
  );
}

function MfaStep({
  methods,
  onDone,
}: {
  methods: string[];
  onDone: (s: SessionState, csrf: string) => void;
}) {
  const [code, setCode] = useState('');
  const [useRecovery, setUseRecovery] = useState(false);
  const { busy, error, run } = useAction();
  const hasPasskey = methods.includes('webauthn') && passkeysSupported();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const body = useRecovery ? { recoveryCode: code.trim() } : { code: code.replace(/\s/g, '') };
    const r = await run(() => post<{ state: SessionState; csrfToken: string }>('/api/auth/mfa/verify', body));
    if (r) onDone(r.state, r.csrfToken);
  };
  const passkey = async () => {
    const r = await run(async () => {
      const options = await post<Record<string, unknown>>('/api/auth/mfa/webauthn/authentication/options');
      const credential = await getPasskeyAssertion(options);
      return post<{ state: SessionState; csrfToken: string }>(
        '/api/auth/mfa/webauthn/authentication/verify',
        {
          credential,
        },
      );
    });
    if (r) onDone(r.state, r.csrfToken);
  };

  return (
    <>
      <h2>Second step</h2>
      {hasPasskey && (
        <button type="button" className="block" onClick={() => void passkey()} disabled={busy}>
          Use a passkey
        </button>
      )}
      <form onSubmit={submit} className="stack">
        <label>
          {useRecovery ? 'Recovery code' : 'Code from your authenticator app'}
          <input
            name="code"
            inputMode={useRecovery ? 'text' : 'numeric'}
            autoComplete="one-time-code"
            value={code}
            onChange={(e) => setCode(e.target.value)}
            required
            maxLength={64}
            autoFocus
          />
        </label>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          Verify
        </button>
        <button type="button" className="link" onClick={() => setUseRecovery(!useRecovery)}>
          {useRecovery ? 'Use a code from the app instead' : 'Use a recovery code instead'}
        </button>
      </form>
    </>
  );
}

/** The organization requires MFA and this account has none yet: set up an authenticator app. */
export function MfaEnroll({ onDone }: { onDone: (s: SessionState, csrf: string) => void }) {
  const [secret, setSecret] = useState<{ secret: string; otpauthUri: string } | undefined>();
  const [codes, setCodes] = useState<{ codes: string[]; state: SessionState; csrf: string } | undefined>();
  const [code, setCode] = useState('');
  const { busy, error, run } = useAction();

  useEffect(() => {
    void run(() => post<{ secret: string; otpauthUri: string }>('/api/auth/mfa/totp/enroll')).then(
      (r) => r && setSecret(r),
    );
  }, [run]);

  if (codes) {
    return <RecoveryCodes codes={codes.codes} onDone={() => onDone(codes.state, codes.csrf)} />;
  }
  return (
    <>
      <h2>Set up two-step sign-in</h2>
      <p>
        Your organization asks for a second step. Add this account to an authenticator app, then type the code
        it shows.
      </p>
      {secret && (
        <>
          <p>
            Secret key:{' '}
            <code className="totp-secret" data-testid="totp-secret">
              {secret.secret.replace(/(.{4})/g, '$1 ').trim()}
            </code>
          </p>
          <p className="small muted">
            Or open this link on the phone: <a href={secret.otpauthUri}>otpauth link</a>
          </p>
        </>
      )}
      <form
        className="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          const r = await run(() =>
            post<{ state: SessionState; csrfToken: string; recoveryCodes: string[] }>(
              '/api/auth/mfa/totp/confirm',
              {
                code: code.replace(/\s/g, ''),
              },
            ),
          );
          if (r) setCodes({ codes: r.recoveryCodes, state: r.state, csrf: r.csrfToken });
        }}
      >
        <label>
          Code from the app
          <input
            inputMode="numeric"
            autoComplete="one-time-code"
            value={code}
            onChange={(e) => setCode(e.target.value)}
            required
            maxLength={10}
          />
        </label>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy || !secret}>
          Confirm
        </button>
      </form>
    </>
  );
}

export function ChangePassword({
  initialCurrent = '',
  onDone,
}: {
  initialCurrent?: string;
  onDone: () => void | Promise<void>;
}) {
  const [current, setCurrent] = useState(initialCurrent);
  const [next, setNext] = useState('');
  const [again, setAgain] = useState('');
  const { busy, error, run } = useAction();
  const mismatch = again.length > 0 && next !== again;
  return (
    <>
      <h2>Choose a new password</h2>
      <p className="muted">At least 12 characters; not your user name, not a well-known password.</p>
      <form
        className="stack"
        onSubmit={async (e) => {
          e.preventDefault();
          if (next !== again) return;
          const ok = await run(() =>
            api('POST', '/api/auth/change-password', { currentPassword: current, newPassword: next }),
          );
          if (ok !== undefined) await onDone();
        }}
      >
        {initialCurrent === '' && (
          <label>
            Current password
            <input
              type="password"
              autoComplete="current-password"
              value={current}
              onChange={(e) => setCurrent(e.target.value)}
              required
              maxLength={256}
            />
          </label>
        )}
        <label>
          New password
          <input
            name="new-password"
            type="password"
            autoComplete="new-password"
            value={next}
            onChange={(e) => setNext(e.target.value)}
            required
            minLength={12}
            maxLength={256}
          />
        </label>
        <label>
          New password again
          <input
            name="new-password-again"
            type="password"
            autoComplete="new-password"
            value={again}
            onChange={(e) => setAgain(e.target.value)}
            required
            aria-invalid={mismatch}
            aria-describedby={mismatch ? 'pw-mismatch' : undefined}
          />
        </label>
        {mismatch && (
          <p id="pw-mismatch" className="field-error">
            The two passwords differ.
          </p>
        )}
        <ErrorBox error={error} />
        <button type="submit" disabled={busy || mismatch}>
          Change password
        </button>
      </form>
    </>
  );
}
