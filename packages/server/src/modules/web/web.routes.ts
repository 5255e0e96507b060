/** Serves the built portal (packages/web/dist) on the API's origin, with a strict CSP and an SPA fallback. */
import { existsSync, statSync } from 'node:fs';
import { extname, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { App } from '../../app-types.js';
import { errorBody } from '../../lib/errors.js';
import { odataErrorBody } from '../graph-compat/graph-compat.odata.js';

/**
 * The portal's policy: no inline script or style anywhere (the build emits none), data: images only
 * for small icons, nothing from other origins, never framed.
 */
export const PORTAL_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

/** JSON API prefixes: an unknown path under them is an API 404, never the portal's index page. */
const API_PREFIXES = ['/api/', '/v1.0/', '/beta/', '/oauth2/'];
const GRAPH_PREFIXES = ['/v1.0/', '/beta/'];

/** `packages/web/dist`, found relative to this file in both `src/` and `dist/` of the server. */
export function defaultWebRoot(): string {
  return fileURLToPath(new URL('../../../../web/dist/', import.meta.url));
}

const NOT_BUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bdevault: portal not built</title></head>
<body><h1>portal not built: run npm run build</h1>
<p>The API is running, but the web portal's files were not found. Run <code>npm run build</code>
in the repository (or set <code>BDEVAULT_WEB_ROOT</code> to the built portal) and restart.</p>
</body></html>
`;

export function registerWebModule(app: App, options: { webRoot?: string | undefined }) {
  const root = resolve(options.webRoot ?? defaultWebRoot());
  let built = false;
  // Checked until found, so a portal built after the server started is picked up.
  const isBuilt = () => (built ||= existsSync(resolve(root, 'index.html')));

  void app.register(async (scope) => {
    await scope.register(fastifyStatic, { root, serve: false });

    const sendIndex = (reply: FastifyReply) =>
      reply
        .header('content-security-policy', PORTAL_CSP)
        .header('cache-control', 'no-cache')
        .sendFile('index.html', root, { cacheControl: false });

    scope.route({
      method: 'GET',
      url: '/*',
      // The portal's files are public; every piece of data they show comes from the JSON API.
      config: { permission: 'public' },
      schema: { hide: true },
      handler: async (request: FastifyRequest, reply: FastifyReply) => {
        const path = decodeURIComponentSafe(request.url.split('?')[0] ?? '/');
        if (path !== undefined && GRAPH_PREFIXES.some((p) => path.startsWith(p))) {
          // Graph clients parse OData errors: answer as the Graph module's own 404 does.
          return reply
            .code(404)
            .send(odataErrorBody('Request_ResourceNotFound', 'Resource not found', request, new Date()));
        }
        if (path === undefined || API_PREFIXES.some((p) => path.startsWith(p))) {
          return reply.code(404).send(errorBody('NOT_FOUND', 'No such route', request.id));
        }
        if (!isBuilt()) {
          return reply
            .code(503)
            .type('text/html; charset=utf-8')
            .header('content-security-policy', PORTAL_CSP)
            .header('retry-after', '60')
            .send(NOT_BUILT_PAGE);
        }
        if (path !== '/' && !path.endsWith('/')) {
          const file = resolve(root, '.' + path);
          if (file.startsWith(root + sep) && isFile(file)) {
            const hashed = path.startsWith('/assets/');
            return reply.header('content-security-policy', PORTAL_CSP).sendFile(path.slice(1), root, {
              cacheControl: true,
              maxAge: hashed ? 365 * 24 * 3600 * 1000 : 0,
              immutable: hashed,
            });
          }
          // A missing asset is a 404; any other path is a portal page the client-side router draws.
          if (extname(path) !== '') {
            return reply.code(404).type('text/plain; charset=utf-8').send('Not found');
          }
        }
        return sendIndex(reply);
      },
    });
  });
}

function decodeURIComponentSafe(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
