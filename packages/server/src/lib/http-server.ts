/** Fastify server options from configuration: TLS (HTTP/2 with HTTP/1.1 fallback) and trusted proxies. */
import { readFileSync } from 'node:fs';
import type { Http2SecureServer, ServerHttp2Session } from 'node:http2';
import type { Config } from './config.js';
import { ConfigError } from './config.js';

export interface ServerOptions {
  trustProxy: string[] | false;
  http2?: true;
  https?: { allowHTTP1: true; cert: Buffer; key: Buffer; minVersion: 'TLSv1.2' };
}

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    // The path only: the file's content (a private key) never goes into a message.
    throw new ConfigError(
      `Cannot read the TLS ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
}

/**
 * One listener for both protocols: HTTP/2 for clients that negotiate it by ALPN, HTTP/1.1 for the
 * rest (scripts, PowerShell, older agents). Without TLS the server speaks plain HTTP/1.1, for use
 * behind a TLS-terminating reverse proxy listed in `trustProxy`.
 */
export function serverOptions(config: Partial<Pick<Config, 'tls' | 'trustProxy'>>): ServerOptions {
  const trustProxy = config.trustProxy && config.trustProxy.length > 0 ? [...config.trustProxy] : false;
  if (!config.tls) return { trustProxy };
  return {
    trustProxy,
    http2: true,
    https: {
      allowHTTP1: true,
      cert: readPem(config.tls.certFile, 'certificate'),
      key: readPem(config.tls.keyFile, 'key'),
      minVersion: 'TLSv1.2',
    },
  };
}

/**
 * On close, asks every open HTTP/2 session to finish (GOAWAY: streams in flight complete, no new
 * ones start). Without it an idle browser or proxy connection holds a graceful shutdown (SIGTERM)
 * until the session times out, over a minute later; Node before 24 does not do this itself.
 */
export function closeHttp2SessionsOnClose(app: {
  server: unknown;
  addHook(name: 'preClose', hook: () => Promise<void>): unknown;
}): void {
  const server = app.server as Http2SecureServer;
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  app.addHook('preClose', async () => {
    for (const session of sessions) session.close();
  });
}
