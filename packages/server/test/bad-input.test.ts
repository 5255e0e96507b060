// Bad input gets a 4xx with a stable code and writes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bearer,
  createTestVault,
  enrollDevice,
  escrowPayload,
  newKey,
  randomKeyId,
  type TestVault,
} from './helpers.js';

let t: TestVault;
let device: Awaited<ReturnType<typeof enrollDevice>>;
beforeAll(async () => {
  t = await createTestVault();
  device = await enrollDevice(t);
});
afterAll(async () => {
  await t.close();
});

async function snapshot() {
  const counts: Record<string, number> = {};
  for (const table of ['recovery_keys', 'volumes', 'devices', 'audit_log', 'device_credentials'] as const) {
    const row = await t.vault.db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    counts[table] = Number(row.n);
  }
  return counts;
}

const escrow = (payload: unknown, headers = bearer(device.credential)) =>
  t.app.inject({ method: 'POST', url: '/api/escrow/recovery-keys', headers, payload: payload as object });

describe('escrow input', () => {
  const good = newKey();
  const cases: [string, unknown, number, string][] = [
    ['malformed volume GUID', escrowPayload('not-a-guid', [good]), 400, 'VALIDATION_FAILED'],
    [
      'malformed key id',
      escrowPayload(randomKeyId(), [{ keyId: '1234', password: good.password }]),
      400,
      'VALIDATION_FAILED',
    ],
    [
      'wrong type',
      { volumes: [{ ...escrowPayload(randomKeyId(), [good]).volumes[0], volumeType: 7 }] },
      400,
      'VALIDATION_FAILED',
    ],
    ['unknown field', { ...escrowPayload(randomKeyId(), [good]), extra: true }, 400, 'VALIDATION_FAILED'],
    [
      'unknown nested field',
      { volumes: [{ ...escrowPayload(randomKeyId(), [good]).volumes[0], tpm: 'yes' }] },
      400,
      'VALIDATION_FAILED',
    ],
    ['empty volumes', { volumes: [] }, 400, 'VALIDATION_FAILED'],
    [
      'overlong string',
      escrowPayload(randomKeyId(), [{ keyId: good.keyId, password: '1'.repeat(500) }]),
      400,
      'VALIDATION_FAILED',
    ],
  ];
  it.each(cases)('%s → %s %s', async (_name, payload, status, code) => {
    const before = await snapshot();
    const res = await escrow(payload);
    expect(res.statusCode).toBe(status);
    expect(res.json().error).toMatchObject({ code, requestId: expect.stringMatching(/^req_/) });
    expect(await snapshot()).toEqual(before);
  });

  it('an invalid password refuses the whole request with per-group reasons and no digits', async () => {
    const before = await snapshot();
    const valid = newKey();
    const groups = newKey().password.split('-');
    const wrongDigit = String((Number(groups[2]![0]) + 1) % 10);
    groups[2] = wrongDigit + groups[2]!.slice(1);
    groups[5] = '12345';
    const bad = { keyId: randomKeyId(), password: groups.join('-') };
    const res = await escrow({
      volumes: [
        ...escrowPayload(randomKeyId(), [valid]).volumes,
        ...escrowPayload(randomKeyId(), [bad], 'fixed').volumes,
      ],
    });
    expect(res.statusCode).toBe(422);
    const error = res.json().error;
    expect(error.code).toBe('INVALID_RECOVERY_PASSWORD');
    expect(error.details.passwords).toEqual([
      { volumeIndex: 1, keyIndex: 0, problems: expect.arrayContaining([{ group: 6, reason: 'length' }]) },
    ]);
    expect(error.details.passwords[0].problems.map((p: { group: number }) => p.group)).toContain(3);
    for (const g of groups) expect(res.body).not.toContain(g);
    expect(res.body).not.toContain(valid.password.split('-')[0]);
    expect(await snapshot()).toEqual(before);
  });

  it('a 10 MB body → 413 PAYLOAD_TOO_LARGE', async () => {
    const before = await snapshot();
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: { ...bearer(device.credential), 'content-type': 'application/json' },
      payload: `{"volumes":[],"pad":"${'x'.repeat(10 * 1024 * 1024)}"}`,
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await snapshot()).toEqual(before);
  });

  it('malformed JSON → 400 MALFORMED_REQUEST', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: { ...bearer(device.credential), 'content-type': 'application/json' },
      payload: '{"volumes": [',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('MALFORMED_REQUEST');
  });
});

describe('enrollment', () => {
  const enroll = (token: string | undefined) =>
    t.app.inject({
      method: 'POST',
      url: '/api/escrow/enroll',
      headers: token === undefined ? {} : bearer(token),
      payload: { device: { name: 'PC-NEW' } },
    });

  it('a missing, unknown, expired or used-up enrollment token → 401 ENROLLMENT_TOKEN_INVALID, nothing written', async () => {
    const before = await snapshot();
    const created = await t.vault.services.escrow.createEnrollmentToken({
      organizationId: t.organizationId,
      description: 'one use',
      expiresInHours: 1,
      maxUses: 1,
      actor: { type: 'cli', id: null },
    });
    const afterCreate = await snapshot();
    expect(afterCreate.audit_log).toBe((before.audit_log ?? 0) + 1);
    for (const token of [
      undefined,
      'bdv_et_' + 'a'.repeat(52),
      created.enrollmentToken.slice(0, -1) + (created.enrollmentToken.endsWith('0') ? '1' : '0'),
      'garbage',
    ]) {
      const res = await enroll(token);
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('ENROLLMENT_TOKEN_INVALID');
    }
    expect(await snapshot()).toEqual(afterCreate);
    expect((await enroll(created.enrollmentToken)).statusCode).toBe(201);
    const usedUp = await enroll(created.enrollmentToken);
    expect(usedUp.json().error.code).toBe('ENROLLMENT_TOKEN_INVALID');

    // Expired: a token whose expiry has passed.
    const expiredAt = await t.vault.services.escrow.createEnrollmentToken({
      organizationId: t.organizationId,
      description: 'expired',
      expiresInHours: 1,
      maxUses: 5,
      actor: { type: 'cli', id: null },
    });
    await t.vault.db
      .updateTable('enrollment_tokens')
      .set({ expires_at: new Date(Date.now() - 1000).toISOString() })
      .where('id', '=', expiredAt.id)
      .execute();
    const expired = await enroll(expiredAt.enrollmentToken);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().error.code).toBe('ENROLLMENT_TOKEN_INVALID');
  });

  it('a device credential is refused on every non-escrow route', async () => {
    for (const url of [
      '/api/devices?name=x',
      `/api/recovery-keys?deviceId=${device.deviceId}`,
      '/api/audit-log',
      '/api/api-tokens',
    ]) {
      const res = await t.app.inject({ url, headers: bearer(device.credential) });
      expect(res.statusCode, url).toBe(403);
      expect(res.json().error.code).toBe('FORBIDDEN');
    }
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/enrollment-tokens',
      headers: bearer(device.credential),
      payload: {},
    });
    expect(res.statusCode).toBe(403);
  });

  it('an admin API token is refused on the escrow route', async () => {
    const res = await escrow(escrowPayload(randomKeyId(), [newKey()]), bearer(t.adminToken));
    expect(res.statusCode).toBe(403);
  });
});

describe('lookup input', () => {
  it.each([
    ['/api/recovery-keys?keyId=xyz', 'VALIDATION_FAILED'],
    ['/api/recovery-keys?keyIdPrefix=12345', 'VALIDATION_FAILED'],
    ['/api/recovery-keys?keyIdPrefix=1234567G', 'VALIDATION_FAILED'],
    ['/api/recovery-keys', 'VALIDATION_FAILED'],
    ['/api/recovery-keys?deviceId=dev_x&keyIdPrefix=12345678', 'VALIDATION_FAILED'],
    ['/api/devices?name=a&color=red', 'VALIDATION_FAILED'],
    ['/api/devices/not-an-id', 'VALIDATION_FAILED'],
    ['/api/recovery-keys/rk_00000000000000000000000000', 'KEY_NOT_FOUND'],
    ['/api/nothing-here', 'NOT_FOUND'],
  ])('%s → %s', async (url, code) => {
    const res = await t.app.inject({ url, headers: bearer(t.adminToken) });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(res.json().error.code).toBe(code);
  });

  it('disclosure requires a reason', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/recovery-keys/rk_00000000000000000000000000/disclose',
      headers: bearer(t.adminToken),
      payload: {},
    });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('VALIDATION_FAILED');
  });
});
