// LDAP sign-in against a real Samba AD domain controller: groups for role mapping, refusals, TLS.
import { Attribute, Change } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authenticateLdapUser,
  LdapAuthError,
  type LdapAuthOptions,
} from '../../src/modules/identity/ldap-auth.js';
import { generateAdPassword, startSambaAd, type CreatedUser, type SambaAd } from '../support/samba-ad.js';
import { sambaAvailability } from '../support/samba-install.js';

const availability = await sambaAvailability();
if (!availability.ok) console.warn(availability.reason);

async function refusal(promise: Promise<unknown>): Promise<LdapAuthError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LdapAuthError);
  return err as LdapAuthError;
}

describe.skipIf(!availability.ok)('authenticateLdapUser against Samba AD', () => {
  let dc: SambaAd;
  let base: Omit<LdapAuthOptions, 'username' | 'password'>;
  let service: CreatedUser & { password: string };
  let alice: CreatedUser & { password: string };
  let bob: CreatedUser & { password: string };
  let carol: CreatedUser & { password: string };

  beforeAll(async () => {
    dc = await startSambaAd();
    const make = async (name: string, groups: string[], attrs?: { displayName?: string; mail?: string }) => {
      const password = generateAdPassword();
      return { ...(await dc.createUser(name, password, groups, attrs)), password };
    };
    service = await make('svc-signin', []);
    alice = await make('alice', ['bdevault-helpdesk'], {
      displayName: 'Alice Example',
      mail: 'alice@example.test',
    });
    // bob is an administrator only through a nested group.
    const admins = await dc.createGroup('bdevault-admins');
    const tier2 = await dc.createGroup('Tier 2');
    await dc.addGroupMember(admins, tier2);
    bob = await make('bob', ['Tier 2']);
    carol = await make('carol', ['bdevault-helpdesk']);
    await dc.withAdmin((client) =>
      client.modify(
        carol.dn,
        // ACCOUNTDISABLE | NORMAL_ACCOUNT
        new Change({
          operation: 'replace',
          modification: new Attribute({ type: 'userAccountControl', values: ['514'] }),
        }),
      ),
    );
    base = {
      url: dc.url,
      tlsCa: dc.caCertPem,
      baseDn: dc.baseDn,
      bindDn: service.dn,
      bindPassword: service.password,
    };
  });

  afterAll(async () => {
    await dc?.stop();
  });

  it('signs in with the right password and returns the groups to map to roles', async () => {
    const user = await authenticateLdapUser({ ...base, username: 'alice', password: alice.password });
    expect(user).toMatchObject({
      dn: alice.dn,
      username: 'alice',
      userPrincipalName: alice.upn,
      displayName: 'Alice Example',
      email: 'alice@example.test',
    });
    expect(user.groups).toContain('bdevault-helpdesk');
    expect(user.groups).toContain(`CN=bdevault-helpdesk,${dc.usersDn}`);
  });

  it('accepts the UPN and DOMAIN\\user spellings, with and without a service account, over StartTLS too', async () => {
    const direct = { ...base, bindDn: undefined, bindPassword: undefined };
    for (const [options, username] of [
      [base, alice.upn],
      [base, `${dc.domain}\\alice`],
      [direct, 'alice'],
      [direct, alice.upn],
      [{ ...direct, url: dc.startTlsUrl }, 'alice'],
      [{ ...base, url: dc.startTlsUrl }, 'ALICE'],
    ] as const) {
      const user = await authenticateLdapUser({ ...options, username, password: alice.password });
      expect(user.dn, username).toBe(alice.dn);
      expect(user.groups).toContain('bdevault-helpdesk');
    }
  });

  it('includes groups reached through nested membership', async () => {
    const user = await authenticateLdapUser({ ...base, username: 'bob', password: bob.password });
    expect(user.groups).toEqual(expect.arrayContaining(['Tier 2', 'bdevault-admins']));
    const direct = await authenticateLdapUser({
      ...base,
      username: 'bob',
      password: bob.password,
      nestedGroups: false,
    });
    expect(direct.groups).toContain('Tier 2');
    expect(direct.groups).not.toContain('bdevault-admins');
  });

  it('refuses a wrong password (result code 49) with a generic 401 error', async () => {
    const wrong = generateAdPassword();
    for (const options of [base, { ...base, bindDn: undefined, bindPassword: undefined }]) {
      const err = await refusal(authenticateLdapUser({ ...options, username: 'alice', password: wrong }));
      expect(err.code).toBe('INVALID_CREDENTIALS');
      expect(err.statusCode).toBe(401);
      expect(err.reason).toBe('invalid-credentials');
      expect(err.message).toBe('Invalid username or password');
      expect(JSON.stringify({ ...err, message: err.message, cause: String(err.cause) })).not.toContain(wrong);
    }
  });

  it('refuses unknown users, empty passwords and filter injection the same way', async () => {
    for (const [username, password] of [
      ['nobody', generateAdPassword()],
      ['alice', ''],
      ['*', alice.password],
      ['alice)(sAMAccountName=*', alice.password],
      ['', alice.password],
    ]) {
      const err = await refusal(authenticateLdapUser({ ...base, username: username!, password: password! }));
      expect(err.code, username).toBe('INVALID_CREDENTIALS');
    }
  });

  it('refuses a disabled account and says why in the reason', async () => {
    const err = await refusal(authenticateLdapUser({ ...base, username: 'carol', password: carol.password }));
    expect(err.code).toBe('INVALID_CREDENTIALS');
    expect(err.reason).toBe('account-disabled');
  });

  it('reports a refused service account or an untrusted certificate as the directory being unavailable', async () => {
    const badService = await refusal(
      authenticateLdapUser({
        ...base,
        bindPassword: generateAdPassword(),
        username: 'alice',
        password: alice.password,
      }),
    );
    expect(badService.code).toBe('NOT_READY');
    expect(badService.reason).toBe('service-bind-failed');
    const untrusted = await refusal(
      authenticateLdapUser({ ...base, tlsCa: undefined, username: 'alice', password: alice.password }),
    );
    expect(untrusted.reason).toBe('directory-unavailable');
  });
});
