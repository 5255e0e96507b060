// A real OpenID Connect provider (oidc-provider 8) on loopback, and a tiny browser to walk its pages.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface IdpUser {
  /** The login typed into the provider's form; also the OIDC subject. */
  login: string;
  preferredUsername: string;
  name: string;
  groups: string[];
}

export interface OidcIdp {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** Every authorization request the provider received (for PKCE assertions). */
  authorizationRequests: URL[];
  close(): Promise<void>;
}

/**
 * Starts the provider on 127.0.0.1:0 with one confidential client. PKCE is required of every
 * client so a relying party that forgot it would fail, not just pass unnoticed.
 */
export async function startOidcIdp(options: { redirectUri: string; users: IdpUser[] }): Promise<OidcIdp> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  const clientId = `bdevault-${randomBytes(4).toString('hex')}`;
  const clientSecret = randomBytes(32).toString('base64url');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'test-key' };
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    async findAccount(_ctx, id) {
      const user = options.users.find((u) => u.login === id);
      if (!user) return undefined;
      return {
        accountId: user.login,
        claims: () => ({
          sub: user.login,
          preferred_username: user.preferredUsername,
          name: user.name,
          groups: user.groups,
        }),
      };
    },
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
    pkce: { required: () => true, methods: ['S256'] },
    jwks: { keys: [jwk] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: { devInteractions: { enabled: true } },
  });
  // The provider logs its dev-interaction warnings on 'server_error'-free paths; keep errors visible.
  provider.on('server_error', (_ctx, err) => console.error('oidc-provider error', err));
  const authorizationRequests: URL[] = [];
  const handle = provider.callback();
  server.on('request', (req, res) => {
    if (req.url?.startsWith('/auth?')) authorizationRequests.push(new URL(req.url, issuer));
    handle(req, res);
  });
  return {
    issuer,
    clientId,
    clientSecret,
    authorizationRequests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface StoredCookie {
  name: string;
  value: string;
  path: string;
}

/** Cookies by name and path, enough for one host (the provider); our own app's cookies are read by hand. */
export class CookieJar {
  private cookies: StoredCookie[] = [];

  store(setCookies: readonly string[]) {
    for (const line of setCookies) {
      const [pair = '', ...attributes] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const attr = (key: string) =>
        attributes.find((a) => a.toLowerCase().startsWith(`${key}=`))?.slice(key.length + 1);
      const path = attr('path') ?? '/';
      const expires = attr('expires');
      this.cookies = this.cookies.filter((c) => !(c.name === name && c.path === path));
      const expired = (expires !== undefined && Date.parse(expires) < Date.now()) || attr('max-age') === '0';
      if (!expired && value !== '') this.cookies.push({ name, value, path });
    }
  }

  headerFor(url: URL): string {
    return this.cookies
      .filter(
        (c) =>
          url.pathname === c.path || url.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`),
      )
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

/** One request to the provider with the jar's cookies, redirects not followed. */
export async function browse(
  jar: CookieJar,
  url: URL,
  init: { method?: 'GET' | 'POST'; form?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = {};
  const cookie = jar.headerFor(url);
  if (cookie) headers.cookie = cookie;
  if (init.form) headers['content-type'] = 'application/x-www-form-urlencoded';
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers,
    redirect: 'manual',
    ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
  });
  jar.store(response.headers.getSetCookie());
  const location = response.headers.get('location');
  return {
    status: response.status,
    location: location === null ? undefined : new URL(location, url),
    body: await response.text(),
  };
}

/** The action and hidden fields of the first form on a page. */
export function formOf(html: string, base: URL) {
  const form = /<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/i.exec(html);
  if (!form) throw new Error(`no form on the page: ${html.slice(0, 500)}`);
  const fields: Record<string, string> = {};
  for (const input of form[2]!.matchAll(/<input[^>]*type="hidden"[^>]*>/gi)) {
    const name = /name="([^"]+)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1];
    if (name) fields[name] = value ?? '';
  }
  return { action: new URL(form[1]!.replace(/&amp;/g, '&'), base), fields };
}
