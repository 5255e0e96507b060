/** The recovery-desk, reporting and integration pages: their navigation entries (by permission) and routes. */
import { lazy, Suspense, type ReactNode } from 'react';
import { Route } from 'react-router-dom';
import { can } from '../api.tsx';
import type { Session } from '../session.tsx';
import { NotificationsPage } from './notifications.tsx';
import { DirectorySyncPage, ImportPage } from './directory.tsx';
import { IdentityProvidersPage } from './identity-providers.tsx';
import { CasePage, CasesPage } from './recovery-cases.tsx';
import { Loading } from '../ui.tsx';

// chart.js is most of the bundle: load the reports page only when it is opened.
const ReportsPage = lazy(() => import('./reports.tsx').then((m) => ({ default: m.ReportsPage })));

export interface ExtraNavItem {
  to: string;
  label: string;
  show: boolean;
  section: 'work' | 'insight' | 'admin';
}

export function extraNav(s: Session): ExtraNavItem[] {
  const p = s.me?.permissions;
  return [
    {
      to: '/cases',
      label: 'Recovery cases',
      section: 'work',
      show: can(p, 'cases:work'),
    },
    {
      to: '/reports',
      label: 'Reports',
      section: 'insight',
      show: can(p, 'reports:read'),
    },
    {
      to: '/admin/notifications',
      label: 'Notifications',
      section: 'admin',
      show: can(p, 'org:admin'),
    },
    {
      to: '/admin/import',
      label: 'Import',
      section: 'admin',
      show: can(p, 'org:admin'),
    },
    {
      to: '/admin/directory',
      label: 'Directory sync',
      section: 'admin',
      show: can(p, 'org:admin'),
    },
    {
      to: '/admin/sign-in',
      label: 'Sign-in providers',
      section: 'admin',
      show: can(p, 'org:admin'),
    },
  ];
}

export function extraRoutes(): ReactNode {
  return [
    <Route key="cases" path="/cases" element={<CasesPage />} />,
    <Route key="case" path="/cases/:caseId" element={<CasePage />} />,
    <Route
      key="reports"
      path="/reports"
      element={
        <Suspense fallback={<Loading what="Loading reports" />}>
          <ReportsPage />
        </Suspense>
      }
    />,
    <Route key="notifications" path="/admin/notifications" element={<NotificationsPage />} />,
    <Route key="import" path="/admin/import" element={<ImportPage />} />,
    <Route key="directory" path="/admin/directory" element={<DirectorySyncPage />} />,
    <Route key="sign-in-providers" path="/admin/sign-in" element={<IdentityProvidersPage />} />,
  ];
}
