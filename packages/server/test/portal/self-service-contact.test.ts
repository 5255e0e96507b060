// The administrator's contact text and link for the self-service refusal: bounded, https/mailto only, returned with the refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, createTestVault, type TestVault } from '../helpers.js';
import { auditRows, personWithPassword, setOwner, signIn, type CookieSession } from '../access/people.js';
import { assignRole, createPerson, deviceWithKey, personalToken } from '../access/support.js';

let t: TestVault;
let owner: CookieSession;
let mine: Awaited<ReturnType<typeof deviceWithKey>>;
let helpdesk: string;

beforeAll(async () => {
  t = await createTestVault();
  const person = await personWithPassword(t, t.organizationId);
  mine = await deviceWithKey(t, t.adminToken);
  await setOwner(t, t.adminToken, mine.deviceId, person.userId);
  owner = await signIn(t.app, person);
  const h = await createPerson(t, t.organizationId);
  await assignRole(t, t.organizationId, h, 'helpdesk');
  helpdesk = (await personalToken(t, t.organizationId, h)).token;
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const patch = (payload: Record<string, unknown>, token = t.adminToken) =>
  t.app.inject({ method: 'PATCH', url: '/api/organization/settings', headers: bearer(token), payload });
const myKeys = () =>
  t.app.inject({ url: `/api/self-service/devices/${mine.deviceId}/recovery-keys`, headers: owner.read });

describe('self-service contact', () => {
  it('is empty by default', async () => {
    const res = await t.app.inject({ url: '/api/organization/settings', headers: bearer(t.adminToken) });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ selfServiceContactText: null, selfServiceContactLink: null });
  });

  it('the refusal carries it once the administrator sets it (and restricts self-service)', async () => {
    let res = await patch({ restrictOwnerKeyRecovery: true });
    expect(res.statusCode, res.body).toBe(200);
    res = await myKeys();
    expect(res.statusCode).toBe(403);
    expect(res.json().error.details).toEqual({
      reason: 'self-service-restricted',
      contact: { text: null, link: null },
    });

    res = await patch({
      selfServiceContactText: 'Call the service desk on 555-0100, weekdays 8–18.',
      selfServiceContactLink: 'https://help.example.test/bitlocker',
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({
      restrictOwnerKeyRecovery: true,
      selfServiceContactText: 'Call the service desk on 555-0100, weekdays 8–18.',
      selfServiceContactLink: 'https://help.example.test/bitlocker',
    });
    res = await myKeys();
    expect(res.statusCode).toBe(403);
    expect(res.json().error.details.contact).toEqual({
      text: 'Call the service desk on 555-0100, weekdays 8–18.',
      link: 'https://help.example.test/bitlocker',
    });
    const byKeyId = await t.app.inject({
      url: `/api/self-service/recovery-keys?keyIdPrefix=${mine.keyId.slice(0, 8)}`,
      headers: owner.read,
    });
    expect(byKeyId.statusCode).toBe(403);
    expect(byKeyId.json().error.details.contact.link).toBe('https://help.example.test/bitlocker');
    const audit = await auditRows(t, 'organization.settings-changed');
    expect(JSON.stringify(audit)).toContain('help.example.test');
  });

  it('takes a mailto: link and clears with null; other changes keep it', async () => {
    let res = await patch({ selfServiceContactLink: 'mailto:helpdesk@example.test' });
    expect(res.json().selfServiceContactLink).toBe('mailto:helpdesk@example.test');
    res = await patch({ disclosureAlertThreshold: 25 });
    expect(res.json().selfServiceContactLink).toBe('mailto:helpdesk@example.test');
    res = await patch({ selfServiceContactText: null, selfServiceContactLink: null });
    expect(res.json()).toMatchObject({ selfServiceContactText: null, selfServiceContactLink: null });
  });

  it('refuses links other than https: and mailto:, and unbounded text', async () => {
    for (const link of [
      'javascript:alert(1)',
      'http://help.example.test',
      'data:text/html,hi',
      'help.example.test',
      'mailto:',
      `https://example.test/${'a'.repeat(500)}`,
    ]) {
      const res = await patch({ selfServiceContactLink: link });
      expect(res.statusCode, link).toBe(400);
    }
    expect((await patch({ selfServiceContactText: 'x'.repeat(501) })).statusCode).toBe(400);
    expect((await patch({ selfServiceContactText: '' })).statusCode).toBe(400);
  });

  it('only an administrator changes it', async () => {
    expect((await patch({ selfServiceContactText: 'nope' }, helpdesk)).statusCode).toBe(403);
  });
});
