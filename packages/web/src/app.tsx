/** The shell: skip link, navigation by permission, and the page routes. */
import { useEffect, useRef, type ReactNode } from 'react';
import { Navigate, NavLink, Route, Routes, useLocation } from 'react-router-dom';
import { can, get, type MyInvitation } from './api.tsx';
import { useSession } from './session.tsx';
import { Loading, useAsync } from './ui.tsx';
import { AccountPage } from './pages/account.tsx';
import { PoliciesPage, RolesPage, TokensPage, UsersPage } from './pages/admin.tsx';
import { AuditPage } from './pages/audit.tsx';
import { DevicePage, DevicesPage } from './pages/devices.tsx';
import { MyDevicePage, MyDevicesPage, RecoverByKeyIdPage } from './pages/self-service.tsx';
import { SignInPage } from './pages/sign-in.tsx';
import { extraNav, extraRoutes } from './pages/extras.tsx';

interface NavItem {
  to: string;
  label: string;
  show: boolean;
}

export function App() {
  const session = useSession();
  const { me, state } = session;
  const location = useLocation();

  if (me === undefined) return <Loading what="Starting" />;
  if (me === null || state !== 'active') {
    if (location.pathname !== '/sign-in') return <Navigate to="/sign-in" replace />;
    return (
      <Routes>
        <Route path="/sign-in" element={<SignInPage />} />
      </Routes>
    );
  }
  if (me.mustChangePassword && location.pathname !== '/sign-in') return <Navigate to="/sign-in" replace />;

  const p = me.permissions;
  const nav: NavItem[] = [
    { to: '/my-devices', label: 'My devices', show: true },
    ...extraNav(session).filter((n) => n.section === 'work'),
    { to: '/devices', label: 'Devices', show: can(p, 'devices:read') || can(p, 'keys:read-metadata') },
    { to: '/audit', label: 'Audit log', show: can(p, 'audit:read') },
    ...extraNav(session).filter((n) => n.section === 'insight'),
    { to: '/admin/users', label: 'Users', show: can(p, 'org:admin') },
    { to: '/admin/roles', label: 'Roles & groups', show: can(p, 'org:admin') },
    { to: '/admin/policies', label: 'Policies', show: can(p, 'org:admin') },
    {
      to: '/admin/tokens',
      label: 'Tokens',
      show: can(p, 'api-tokens:manage') || can(p, 'enrollment:manage'),
    },
    ...extraNav(session).filter((n) => n.section === 'admin'),
  ];
  const home = can(p, 'devices:read') ? '/devices' : '/my-devices';

  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to={home} className="brand">
          <span className="logo" aria-hidden="true" /> bdevault
        </NavLink>
        <nav aria-label="Main">
          <ul>
            {nav
              .filter((n) => n.show)
              .map((n) => (
                <li key={n.to}>
                  <NavLink to={n.to}>{n.label}</NavLink>
                </li>
              ))}
          </ul>
        </nav>
        <AccountLink name={me.displayName || me.username} />
      </header>
      <Main>
        <Routes>
          <Route path="/" element={<Navigate to={home} replace />} />
          <Route
            path="/sign-in"
            element={me.mustChangePassword ? <SignInPage /> : <Navigate to={home} replace />}
          />
          <Route path="/my-devices" element={<MyDevicesPage />} />
          <Route path="/my-devices/:deviceId" element={<MyDevicePage />} />
          <Route path="/recover" element={<RecoverByKeyIdPage />} />
          <Route path="/devices" element={<DevicesPage />} />
          <Route path="/devices/:deviceId" element={<DevicePage />} />
          <Route path="/audit" element={<AuditPage />} />
          <Route path="/admin/users" element={<UsersPage />} />
          <Route path="/admin/roles" element={<RolesPage />} />
          <Route path="/admin/policies" element={<PoliciesPage />} />
          <Route path="/admin/tokens" element={<TokensPage />} />
          <Route path="/account" element={<AccountPage />} />
          {extraRoutes()}
          <Route path="*" element={<NotFound />} />
        </Routes>
      </Main>
    </>
  );
}

/**
 * The account link, with the number of pending invitations: nothing else tells a person that an
 * organization invited them (invitations are not mailed). Read again whenever the account page is
 * entered or left, so an answered invitation stops counting.
 */
function AccountLink({ name }: { name: string }) {
  const onAccount = useLocation().pathname === '/account';
  const pending = useAsync(
    () =>
      get<{ invitations: MyInvitation[] }>('/api/auth/invitations').then(
        (r) => r.invitations.length,
        () => 0,
      ),
    [onAccount],
  );
  const count = pending.data ?? 0;
  return (
    <NavLink to="/account" className="account-link">
      {name}
      {count > 0 && (
        <span className="badge badge-invitations" data-testid="invitation-count">
          {count}
          <span className="visually-hidden">
            {count === 1 ? ' pending invitation' : ' pending invitations'}
          </span>
        </span>
      )}
    </NavLink>
  );
}

/** Moves focus to the page on navigation, so keyboard and screen-reader users land on the new content. */
function Main({ children }: { children: ReactNode }) {
  const ref = useRef<HTMLElement>(null);
  const { pathname } = useLocation();
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    ref.current?.focus();
  }, [pathname]);
  return (
    <main id="main" ref={ref} tabIndex={-1}>
      {children}
    </main>
  );
}

function NotFound() {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        This address is not a page of the portal. <NavLink to="/">Go to the start page</NavLink>.
      </p>
    </>
  );
}
