// Enrollment tokens after creation: listed with their use and status (never the token), revoked by
// an administrator (devices already enrolled keep their credentials), other organizations' are 404.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../src/app-types.js';
import type { Clock } from '../src/lib/clock.js';
import { adminTokenFor, createOrganization } from './access/support.js';
import { bearer, createTestVault, escrowPayload, newKey, randomKeyId, type TestVault } from './helpers.js';

interface Summary {
  id: string;
  description: string;
  status: string;
  useCount: number;
  maxUses: number;
  revokedAt: string | null;
}

describe('enrollment tokens: list and revoke', () => {
  let t: TestVault;
  let app: App;
  let now = new Date();
  const clock: Clock = { now: () => new Date(now) };

  beforeAll(async () => {
    t = await createTestVault();
    app = await t.appWith({ clock });
  });
  afterAll(async () => t?.close());

  const create = async (payload: object) => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/enrollment-tokens',
      headers: bearer(t.adminToken),
      payload,
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as { id: string; enrollmentToken: string };
  };
  const enroll = (token: string) =>
    app.inject({
      method: 'POST',
      url: '/api/escrow/enroll',
      headers: bearer(token),
      payload: { device: { name: `PC-${randomKeyId().slice(0, 6)}` } },
    });
  const list = async (token = t.adminToken) => {
    const res = await app.inject({ url: '/api/enrollment-tokens', headers: bearer(token) });
    expect(res.statusCode, res.body).toBe(200);
    return { body: res.body, tokens: (res.json() as { enrollmentTokens: Summary[] }).enrollmentTokens };
  };

  it('lists every token with its use and status, newest first, and never the token itself', async () => {
    const single = await create({ description: 'one laptop', maxUses: 1 });
    expect((await enroll(single.enrollmentToken)).statusCode).toBe(201);
    now = new Date(now.getTime() + 1000);
    const short = await create({ description: 'short-lived', expiresInHours: 1, maxUses: 5 });
    now = new Date(now.getTime() + 1000);
    const fleet = await create({ description: 'fleet', maxUses: 50 });

    const { body, tokens } = await list();
    expect(tokens.map((x) => x.id).slice(0, 3)).toEqual([fleet.id, short.id, single.id]);
    expect(tokens.find((x) => x.id === single.id)).toMatchObject({
      description: 'one laptop',
      status: 'used-up',
      useCount: 1,
      maxUses: 1,
      revokedAt: null,
    });
    expect(tokens.find((x) => x.id === fleet.id)?.status).toBe('active');
    for (const secret of [single.enrollmentToken, short.enrollmentToken, fleet.enrollmentToken]) {
      expect(body).not.toContain(secret);
    }
    now = new Date(now.getTime() + 2 * 3_600_000);
    expect((await list()).tokens.find((x) => x.id === short.id)?.status).toBe('expired');
  });

  it('revokes a token: it enrolls no more devices, and devices enrolled with it keep escrowing', async () => {
    const token = await create({ description: 'to revoke', maxUses: 10 });
    const first = await enroll(token.enrollmentToken);
    expect(first.statusCode).toBe(201);
    const revoke = await app.inject({
      method: 'DELETE',
      url: `/api/enrollment-tokens/${token.id}`,
      headers: bearer(t.adminToken),
    });
    expect(revoke.statusCode).toBe(204);

    const refused = await enroll(token.enrollmentToken);
    expect(refused.statusCode).toBe(401);
    const escrowed = await app.inject({
      method: 'POST',
      url: '/api/escrow/recovery-keys',
      headers: bearer(first.json().deviceCredential),
      payload: escrowPayload(randomKeyId(), [newKey()]),
    });
    expect(escrowed.statusCode, escrowed.body).toBe(200);
    const listed = (await list()).tokens.find((x) => x.id === token.id);
    expect(listed).toMatchObject({ status: 'revoked', useCount: 1 });
    expect(listed?.revokedAt).not.toBeNull();

    const audit = await t.vault.db
      .selectFrom('audit_log')
      .select(['action', 'target_id'])
      .where('action', '=', 'enrollment-token.revoked')
      .execute();
    expect(audit).toEqual([{ action: 'enrollment-token.revoked', target_id: token.id }]);
    // Revoking twice says there is nothing to revoke.
    const again = await app.inject({
      method: 'DELETE',
      url: `/api/enrollment-tokens/${token.id}`,
      headers: bearer(t.adminToken),
    });
    expect(again.statusCode).toBe(404);
  });

  it("keeps organizations apart: another organization's token is neither listed nor revocable", async () => {
    const token = await create({ description: 'ours' });
    const other = await createOrganization(t, 'Other org');
    const otherAdmin = await adminTokenFor(t, other);
    expect((await list(otherAdmin)).tokens).toEqual([]);
    const revoke = await app.inject({
      method: 'DELETE',
      url: `/api/enrollment-tokens/${token.id}`,
      headers: bearer(otherAdmin),
    });
    expect(revoke.statusCode).toBe(404);
    expect((await enroll(token.enrollmentToken)).statusCode).toBe(201);
  });
});
