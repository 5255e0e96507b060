// Acceptance: the real @microsoft/microsoft-graph-client 3.0.7 against bdevault over TLS (test CA).
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/lib/config.js';
import { startServer, type RunningServer } from '../../src/vault.js';
import {
  bearer,
  enrollDevice,
  escrowPayload,
  fastHasher,
  newKey,
  randomKeyId,
  type TestVault,
} from '../helpers.js';
import { createTestCertificates, type TestCertificates } from '../support/test-ca.js';

const run = promisify(execFile);
const workflow = fileURLToPath(new URL('./graph-client-workflow.ts', import.meta.url));
const serverRoot = fileURLToPath(new URL('../../', import.meta.url));

let dir: string;
let certs: TestCertificates;
let server: RunningServer;
let token: string;
const escrowed: { keyId: string; password: string }[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bdevault-graph-'));
  certs = await createTestCertificates(join(dir, 'tls'));
  const config = loadConfig({
    dataDir: dir,
    port: 0,
    logLevel: 'silent',
    tlsCert: certs.serverCertPath,
    tlsKey: certs.serverKeyPath,
  });
  server = await startServer(config, { passwordHasher: fastHasher });
  const organizationId = server.firstAdmin!.organizationId;
  token = (
    await server.vault.services.apiTokens.createApiToken({
      organizationId,
      name: 'graph script',
      permissions: ['keys:read-metadata', 'keys:disclose', 'devices:read', 'enrollment:manage'],
      creatorPermissions: undefined,
      actor: { type: 'cli', id: null },
    })
  ).token;
  // Seed through the HTTP API (in process): the enroll helper needs only the app and a token.
  const t = { app: server.app, adminToken: token } as unknown as TestVault;
  const device = await enrollDevice(t, 'DESKTOP-53O32QI');
  for (const volumeType of ['os', 'fixed', 'removable']) {
    const key = newKey();
    const res = await server.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [key], volumeType),
    });
    expect(res.statusCode).toBe(200);
    escrowed.push(key);
  }
  // Keys of another device, so the unfiltered listing spans several pages of 2.
  const other = await enrollDevice(t, 'LAPTOP-OTHER');
  await server.app.inject({
    method: 'POST',
    url: '/api/escrow/recovery-keys',
    headers: bearer(other.credential),
    payload: escrowPayload(randomKeyId(), [newKey()], 'os'),
  });
}, 120_000);

afterAll(async () => {
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Microsoft Graph JS client 3.0.7 over TLS', () => {
  it('runs Get-EntraBitLockerKeys, pages with PageIterator, and gets a GraphError for a wrong token', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const { stdout } = await run(process.execPath, ['--import', 'tsx', workflow], {
      cwd: serverRoot,
      timeout: 60_000,
      env: {
        ...process.env,
        NODE_EXTRA_CA_CERTS: certs.caCertPath,
        GRAPH_BASE_URL: server.url,
        GRAPH_TOKEN: token,
        GRAPH_DEVICE_NAME: 'DESKTOP-53O32QI',
      },
    });
    const result = JSON.parse(stdout) as {
      device: { id: string; deviceId: string; displayName: string };
      listedCount: number;
      keys: { id: string; key: string; volumeType: string; deviceId: string }[];
      pagedIds: string[];
      wrongToken: { isGraphError: boolean; code: string; statusCode: number };
      requests: { url: string; authorized: boolean }[];
    };

    expect(result.device.displayName).toBe('DESKTOP-53O32QI');
    expect(result.listedCount).toBe(3);
    expect(result.keys.map((k) => [k.id, k.key]).sort()).toEqual(
      escrowed.map((k) => [k.keyId.toLowerCase(), k.password]).sort(),
    );
    expect(result.keys.map((k) => k.volumeType).sort()).toEqual(['1', '2', '3']);
    expect(new Set(result.keys.map((k) => k.deviceId))).toEqual(new Set([result.device.deviceId]));

    expect(result.pagedIds).toHaveLength(4);
    expect(new Set(result.pagedIds).size).toBe(4);
    const pageRequests = result.requests.filter(
      (r) => r.url.includes('recoveryKeys?') && r.url.includes('top=2'),
    );
    expect(pageRequests.length).toBeGreaterThanOrEqual(2);
    expect(
      result.requests.some((r) => r.url.includes('recoveryKeys/') && r.url.includes('$select=key')),
    ).toBe(true);
    // The client attached the real token to every request but the one made with the wrong token.
    expect(result.requests.filter((r) => !r.authorized)).toHaveLength(1);

    expect(result.wrongToken).toEqual({
      isGraphError: true,
      code: 'InvalidAuthenticationToken',
      statusCode: 401,
    });

    // Each key read left its own audit row, with the client's identification headers.
    const rows = await server.vault.services.audit.list({
      organizationId: server.firstAdmin!.organizationId,
      afterSeq: 0,
      limit: 1000,
    });
    const reads = rows.filter((r) => r.action === 'recovery-key.disclosed');
    expect(reads).toHaveLength(3);
    for (const row of reads) {
      expect(JSON.parse(row.details)).toMatchObject({
        channel: 'graph',
        clientName: 'Get-EntraBitLockerKeys',
      });
    }
    expect(await server.vault.services.audit.verifyChain()).toMatchObject({ ok: true });
  });
});
