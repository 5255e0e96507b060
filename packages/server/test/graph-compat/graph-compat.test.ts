// Graph-compatible routes in process: shapes, paging, disclosure with audit, OData errors, token endpoint.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_DISCLOSURE_LIMITS } from '../../src/modules/access/disclosure-guard.js';
import {
  bearer,
  createTestVault,
  enrollDevice,
  escrowPayload,
  newKey,
  randomKeyId,
  type TestVault,
} from '../helpers.js';

let t: TestVault;
let device: { name: string; deviceId: string; credential: string };
const keys: { keyId: string; password: string; volumeType: string }[] = [];
let graphDeviceId: string;

async function apiToken(permissions: string[]) {
  const created = await t.vault.services.apiTokens.createApiToken({
    organizationId: t.organizationId,
    name: `graph ${permissions.join(' ')}`,
    permissions,
    creatorPermissions: undefined,
    actor: { type: 'cli', id: null },
  });
  return { id: created.id, token: created.token };
}

const get = (url: string, token: string, headers: Record<string, string> = {}) =>
  t.app.inject({ url, headers: { ...bearer(token), ...headers } });

beforeAll(async () => {
  t = await createTestVault();
  device = await enrollDevice(t, 'DESKTOP-53O32QI');
  for (const volumeType of ['os', 'fixed', 'removable', 'fixed', 'fixed']) {
    const key = newKey();
    const sent = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(device.credential),
      payload: escrowPayload(randomKeyId(), [key], volumeType),
    });
    expect(sent.statusCode).toBe(200);
    keys.push({ ...key, volumeType: { os: '1', fixed: '2', removable: '3' }[volumeType]! });
  }
  await enrollDevice(t, 'OTHER-PC');
});

afterAll(async () => {
  await t?.close();
});

describe('Graph devices', () => {
  it("finds a device by displayName and answers Graph's shape, with $select", async () => {
    const res = await get(
      `/v1.0/devices?$filter=${encodeURIComponent("displayName eq 'desktop-53o32qi'")}`,
      t.adminToken,
    );
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body['@odata.context']).toMatch(/^http:\/\/localhost(:\d+)?\/v1\.0\/\$metadata#devices$/);
    expect(body.value).toHaveLength(1);
    expect(body.value[0]).toEqual({
      id: device.deviceId,
      deviceId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/),
      displayName: 'DESKTOP-53O32QI',
    });
    graphDeviceId = body.value[0].deviceId;
    const selected = await get(
      `/beta/devices?$filter=${encodeURIComponent(`deviceId eq '${graphDeviceId}'`)}&$select=displayName`,
      t.adminToken,
    );
    expect(selected.json().value).toEqual([{ displayName: 'DESKTOP-53O32QI' }]);
    const quoted = await get(
      `/v1.0/devices?$filter=${encodeURIComponent("displayName eq 'O''Brien'")}`,
      t.adminToken,
    );
    expect(quoted.json().value).toEqual([]);
  });
});

describe('Graph recovery keys', () => {
  it('lists the keys of a device without the key, pages with an opaque nextLink', async () => {
    const filter = encodeURIComponent(`deviceId eq '${graphDeviceId}'`);
    const all = await get(
      `/v1.0/informationProtection/bitlocker/recoveryKeys?$filter=${filter}`,
      t.adminToken,
    );
    expect(all.statusCode).toBe(200);
    const value = all.json().value as Record<string, unknown>[];
    expect(value.map((k) => k.id).sort()).toEqual(keys.map((k) => k.keyId.toLowerCase()).sort());
    for (const k of value) {
      expect(Object.keys(k).sort()).toEqual(['createdDateTime', 'deviceId', 'id', 'volumeType']);
      expect(k.deviceId).toBe(graphDeviceId);
    }
    expect(value.map((k) => k.volumeType).sort()).toEqual(keys.map((k) => k.volumeType).sort());
    expect(all.body).not.toContain(keys[0]!.password);

    const seen: string[] = [];
    let url: string | undefined =
      `/v1.0/informationProtection/bitlocker/recoveryKeys?$filter=${filter}&$top=2`;
    let pages = 0;
    while (url !== undefined) {
      const page = await get(url, t.adminToken);
      expect(page.statusCode).toBe(200);
      pages += 1;
      seen.push(...page.json().value.map((k: { id: string }) => k.id));
      const next = page.json()['@odata.nextLink'] as string | undefined;
      if (next !== undefined)
        expect(next).toMatch(/^http:\/\/localhost(:\d+)?\/v1\.0\/informationProtection/);
      url = next === undefined ? undefined : new URL(next).pathname + new URL(next).search;
    }
    expect(pages).toBe(3);
    expect(seen.sort()).toEqual(keys.map((k) => k.keyId.toLowerCase()).sort());
  });

  it('reads metadata, and the key with $select=key: audited with the Graph client headers, no-store', async () => {
    const key = keys[1]!;
    const url = `/v1.0/informationProtection/bitlocker/recoveryKeys/${key.keyId.toLowerCase()}`;
    const meta = await get(url, t.adminToken);
    expect(meta.statusCode).toBe(200);
    expect(meta.json()).not.toHaveProperty('key');
    expect(meta.json()['@odata.context']).toContain('recoveryKeys/$entity');

    const read = await get(`${url}?$select=key`, t.adminToken, {
      'ocp-client-name': 'Get-EntraBitLockerKeys',
      'ocp-client-version': '1.2.3',
    });
    expect(read.statusCode).toBe(200);
    expect(read.headers['cache-control']).toBe('no-store');
    expect(read.json()).toMatchObject({ id: key.keyId.toLowerCase(), key: key.password, volumeType: '2' });
    expect(read.json()['@odata.context']).toContain('recoveryKeys(key)/$entity');

    const rows = await t.vault.services.audit.list({
      organizationId: t.organizationId,
      afterSeq: 0,
      limit: 500,
    });
    const row = rows.find(
      (r) => r.action === 'recovery-key.disclosed' && r.request_id === read.headers['x-request-id'],
    );
    expect(row).toBeDefined();
    expect(JSON.parse(row!.details)).toMatchObject({
      channel: 'graph',
      clientName: 'Get-EntraBitLockerKeys',
      clientVersion: '1.2.3',
      recoveryKeyId: key.keyId,
    });
    expect(row!.reason).toMatch(/Graph/);
    // The same disclosure service marks the key for rotation.
    const native = await get(`/api/recovery-keys?keyId=${key.keyId}`, t.adminToken);
    expect(native.json().recoveryKeys[0].status).toBe('rotation_pending');
    expect(await t.vault.services.audit.verifyChain()).toMatchObject({ ok: true });
  });

  it('answers the same under /beta: list, metadata and the key read (audited like v1.0)', async () => {
    const key = keys[2]!;
    const filter = encodeURIComponent(`deviceId eq '${graphDeviceId}'`);
    const list = await get(
      `/beta/informationProtection/bitlocker/recoveryKeys?$filter=${filter}`,
      t.adminToken,
    );
    expect(list.statusCode).toBe(200);
    expect((list.json().value as { id: string }[]).map((k) => k.id).sort()).toEqual(
      keys.map((k) => k.keyId.toLowerCase()).sort(),
    );
    expect(list.json()['@odata.context']).toMatch(/\/beta\//);
    const url = `/beta/informationProtection/bitlocker/recoveryKeys/${key.keyId.toLowerCase()}`;
    const meta = await get(url, t.adminToken);
    expect(meta.statusCode).toBe(200);
    expect(meta.json()).not.toHaveProperty('key');
    // No HEAD twin: it would disclose (audit row, rotation) and send no body.
    const head = await t.app.inject({
      method: 'HEAD',
      url: `${url}?$select=key`,
      headers: { authorization: `Bearer ${t.adminToken}` },
    });
    expect(head.statusCode).toBe(404);
    const read = await get(`${url}?$select=key`, t.adminToken);
    expect(read.statusCode).toBe(200);
    expect(read.json().key).toBe(key.password);
    const rows = await t.vault.services.audit.list({
      organizationId: t.organizationId,
      afterSeq: 0,
      limit: 500,
    });
    expect(
      rows.some(
        (r) => r.action === 'recovery-key.disclosed' && r.request_id === read.headers['x-request-id'],
      ),
    ).toBe(true);
  });

  it('a script past the disclosure limit gets 429 TooManyRequests with Retry-After, as Graph SDKs expect', async () => {
    const script = await apiToken(['keys:read-metadata', 'keys:disclose']);
    const url = `/v1.0/informationProtection/bitlocker/recoveryKeys/${keys[0]!.keyId.toLowerCase()}?$select=key`;
    // Its own address, so the other tests' disclosures do not share the per-address budget.
    const read = () => t.app.inject({ url, headers: bearer(script.token), remoteAddress: '192.0.2.77' });
    const max = DEFAULT_DISCLOSURE_LIMITS.perAccount.max;
    for (let i = 0; i < max; i++) expect((await read()).statusCode).toBe(200);
    const refused = await read();
    expect(refused.statusCode, refused.body).toBe(429);
    expect(refused.json().error.code).toBe('TooManyRequests');
    const wait = Number(refused.headers['retry-after']);
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(DEFAULT_DISCLOSURE_LIMITS.perAccount.windowSeconds);
    expect(refused.body).not.toContain(keys[0]!.password);
  });

  it('answers OData errors with Graph codes for every failure under the prefixes', async () => {
    const key = keys[0]!.keyId.toLowerCase();
    const metadataOnly = await apiToken(['keys:read-metadata', 'devices:read']);
    const denied = await get(
      `/v1.0/informationProtection/bitlocker/recoveryKeys/${key}?$select=key`,
      metadataOnly.token,
    );
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe('Authorization_RequestDenied');
    expect(denied.body).not.toContain(keys[0]!.password);

    const badToken = await get(
      '/v1.0/informationProtection/bitlocker/recoveryKeys',
      `bdv_at_${'a'.repeat(52)}`,
    );
    expect(badToken.statusCode).toBe(401);
    expect(badToken.json()).toEqual({
      error: {
        code: 'InvalidAuthenticationToken',
        message: expect.any(String),
        innerError: {
          'request-id': badToken.headers['x-request-id'],
          date: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/),
        },
      },
    });
    const noToken = await t.app.inject({ url: '/beta/devices?$filter=displayName%20eq%20%27x%27' });
    expect(noToken.json().error.code).toBe('InvalidAuthenticationToken');

    const missing = await get(
      `/v1.0/informationProtection/bitlocker/recoveryKeys/${randomKeyId().toLowerCase()}`,
      t.adminToken,
    );
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('Request_ResourceNotFound');

    for (const url of [
      '/v1.0/informationProtection/bitlocker/recoveryKeys?$filter=volumeType%20eq%20%271%27',
      '/v1.0/informationProtection/bitlocker/recoveryKeys?$filter=deviceId%20eq%20%27nope%27',
      '/v1.0/informationProtection/bitlocker/recoveryKeys?$top=0',
      '/v1.0/informationProtection/bitlocker/recoveryKeys?$skiptoken=%7Bbad',
      '/v1.0/informationProtection/bitlocker/recoveryKeys?$select=key',
      '/v1.0/informationProtection/bitlocker/recoveryKeys?$expand=x',
      `/v1.0/informationProtection/bitlocker/recoveryKeys/not-a-guid`,
      `/v1.0/informationProtection/bitlocker/recoveryKeys/${key}?$select=password`,
      '/v1.0/devices',
    ]) {
      const res = await get(url, t.adminToken);
      expect(res.statusCode, url).toBe(400);
      expect(res.json().error.code, url).toBe('BadRequest');
      expect(res.json().error.innerError['request-id']).toBe(res.headers['x-request-id']);
    }
    const unknown = await get('/v1.0/me/drive', t.adminToken);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.code).toBe('Request_ResourceNotFound');
  });
});

describe('OAuth2 client credentials', () => {
  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const post = (url: string, fields: Record<string, string>, headers: Record<string, string> = {}) =>
    t.app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      payload: form(fields),
    });

  it('exchanges an API token id and secret for a Bearer token that works on the Graph routes', async () => {
    const client = await apiToken(['keys:read-metadata', 'keys:disclose', 'devices:read']);
    const fields = {
      client_id: client.id,
      client_secret: client.token,
      scope: 'https://graph.microsoft.com/.default',
      grant_type: 'client_credentials',
      client_info: '1',
    };
    for (const url of [
      '/oauth2/v2.0/token',
      `/${t.organizationId}/oauth2/v2.0/token`,
      '/contoso.example/oauth2/v2.0/token',
    ]) {
      const res = await post(url, fields);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.json()).toEqual({
        token_type: 'Bearer',
        expires_in: 3600,
        ext_expires_in: 3600,
        access_token: expect.any(String),
      });
      const used = await get(
        '/v1.0/informationProtection/bitlocker/recoveryKeys?$top=1',
        res.json().access_token,
      );
      expect(used.statusCode).toBe(200);
    }
    const basic = Buffer.from(`${client.id}:${client.token}`).toString('base64');
    const viaBasic = await post(
      '/oauth2/v2.0/token',
      { scope: 'https://vault.example/.default', grant_type: 'client_credentials' },
      { authorization: `Basic ${basic}` },
    );
    expect(viaBasic.statusCode).toBe(200);
  });

  it('refuses wrong secrets, other ids, other organizations, other grants and scopes', async () => {
    const client = await apiToken(['keys:read-metadata']);
    const other = await apiToken(['keys:read-metadata']);
    const base = {
      client_id: client.id,
      client_secret: client.token,
      scope: 'https://graph.microsoft.com/.default',
      grant_type: 'client_credentials',
    };
    const cases: [string, Record<string, string>, number, string][] = [
      ['/oauth2/v2.0/token', { ...base, client_secret: `bdv_at_${'b'.repeat(52)}` }, 401, 'invalid_client'],
      ['/oauth2/v2.0/token', { ...base, client_id: other.id }, 401, 'invalid_client'],
      ['/oauth2/v2.0/token', { ...base, client_secret: 'not-a-token' }, 401, 'invalid_client'],
      ['/org_00000000000000000000000000/oauth2/v2.0/token', base, 401, 'invalid_client'],
      ['/oauth2/v2.0/token', { ...base, grant_type: 'password' }, 400, 'unsupported_grant_type'],
      ['/oauth2/v2.0/token', { ...base, scope: 'openid profile' }, 400, 'invalid_scope'],
      ['/oauth2/v2.0/token', { ...base, client_id: 'x'.repeat(500) }, 400, 'invalid_request'],
    ];
    for (const [url, fields, status, error] of cases) {
      const res = await post(url, fields);
      expect(res.statusCode, error).toBe(status);
      expect(res.json().error, JSON.stringify(fields.client_id)).toBe(error);
      expect(res.body).not.toContain(client.token);
    }
    const json = await t.app.inject({ method: 'POST', url: '/oauth2/v2.0/token', payload: base });
    expect(json.statusCode).toBe(400);
    expect(json.json().error).toBe('invalid_request');
  });
});
