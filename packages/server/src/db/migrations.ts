/** Schema migrations, defined in code so the built package needs no migration files at runtime. */
import { randomBytes } from 'node:crypto';
import { Migrator, PostgresAdapter, sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { base32 } from '../lib/ids.js';
import { auditChainAtCommit } from './migration-0011-audit-chain-at-commit.js';
import { auditLinkInStatement } from './migration-0014-audit-link-in-statement.js';
import type { Db } from './database.js';

// Portable column types only (text, integer, bigint): the same migration runs on SQLite and PostgreSQL.
/* eslint-disable @typescript-eslint/no-explicit-any -- migrations run against the schema as it was then */
const initial: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('organizations')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('username', 'text', (c) => c.notNull().unique())
      .addColumn('display_name', 'text', (c) => c.notNull())
      .addColumn('password_hash', 'text', (c) => c.notNull())
      .addColumn('must_change_password', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('disabled_at', 'text')
      .execute();

    await db.schema
      .createTable('memberships')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('permissions', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('memberships_org_user', ['organization_id', 'user_id'])
      .execute();

    await db.schema
      .createTable('sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('last_seen_at', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text')
      .execute();

    await db.schema
      .createTable('api_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('created_by_user_id', 'text', (c) => c.references('users.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('lookup_prefix', 'text', (c) => c.notNull().unique())
      .addColumn('token_hash', 'text', (c) => c.notNull())
      .addColumn('permissions', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text')
      .addColumn('last_used_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text')
      .execute();

    await db.schema
      .createTable('device_groups')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('device_groups_org_name', ['organization_id', 'name'])
      .execute();

    await db.schema
      .createTable('devices')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('name_key', 'text', (c) => c.notNull())
      .addColumn('dns_name', 'text')
      .addColumn('os', 'text')
      .addColumn('serial_number', 'text')
      .addColumn('registered_owner', 'text')
      .addColumn('first_seen_at', 'text', (c) => c.notNull())
      .addColumn('last_seen_at', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('deleted_at', 'text')
      .execute();
    await db.schema
      .createIndex('devices_org_name_key')
      .on('devices')
      .columns(['organization_id', 'name_key'])
      .execute();

    await db.schema
      .createTable('device_group_members')
      .addColumn('device_group_id', 'text', (c) => c.notNull().references('device_groups.id'))
      .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
      .addPrimaryKeyConstraint('device_group_members_pk', ['device_group_id', 'device_id'])
      .execute();

    await db.schema
      .createTable('volumes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
      .addColumn('volume_guid', 'text', (c) => c.notNull())
      .addColumn('volume_type', 'text', (c) => c.notNull())
      .addColumn('drive_letter', 'text')
      .addColumn('encryption_method', 'text')
      .addColumn('protection_status', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('volumes_device_guid', ['device_id', 'volume_guid'])
      .execute();

    await db.schema
      .createTable('recovery_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
      .addColumn('volume_id', 'text', (c) => c.notNull().references('volumes.id'))
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('key_id_prefix', 'text', (c) => c.notNull())
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('password_ciphertext', 'text', (c) => c.notNull())
      .addColumn('password_wrapped_key', 'text', (c) => c.notNull())
      .addColumn('password_kek_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('superseded_at', 'text')
      .addColumn('last_disclosed_at', 'text')
      .addUniqueConstraint('recovery_keys_org_key_id', ['organization_id', 'key_id'])
      .execute();
    await db.schema
      .createIndex('recovery_keys_org_prefix')
      .on('recovery_keys')
      .columns(['organization_id', 'key_id_prefix'])
      .execute();
    await db.schema.createIndex('recovery_keys_volume').on('recovery_keys').column('volume_id').execute();
    await db.schema.createIndex('recovery_keys_kek').on('recovery_keys').column('password_kek_id').execute();

    await db.schema
      .createTable('enrollment_tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('device_group_id', 'text', (c) => c.references('device_groups.id'))
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('lookup_prefix', 'text', (c) => c.notNull().unique())
      .addColumn('token_hash', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('max_uses', 'integer', (c) => c.notNull())
      .addColumn('use_count', 'integer', (c) => c.notNull())
      .addColumn('created_by', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('revoked_at', 'text')
      .execute();

    await db.schema
      .createTable('device_credentials')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
      .addColumn('lookup_prefix', 'text', (c) => c.notNull().unique())
      .addColumn('token_hash', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_used_at', 'text')
      .addColumn('revoked_at', 'text')
      .execute();

    await db.schema
      .createTable('audit_log')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('seq', 'bigint', (c) => c.notNull().unique())
      .addColumn('organization_id', 'text')
      .addColumn('occurred_at', 'text', (c) => c.notNull())
      .addColumn('actor_type', 'text', (c) => c.notNull())
      .addColumn('actor_id', 'text')
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('target_type', 'text')
      .addColumn('target_id', 'text')
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('details', 'text', (c) => c.notNull())
      .addColumn('request_id', 'text')
      .addColumn('prev_hash', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('audit_log_org_seq')
      .on('audit_log')
      .columns(['organization_id', 'seq'])
      .execute();

    await db.schema
      .createTable('audit_chain_head')
      .addColumn('id', 'integer', (c) => c.primaryKey())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('last_hash', 'text', (c) => c.notNull())
      .execute();
    await db
      .insertInto('audit_chain_head')
      .values({ id: 1, seq: 0, last_hash: '0'.repeat(64) })
      .execute();
  },
};
/* eslint-enable @typescript-eslint/no-explicit-any */

/**
 * Roles, scoped role assignments, device groups with user members, device owners, organization
 * settings, suspensions and shared rate-limit counters. Membership `permissions` stop granting
 * anything: they become role assignments here (`["*"]` is an Organization Administrator).
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- migrations run against the schema as it was then */
const accessRoles: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('roles')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('permissions', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('roles_org_name', ['organization_id', 'name'])
      .execute();

    // Exactly one subject: a user, or an external (SSO / LDAP) group name that users sign in with.
    await db.schema
      .createTable('role_assignments')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('role_id', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.references('users.id'))
      .addColumn('external_group', 'text')
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('role_assignments_org_user')
      .on('role_assignments')
      .columns(['organization_id', 'user_id'])
      .execute();
    await db.schema
      .createIndex('role_assignments_org_group')
      .on('role_assignments')
      .columns(['organization_id', 'external_group'])
      .execute();
    await db.schema
      .createTable('role_assignment_groups')
      .addColumn('role_assignment_id', 'text', (c) => c.notNull().references('role_assignments.id'))
      .addColumn('device_group_id', 'text', (c) => c.notNull().references('device_groups.id'))
      .addPrimaryKeyConstraint('role_assignment_groups_pk', ['role_assignment_id', 'device_group_id'])
      .execute();

    // The external groups a user last signed in with, per organization (refreshed at each sign-in).
    await db.schema
      .createTable('user_external_groups')
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('external_group', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('user_external_groups_pk', ['organization_id', 'user_id', 'external_group'])
      .execute();

    await db.schema
      .createTable('device_group_user_members')
      .addColumn('device_group_id', 'text', (c) => c.notNull().references('device_groups.id'))
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addPrimaryKeyConstraint('device_group_user_members_pk', ['device_group_id', 'user_id'])
      .execute();
    await db.schema
      .createIndex('device_group_members_device')
      .on('device_group_members')
      .column('device_id')
      .execute();

    await db.schema
      .alterTable('devices')
      .addColumn('owner_user_id', 'text', (c) => c.references('users.id'))
      .execute();
    await db.schema.createIndex('devices_owner').on('devices').column('owner_user_id').execute();

    await db.schema
      .alterTable('api_tokens')
      .addColumn('kind', 'text', (c) => c.notNull().defaultTo('service'))
      .execute();
    await db.schema.alterTable('api_tokens').addColumn('device_group_ids', 'text').execute();

    await db.schema
      .createTable('organization_settings')
      .addColumn('organization_id', 'text', (c) => c.primaryKey().references('organizations.id'))
      .addColumn('restrict_owner_key_recovery', 'integer', (c) => c.notNull())
      .addColumn('disclosure_alert_threshold', 'integer', (c) => c.notNull())
      .addColumn('disclosure_alert_window_minutes', 'integer', (c) => c.notNull())
      .addColumn('suspend_on_disclosure_alert', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('account_suspensions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('subject_type', 'text', (c) => c.notNull())
      .addColumn('subject_id', 'text', (c) => c.notNull())
      .addColumn('reason', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('lifted_at', 'text')
      .execute();
    await db.schema
      .createIndex('account_suspensions_subject')
      .on('account_suspensions')
      .columns(['organization_id', 'subject_type', 'subject_id'])
      .execute();

    // Fixed windows shared by every server instance; old windows are pruned as new ones open.
    await db.schema
      .createTable('rate_limit_counters')
      .addColumn('bucket', 'text', (c) => c.notNull())
      .addColumn('window_start', 'text', (c) => c.notNull())
      .addColumn('count', 'integer', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('rate_limit_counters_pk', ['bucket', 'window_start'])
      .execute();
    await db.schema
      .createIndex('rate_limit_counters_expiry')
      .on('rate_limit_counters')
      .column('expires_at')
      .execute();

    const memberships = await db
      .selectFrom('memberships')
      .select(['id', 'organization_id', 'user_id', 'permissions'])
      .execute();
    const now = new Date().toISOString();
    const newId = (prefix: string) => `${prefix}_${base32(randomBytes(16))}`;
    for (const m of memberships as {
      id: string;
      organization_id: string;
      user_id: string;
      permissions: string;
    }[]) {
      const grants = JSON.parse(m.permissions) as string[];
      if (grants.length === 0) continue;
      let roleId = 'organization-administrator';
      if (!grants.includes('*')) {
        roleId = newId('rol');
        await db
          .insertInto('roles')
          .values({
            id: roleId,
            organization_id: m.organization_id,
            name: `Migrated grants of ${m.user_id}`,
            description: 'Created from the permissions a membership held before roles existed',
            permissions: JSON.stringify(grants),
            created_at: now,
            updated_at: now,
          })
          .execute();
      }
      await db
        .insertInto('role_assignments')
        .values({
          id: newId('ras'),
          organization_id: m.organization_id,
          role_id: roleId,
          user_id: m.user_id,
          external_group: null,
          scope: 'organization',
          created_at: now,
        })
        .execute();
      await db.updateTable('memberships').set({ permissions: '[]' }).where('id', '=', m.id).execute();
    }
  },
};
/* eslint-enable @typescript-eslint/no-explicit-any */

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations run against the schema as it was then */
// Directory import: which AD computer a device came from, encrypted key packages, per-org sync settings.
const directoryImport: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('device_external_refs')
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('source', 'text', (c) => c.notNull())
      .addColumn('external_id', 'text', (c) => c.notNull())
      .addColumn('external_dn', 'text')
      .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('device_external_refs_pk', ['organization_id', 'source', 'external_id'])
      .execute();
    await db.schema
      .createIndex('device_external_refs_device')
      .on('device_external_refs')
      .column('device_id')
      .execute();

    await db.schema
      .createTable('recovery_key_packages')
      .addColumn('recovery_key_id', 'text', (c) => c.primaryKey().references('recovery_keys.id'))
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('ciphertext', 'text', (c) => c.notNull())
      .addColumn('wrapped_key', 'text', (c) => c.notNull())
      .addColumn('kek_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('directory_sync_configs')
      .addColumn('organization_id', 'text', (c) => c.primaryKey().references('organizations.id'))
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('ca_certificate', 'text')
      .addColumn('base_dn', 'text', (c) => c.notNull())
      .addColumn('bind_dn', 'text', (c) => c.notNull())
      .addColumn('bind_password_ciphertext', 'text', (c) => c.notNull())
      .addColumn('bind_password_wrapped_key', 'text', (c) => c.notNull())
      .addColumn('bind_password_kek_id', 'text', (c) => c.notNull())
      .addColumn('interval_minutes', 'integer', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('next_run_at', 'text')
      .addColumn('lease_holder', 'text')
      .addColumn('lease_expires_at', 'text')
      .addColumn('last_run_started_at', 'text')
      .addColumn('last_run_finished_at', 'text')
      .addColumn('last_run_status', 'text')
      .addColumn('last_run_trigger', 'text')
      .addColumn('last_run_summary', 'text')
      .addColumn('last_run_error', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
  },
};
/* eslint-enable @typescript-eslint/no-explicit-any */

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations run against the schema as it was then */
/**
 * Identity: sign-in throttling shared by every instance, session states (pending MFA) and sign-in
 * method, MFA (TOTP, recovery codes, passkeys), SSO providers and LDAP directories per organization,
 * links from external identities to users, and the organization's MFA policy.
 */
const identitySignIn: Migration = {
  async up(db: Kysely<any>) {
    // One row per throttled key (`account:…`, `address:…`): consecutive failures and the lock they set.
    await db.schema
      .createTable('sign_in_attempts')
      .addColumn('key', 'text', (c) => c.primaryKey())
      .addColumn('failures', 'integer', (c) => c.notNull())
      .addColumn('last_failure_at', 'text', (c) => c.notNull())
      .addColumn('locked_until', 'text')
      .execute();

    await db.schema
      .alterTable('sessions')
      .addColumn('state', 'text', (c) => c.notNull().defaultTo('active'))
      .execute();
    await db.schema
      .alterTable('sessions')
      .addColumn('auth_method', 'text', (c) => c.notNull().defaultTo('password'))
      .execute();
    await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
    await db.schema
      .alterTable('users')
      .addColumn('auth_source', 'text', (c) => c.notNull().defaultTo('local'))
      .execute();

    await db.schema
      .createTable('organization_identity_settings')
      .addColumn('organization_id', 'text', (c) => c.primaryKey().references('organizations.id'))
      .addColumn('require_mfa_for_disclosure', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('totp_credentials')
      .addColumn('user_id', 'text', (c) => c.primaryKey().references('users.id'))
      .addColumn('secret_ciphertext', 'text', (c) => c.notNull())
      .addColumn('secret_wrapped_key', 'text', (c) => c.notNull())
      .addColumn('secret_kek_id', 'text', (c) => c.notNull())
      .addColumn('confirmed_at', 'text')
      .addColumn('last_used_step', 'bigint')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('mfa_recovery_codes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('code_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('used_at', 'text')
      .execute();

    await db.schema
      .createTable('webauthn_credentials')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('credential_id', 'text', (c) => c.notNull().unique())
      .addColumn('public_key', 'text', (c) => c.notNull())
      .addColumn('counter', 'bigint', (c) => c.notNull())
      .addColumn('transports', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_used_at', 'text')
      .execute();
    await db.schema
      .createIndex('webauthn_credentials_user')
      .on('webauthn_credentials')
      .column('user_id')
      .execute();

    await db.schema
      .createTable('webauthn_challenges')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('session_id', 'text', (c) => c.notNull().references('sessions.id'))
      .addColumn('purpose', 'text', (c) => c.notNull())
      .addColumn('challenge', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('webauthn_challenges_session')
      .on('webauthn_challenges')
      .columns(['session_id', 'purpose'])
      .execute();

    await db.schema
      .createTable('oidc_providers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('slug', 'text', (c) => c.notNull().unique())
      .addColumn('display_name', 'text', (c) => c.notNull())
      .addColumn('issuer', 'text', (c) => c.notNull())
      .addColumn('client_id', 'text', (c) => c.notNull())
      .addColumn('client_secret_ciphertext', 'text')
      .addColumn('client_secret_wrapped_key', 'text')
      .addColumn('client_secret_kek_id', 'text')
      .addColumn('scopes', 'text', (c) => c.notNull())
      .addColumn('groups_claim', 'text', (c) => c.notNull())
      .addColumn('username_claim', 'text', (c) => c.notNull())
      .addColumn('allow_insecure_issuer', 'integer', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    // Short-lived: one row per started SSO sign-in, consumed by its callback.
    await db.schema
      .createTable('oidc_sign_in_states')
      .addColumn('state_hash', 'text', (c) => c.primaryKey())
      .addColumn('provider_id', 'text', (c) => c.notNull().references('oidc_providers.id'))
      .addColumn('binding_hash', 'text', (c) => c.notNull())
      .addColumn('nonce', 'text', (c) => c.notNull())
      .addColumn('code_verifier', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('ldap_directories')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('slug', 'text', (c) => c.notNull().unique())
      .addColumn('display_name', 'text', (c) => c.notNull())
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('ca_certificate', 'text')
      .addColumn('base_dn', 'text', (c) => c.notNull())
      .addColumn('bind_dn', 'text')
      .addColumn('bind_password_ciphertext', 'text')
      .addColumn('bind_password_wrapped_key', 'text')
      .addColumn('bind_password_kek_id', 'text')
      .addColumn('upn_suffix', 'text')
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('external_identities')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('provider_type', 'text', (c) => c.notNull())
      .addColumn('provider_id', 'text', (c) => c.notNull())
      .addColumn('subject', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('last_sign_in_at', 'text', (c) => c.notNull())
      .addUniqueConstraint('external_identities_provider_subject', ['provider_id', 'subject'])
      .execute();
  },
};
/* eslint-enable @typescript-eslint/no-explicit-any */

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations run against the schema as it was then */
/**
 * Notifications: per-organization SMTP and security addresses, signed webhooks, and the durable
 * delivery outbox (attempts, next attempt, a lease so several instances never send one row twice).
 * Adds `users.email` unless another migration already did (recovery cases need it too).
 */
const notifications: Migration = {
  async up(db: Kysely<any>) {
    const users = (await db.introspection.getTables()).find((t) => t.name === 'users');
    if (users && !users.columns.some((c) => c.name === 'email')) {
      await db.schema.alterTable('users').addColumn('email', 'text').execute();
    }

    await db.schema
      .createTable('notification_settings')
      .addColumn('organization_id', 'text', (c) => c.primaryKey().references('organizations.id'))
      .addColumn('smtp_host', 'text')
      .addColumn('smtp_port', 'integer')
      .addColumn('smtp_tls', 'text')
      .addColumn('smtp_username', 'text')
      .addColumn('smtp_password_ciphertext', 'text')
      .addColumn('smtp_password_wrapped_key', 'text')
      .addColumn('smtp_password_kek_id', 'text')
      .addColumn('smtp_from', 'text')
      .addColumn('security_addresses', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('notification_webhooks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('secret_ciphertext', 'text', (c) => c.notNull())
      .addColumn('secret_wrapped_key', 'text', (c) => c.notNull())
      .addColumn('secret_kek_id', 'text', (c) => c.notNull())
      .addColumn('event_types', 'text', (c) => c.notNull())
      .addColumn('enabled', 'integer', (c) => c.notNull())
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('notification_webhooks_org')
      .on('notification_webhooks')
      .column('organization_id')
      .execute();

    await db.schema
      .createTable('notification_deliveries')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('channel', 'text', (c) => c.notNull())
      .addColumn('recipient', 'text', (c) => c.notNull())
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('event_key', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_at', 'text')
      .addColumn('lease_holder', 'text')
      .addColumn('lease_expires_at', 'text')
      .addColumn('last_status', 'text')
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .addColumn('delivered_at', 'text')
      // One row per event, channel and recipient: a re-emitted event is not sent twice.
      .addUniqueConstraint('notification_deliveries_once', [
        'organization_id',
        'event_key',
        'channel',
        'recipient',
      ])
      .execute();
    await db.schema
      .createIndex('notification_deliveries_due')
      .on('notification_deliveries')
      .columns(['status', 'next_attempt_at'])
      .execute();
    await db.schema
      .createIndex('notification_deliveries_log')
      .on('notification_deliveries')
      .columns(['organization_id', 'created_at'])
      .execute();
  },
};
/* eslint-enable @typescript-eslint/no-explicit-any */

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations run against the schema as it was then */
/**
 * Recovery cases: the helpdesk checklist per case (one row per case, one row per recorded step),
 * one-time e-mail codes (hashed), and each organization's case policy. Adds `users.email` unless
 * another migration already did (notifications need it too).
 */
const recoveryCases: Migration = {
  async up(db: Kysely<any>) {
    const users = (await db.introspection.getTables()).find((t) => t.name === 'users');
    if (users && !users.columns.some((c) => c.name === 'email')) {
      await db.schema.alterTable('users').addColumn('email', 'text').execute();
    }

    await db.schema
      .createTable('recovery_case_policies')
      .addColumn('organization_id', 'text', (c) => c.primaryKey().references('organizations.id'))
      .addColumn('identity_methods', 'text', (c) => c.notNull())
      .addColumn('require_disclosure_approval', 'integer', (c) => c.notNull())
      .addColumn('allow_root_cause_after_disclosure', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('recovery_cases')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('requester_user_id', 'text', (c) => c.notNull().references('users.id'))
      .addColumn('operator_type', 'text', (c) => c.notNull())
      .addColumn('operator_id', 'text', (c) => c.notNull())
      .addColumn('reference', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('identity_method', 'text')
      .addColumn('identity_verified_at', 'text')
      .addColumn('device_id', 'text', (c) => c.references('devices.id'))
      .addColumn('owner_match', 'text')
      .addColumn('owner_override_at', 'text')
      .addColumn('key_id_entered', 'text')
      .addColumn('key_match', 'text')
      .addColumn('recovery_key_id', 'text', (c) => c.references('recovery_keys.id'))
      .addColumn('located_at', 'text')
      .addColumn('root_cause_class', 'text')
      .addColumn('root_cause_answers', 'text')
      .addColumn('disclosure_approved_by_type', 'text')
      .addColumn('disclosure_approved_by_id', 'text')
      .addColumn('identity_approver_type', 'text')
      .addColumn('identity_approver_id', 'text')
      .addColumn('disclosed_at', 'text')
      .addColumn('disclosure_audit_id', 'text')
      .addColumn('reason_code', 'text')
      .addColumn('rotation_request_id', 'text')
      .addColumn('read_back_count', 'integer', (c) => c.notNull())
      .addColumn('closed_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('recovery_cases_org_status')
      .on('recovery_cases')
      .columns(['organization_id', 'status', 'created_at'])
      .execute();
    await db.schema.createIndex('recovery_cases_device').on('recovery_cases').column('device_id').execute();

    await db.schema
      .createTable('recovery_case_steps')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('case_id', 'text', (c) => c.notNull().references('recovery_cases.id'))
      .addColumn('seq', 'integer', (c) => c.notNull())
      .addColumn('step', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('actor_type', 'text', (c) => c.notNull())
      .addColumn('actor_id', 'text')
      .addColumn('occurred_at', 'text', (c) => c.notNull())
      .addColumn('details', 'text', (c) => c.notNull())
      .addColumn('audit_entry_id', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('recovery_case_steps_case')
      .on('recovery_case_steps')
      .columns(['case_id', 'seq'])
      .unique()
      .execute();

    await db.schema
      .createTable('recovery_case_codes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('case_id', 'text', (c) => c.notNull().references('recovery_cases.id'))
      .addColumn('code_hash', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('consumed_at', 'text')
      .addColumn('voided_at', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('recovery_case_codes_case')
      .on('recovery_case_codes')
      .columns(['case_id', 'created_at'])
      .execute();
  },
};
/* eslint-enable @typescript-eslint/no-explicit-any */

/* eslint-disable @typescript-eslint/no-explicit-any -- migrations run against the schema as it was then */
/**
 * Rotation: requests to replace a recovery key on its device, the per-organization policy, the
 * BitLocker events the agent forwards and its last check-in. Two audit-log indexes serve the
 * device timeline and the post-recovery flag (disclosures of a device's keys, by time).
 */
const rotation: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createTable('rotation_requests')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('recovery_key_id', 'text', (c) => c.notNull().references('recovery_keys.id'))
      .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
      .addColumn('volume_id', 'text', (c) => c.notNull().references('volumes.id'))
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('trigger', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('requested_by_type', 'text', (c) => c.notNull())
      .addColumn('requested_by_id', 'text')
      .addColumn('requested_at', 'text', (c) => c.notNull())
      .addColumn('due_at', 'text', (c) => c.notNull())
      .addColumn('delivered_at', 'text')
      .addColumn('last_delivered_at', 'text')
      .addColumn('completed_at', 'text')
      .addColumn('failed_at', 'text')
      .addColumn('failure_reason', 'text')
      .addColumn('overdue_at', 'text')
      .addColumn('new_recovery_key_id', 'text')
      // Unique while open (NULLs never collide): one open request per key on every dialect.
      .addColumn('open_key', 'text', (c) => c.unique())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('rotation_requests_device')
      .on('rotation_requests')
      .columns(['device_id', 'status'])
      .execute();
    await db.schema
      .createIndex('rotation_requests_org_status_due')
      .on('rotation_requests')
      .columns(['organization_id', 'status', 'due_at'])
      .execute();

    await db.schema
      .createTable('rotation_policies')
      .addColumn('organization_id', 'text', (c) => c.primaryKey().references('organizations.id'))
      .addColumn('single_use_passwords', 'integer', (c) => c.notNull())
      .addColumn('deadline_days', 'integer', (c) => c.notNull())
      .addColumn('updated_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('device_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('device_id', 'text', (c) => c.notNull().references('devices.id'))
      .addColumn('record_id', 'bigint', (c) => c.notNull())
      .addColumn('event_id', 'integer', (c) => c.notNull())
      .addColumn('occurred_at', 'text', (c) => c.notNull())
      .addColumn('received_at', 'text', (c) => c.notNull())
      .addColumn('level', 'text')
      .addColumn('protector_id', 'text')
      .addColumn('message', 'text')
      .addUniqueConstraint('device_events_device_record', ['device_id', 'record_id'])
      .execute();
    await db.schema
      .createIndex('device_events_device_time')
      .on('device_events')
      .columns(['device_id', 'occurred_at'])
      .execute();

    await db.schema
      .createTable('device_agent_status')
      .addColumn('device_id', 'text', (c) => c.primaryKey().references('devices.id'))
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      .addColumn('agent_version', 'text')
      .addColumn('last_check_in_at', 'text', (c) => c.notNull())
      .execute();

    await db.schema
      .createIndex('audit_log_target')
      .on('audit_log')
      .columns(['target_type', 'target_id'])
      .execute();
    await db.schema
      .createIndex('audit_log_org_action_time')
      .on('audit_log')
      .columns(['organization_id', 'action', 'occurred_at'])
      .execute();
  },
};

/** Who to contact when self-service is restricted: the administrator's words and an optional link. */
const selfServiceContact: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .alterTable('organization_settings')
      .addColumn('self_service_contact_text', 'text')
      .execute();
    await db.schema
      .alterTable('organization_settings')
      .addColumn('self_service_contact_link', 'text')
      .execute();
  },
};

/**
 * Device-name prefix search (`name_key LIKE 'ABC%'`) uses an index on both databases: SQLite applies
 * its LIKE optimisation only to a NOCASE index, PostgreSQL only to a `text_pattern_ops` one (its
 * default collation orders text linguistically). One of two dialect branches in the schema (the
 * other is 0011's chain trigger), and why.
 */
const deviceNamePrefixIndex: Migration = {
  async up(db: Kysely<any>) {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    await sql
      .raw(
        postgres
          ? 'create index devices_org_name_prefix on devices (organization_id, name_key text_pattern_ops)'
          : 'create index devices_org_name_prefix on devices (organization_id, name_key collate nocase)',
      )
      .execute(db);
  },
};

/**
 * Who manages an account, and consent to join an organization. An account (usernames are global)
 * can belong to several organizations; `home_organization_id` is the one that created it, and only
 * its administrators may act on the account itself (password, profile, disabling, every session).
 * Existing accounts get the organization of their earliest membership. Another organization adds an
 * existing account only through an invitation that the account accepts.
 */
const accountHomeAndInvitations: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .alterTable('users')
      .addColumn('home_organization_id', 'text', (c) => c.references('organizations.id'))
      .execute();
    await sql`update users set home_organization_id = (
        select m.organization_id from memberships m
        where m.user_id = users.id
        order by m.created_at, m.id
        limit 1)`.execute(db);

    await db.schema
      .createTable('organization_invitations')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id'))
      // As typed by the administrator; user_id is null when no account had that name.
      .addColumn('username', 'text', (c) => c.notNull())
      .addColumn('user_id', 'text', (c) => c.references('users.id'))
      .addColumn('role_id', 'text', (c) => c.notNull())
      .addColumn('device_group_ids', 'text')
      .addColumn('invited_by_type', 'text', (c) => c.notNull())
      .addColumn('invited_by_id', 'text')
      .addColumn('created_at', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'text', (c) => c.notNull())
      .addColumn('accepted_at', 'text')
      .addColumn('declined_at', 'text')
      .addColumn('revoked_at', 'text')
      .execute();
    await db.schema
      .createIndex('organization_invitations_org')
      .on('organization_invitations')
      .columns(['organization_id', 'created_at'])
      .execute();
    await db.schema
      .createIndex('organization_invitations_user')
      .on('organization_invitations')
      .column('user_id')
      .execute();
  },
};

/**
 * The audit log's filters, newest first (GET /api/audit-log?order=desc&…): each index ends in `seq`
 * so a filtered page is read in order from the index and stops at `limit`, instead of sorting every
 * matching row. Time ranges get their own index. Indexes only: rows are never rewritten.
 */
const auditLogFilters: Migration = {
  async up(db: Kysely<any>) {
    await db.schema
      .createIndex('audit_log_org_action_seq')
      .on('audit_log')
      .columns(['organization_id', 'action', 'seq'])
      .execute();
    await db.schema
      .createIndex('audit_log_org_actor_seq')
      .on('audit_log')
      .columns(['organization_id', 'actor_id', 'seq'])
      .execute();
    await db.schema
      .createIndex('audit_log_org_time')
      .on('audit_log')
      .columns(['organization_id', 'occurred_at'])
      .execute();
  },
};
/* eslint-enable @typescript-eslint/no-explicit-any */

export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_access_roles': accessRoles,
  '0003_identity_sign_in': identitySignIn,
  '0004_directory_import': directoryImport,
  '0005_notifications': notifications,
  '0007_recovery_cases': recoveryCases,
  '0008_rotation': rotation,
  '0009_self_service_contact': selfServiceContact,
  '0010_device_name_prefix_index': deviceNamePrefixIndex,
  '0011_audit_chain_at_commit': auditChainAtCommit,
  '0012_account_home_and_invitations': accountHomeAndInvitations,
  '0013_audit_log_filters': auditLogFilters,
  '0014_audit_link_in_statement': auditLinkInStatement,
};

export const migrationProvider: MigrationProvider = {
  getMigrations: async () => migrations,
};

/** Brings the schema to the latest version; throws with the failing migration's name. */
export async function migrateToLatest(db: Db): Promise<void> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
    throw new Error(`database migration ${failed} failed`, { cause: error });
  }
}
