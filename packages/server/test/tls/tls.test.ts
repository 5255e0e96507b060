// HTTPS with HTTP/2 and HTTP/1.1 clients on one port, and X-Forwarded-For believed only from trusted proxies.
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/lib/config.js';
import { startServer, type RunningServer } from '../../src/vault.js';
import { createTestVault, fastHasher, type TestVault } from '../helpers.js';
import { createTestCertificates, type TestCertificates } from '../support/test-ca.js';

let dir: string;
let certs: TestCertificates;
let server: RunningServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bdevault-tls-'));
  certs = await createTestCertificates(join(dir, 'tls'));
  server = await startServer(
    loadConfig({
      dataDir: dir,
      port: 0,
      logLevel: 'silent',
      tlsCert: certs.serverCertPath,
      tlsKey: certs.serverKeyPath,
    }),
    { passwordHasher: fastHasher },
  );
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('TLS', () => {
  it('answers an HTTP/2 client (ALPN h2), verified against the test CA', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const session = connect(server.url, { ca: certs.caCertPem });
    try {
      const { status, body, alpn } = await new Promise<{
        status: number;
        body: string;
        alpn: string | false;
      }>((resolve, reject) => {
        const stream = session.request({ ':path': '/healthz' });
        let status = 0;
        let body = '';
        stream.on('response', (headers) => (status = Number(headers[':status'])));
        stream.setEncoding('utf8').on('data', (d: string) => (body += d));
        stream.on('end', () => resolve({ status, body, alpn: session.alpnProtocol ?? false }));
        stream.on('error', reject);
        stream.end();
      });
      expect(alpn).toBe('h2');
      expect(status).toBe(200);
      expect(JSON.parse(body)).toEqual({ status: 'ok' });
    } finally {
      session.close();
    }
  });

  it('answers an HTTP/1.1 client on the same port, with HSTS from helmet', async () => {
    const res = await new Promise<{ status: number; version: string; hsts: unknown; body: string }>(
      (resolve, reject) => {
        const req = httpsRequest(
          `${server.url}/healthz`,
          // https.request offers only http/1.1 by ALPN: this is the HTTP/1.1 client.
          { ca: certs.caCertPem },
          (r) => {
            let body = '';
            r.setEncoding('utf8').on('data', (d: string) => (body += d));
            r.on('end', () =>
              resolve({
                status: r.statusCode!,
                version: r.httpVersion,
                hsts: r.headers['strict-transport-security'],
                body,
              }),
            );
          },
        );
        req.on('error', reject);
        req.end();
      },
    );
    expect(res).toMatchObject({ status: 200, version: '1.1', body: '{"status":"ok"}' });
    expect(res.hsts).toBeDefined();
  });

  it('refuses a client that does not trust the certificate', async () => {
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow();
  });

  it('needs both the certificate and the key, and names a missing file without its content', async () => {
    expect(() => loadConfig({ dataDir: dir, tlsCert: certs.serverCertPath })).toThrow(ConfigError);
    await expect(
      startServer(
        loadConfig({
          dataDir: dir,
          port: 0,
          logLevel: 'silent',
          tlsCert: join(dir, 'nope.pem'),
          tlsKey: certs.serverKeyPath,
        }),
      ),
    ).rejects.toThrow(/Cannot read the TLS certificate file .*nope\.pem: ENOENT/);
  });
});

describe('trusted proxies', () => {
  let behindProxy: TestVault;
  let direct: TestVault;

  beforeAll(async () => {
    behindProxy = await createTestVault({ trustProxy: '127.0.0.1, 10.0.0.0/8' });
    direct = await createTestVault();
  });
  afterAll(async () => {
    await behindProxy?.close();
    await direct?.close();
  });

  // The token endpoint's per-address limit (60 a minute) shows which address the server believed.
  async function limitedAfter(t: TestVault, remoteAddress: string, forwardedFor: (i: number) => string) {
    for (let i = 0; i < 61; i += 1) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/oauth2/v2.0/token',
        remoteAddress,
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': forwardedFor(i) },
        payload: 'grant_type=client_credentials&scope=x%2F.default&client_id=a&client_secret=b',
      });
      if (res.statusCode === 429) return i + 1;
    }
    return undefined;
  }

  it('believes X-Forwarded-For from a trusted proxy: each client has its own limit', async () => {
    expect(await limitedAfter(behindProxy, '127.0.0.1', (i) => `198.51.100.${i}`)).toBeUndefined();
    // Through two trusted hops, the first untrusted address from the right is the client.
    expect(await limitedAfter(behindProxy, '10.1.2.3', (i) => `203.0.113.${i}, 10.9.9.9`)).toBeUndefined();
  });

  it('ignores X-Forwarded-For from anyone else: a client cannot choose its address', async () => {
    expect(await limitedAfter(behindProxy, '192.0.2.7', (i) => `198.51.100.${i}`)).toBe(61);
    expect(await limitedAfter(direct, '127.0.0.1', (i) => `198.51.100.${i}`)).toBe(61);
  });

  it('refuses a trusted-proxy entry that is not an address, a CIDR or a range name', () => {
    for (const bad of ['*', 'true', '10.0.0.0/33', 'example.com', '::1/129']) {
      expect(() => loadConfig({ trustProxy: bad }), bad).toThrow(ConfigError);
    }
    expect(loadConfig({ trustProxy: 'loopback, ::1/128, 192.168.0.0/16' }).trustProxy).toEqual([
      'loopback',
      '::1/128',
      '192.168.0.0/16',
    ]);
  });
});
