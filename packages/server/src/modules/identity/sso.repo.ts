/** Per-organization SSO providers (OpenID Connect), LDAP directories, and started SSO sign-ins. */
import type { Executor } from '../../db/database.js';
import type { LdapDirectoriesTable, OidcProvidersTable, OidcSignInStatesTable } from '../../db/schema.js';

export interface SsoRepo {
  findOidcBySlug(slug: string, trx?: Executor): Promise<OidcProvidersTable | undefined>;
  listOidc(organizationId: string, trx?: Executor): Promise<OidcProvidersTable[]>;
  insertOidc(row: OidcProvidersTable, trx?: Executor): Promise<void>;
  updateOidc(row: OidcProvidersTable, trx?: Executor): Promise<void>;
  deleteOidc(id: string, trx?: Executor): Promise<void>;
  /** Every enabled provider and directory, for the sign-in page (which knows no organization yet). */
  listSignInChoices(trx?: Executor): Promise<{ kind: 'oidc' | 'ldap'; slug: string; displayName: string }[]>;
  insertState(row: OidcSignInStatesTable, trx?: Executor): Promise<void>;
  /**
   * Deletes and returns a started sign-in: a state is good for one callback, from the browser that
   * started it (a callback without the binding leaves the state for the browser that has it).
   */
  takeState(
    stateHash: string,
    bindingHash: string,
    trx?: Executor,
  ): Promise<OidcSignInStatesTable | undefined>;
  pruneStates(now: string, trx?: Executor): Promise<void>;
  findLdapBySlug(slug: string, trx?: Executor): Promise<LdapDirectoriesTable | undefined>;
  listLdap(organizationId: string, trx?: Executor): Promise<LdapDirectoriesTable[]>;
  insertLdap(row: LdapDirectoriesTable, trx?: Executor): Promise<void>;
  updateLdap(row: LdapDirectoriesTable, trx?: Executor): Promise<void>;
  deleteLdap(id: string, trx?: Executor): Promise<void>;
}

export function createSsoRepo(db: Executor): SsoRepo {
  return {
    async findOidcBySlug(slug, trx = db) {
      return trx.selectFrom('oidc_providers').selectAll().where('slug', '=', slug).executeTakeFirst();
    },
    async listOidc(organizationId, trx = db) {
      return trx
        .selectFrom('oidc_providers')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .orderBy('slug')
        .execute();
    },
    async insertOidc(row, trx = db) {
      await trx.insertInto('oidc_providers').values(row).execute();
    },
    async updateOidc(row, trx = db) {
      await trx.updateTable('oidc_providers').set(row).where('id', '=', row.id).execute();
    },
    async deleteOidc(id, trx = db) {
      await trx.deleteFrom('oidc_sign_in_states').where('provider_id', '=', id).execute();
      await trx.deleteFrom('oidc_providers').where('id', '=', id).execute();
    },
    async listSignInChoices(trx = db) {
      const oidcRows = await trx
        .selectFrom('oidc_providers')
        .select(['slug', 'display_name'])
        .where('enabled', '=', 1)
        .execute();
      const ldapRows = await trx
        .selectFrom('ldap_directories')
        .select(['slug', 'display_name'])
        .where('enabled', '=', 1)
        .execute();
      return [
        ...oidcRows.map((r) => ({ kind: 'oidc' as const, slug: r.slug, displayName: r.display_name })),
        ...ldapRows.map((r) => ({ kind: 'ldap' as const, slug: r.slug, displayName: r.display_name })),
      ].sort((a, b) => a.displayName.localeCompare(b.displayName) || a.slug.localeCompare(b.slug));
    },
    async insertState(row, trx = db) {
      await trx.insertInto('oidc_sign_in_states').values(row).execute();
    },
    async takeState(stateHash, bindingHash, trx = db) {
      const row = await trx
        .selectFrom('oidc_sign_in_states')
        .selectAll()
        .where('state_hash', '=', stateHash)
        .where('binding_hash', '=', bindingHash)
        .executeTakeFirst();
      if (!row) return undefined;
      const deleted = await trx
        .deleteFrom('oidc_sign_in_states')
        .where('state_hash', '=', stateHash)
        .where('binding_hash', '=', bindingHash)
        .executeTakeFirst();
      // Two callbacks racing with one state: only the one that deleted the row goes on.
      return Number(deleted.numDeletedRows) === 1 ? row : undefined;
    },
    async pruneStates(now, trx = db) {
      await trx.deleteFrom('oidc_sign_in_states').where('expires_at', '<=', now).execute();
    },
    async findLdapBySlug(slug, trx = db) {
      return trx.selectFrom('ldap_directories').selectAll().where('slug', '=', slug).executeTakeFirst();
    },
    async listLdap(organizationId, trx = db) {
      return trx
        .selectFrom('ldap_directories')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .orderBy('slug')
        .execute();
    },
    async insertLdap(row, trx = db) {
      await trx.insertInto('ldap_directories').values(row).execute();
    },
    async updateLdap(row, trx = db) {
      await trx.updateTable('ldap_directories').set(row).where('id', '=', row.id).execute();
    },
    async deleteLdap(id, trx = db) {
      await trx.deleteFrom('ldap_directories').where('id', '=', id).execute();
    },
  };
}
