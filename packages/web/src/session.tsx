/** Who is signed in: the session state from the server, kept in memory only (the cookie is HttpOnly). */
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, get, onSessionLost, setCsrfToken, type Me, type SessionState } from './api.tsx';

export interface Session {
  /** undefined while loading; null when signed out. */
  me: Me | null | undefined;
  state: SessionState | undefined;
  refresh: () => Promise<void>;
  signOut: () => Promise<void>;
  setPending: (state: SessionState, csrfToken: string) => void;
}

const SessionContext = createContext<Session | undefined>(undefined);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside SessionProvider');
  return s;
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [state, setState] = useState<SessionState | undefined>(undefined);

  const refresh = useCallback(async () => {
    try {
      const session = await get<{ state: SessionState; csrfToken: string }>('/api/auth/session');
      setCsrfToken(session.csrfToken);
      setState(session.state);
      if (session.state !== 'active') {
        setMe(null);
        return;
      }
      setMe(await get<Me>('/api/auth/me'));
    } catch {
      setCsrfToken(undefined);
      setState(undefined);
      setMe(null);
    }
  }, []);

  const signOut = useCallback(async () => {
    try {
      await api('POST', '/api/auth/sign-out', {});
    } finally {
      setCsrfToken(undefined);
      setState(undefined);
      setMe(null);
    }
  }, []);

  const setPending = useCallback((s: SessionState, csrf: string) => {
    setCsrfToken(csrf);
    setState(s);
  }, []);

  useEffect(() => {
    void refresh();
    // The session may be gone, or sent back to a step it now owes (the server demotes a session to
    // MFA enrolment when the organization starts requiring MFA): ask which, so the sign-in page
    // opens at that step instead of a blank form.
    onSessionLost(() => void refresh());
    return () => onSessionLost(undefined);
  }, [refresh]);

  return (
    <SessionContext.Provider value={{ me, state, refresh, signOut, setPending }}>
      {children}
    </SessionContext.Provider>
  );
}
