/**
 * Every column set in the schema that holds an envelope-sealed secret, and how to rebuild its AAD
 * binding from a row. KEK rotation walks this list, so a new sealed column is rotated by adding one
 * entry here (the test in kek-rotation.test.ts fails when a `*_kek_id` column is missing from it).
 */
import type { Kysely } from 'kysely';
import type { Db } from '../../db/database.js';
import type { SealedSecret, SecretBinding } from '../../lib/envelope.js';

export interface SealedColumnSet {
  table: string;
  /** The primary-key column, used to update one row at a time. */
  key: string;
  ciphertext: string;
  wrappedKey: string;
  kekId: string;
  /** Extra columns the binding needs. */
  bindingColumns: readonly string[];
  binding(row: Record<string, unknown>): SecretBinding;
}

const str = (value: unknown): string => String(value);

export const SEALED_COLUMN_SETS: readonly SealedColumnSet[] = [
  {
    table: 'recovery_keys',
    key: 'id',
    ciphertext: 'password_ciphertext',
    wrappedKey: 'password_wrapped_key',
    kekId: 'password_kek_id',
    bindingColumns: ['organization_id'],
    binding: (r) => ({
      organizationId: str(r.organization_id),
      recordId: str(r.id),
      purpose: 'recovery-password',
    }),
  },
  {
    table: 'recovery_key_packages',
    key: 'recovery_key_id',
    ciphertext: 'ciphertext',
    wrappedKey: 'wrapped_key',
    kekId: 'kek_id',
    bindingColumns: ['organization_id'],
    binding: (r) => ({
      organizationId: str(r.organization_id),
      recordId: str(r.recovery_key_id),
      purpose: 'key-package',
    }),
  },
  {
    table: 'directory_sync_configs',
    key: 'organization_id',
    ciphertext: 'bind_password_ciphertext',
    wrappedKey: 'bind_password_wrapped_key',
    kekId: 'bind_password_kek_id',
    bindingColumns: [],
    binding: (r) => ({
      organizationId: str(r.organization_id),
      recordId: `directory-sync:${str(r.organization_id)}`,
      purpose: 'directory-bind-password',
    }),
  },
  {
    table: 'totp_credentials',
    key: 'user_id',
    ciphertext: 'secret_ciphertext',
    wrappedKey: 'secret_wrapped_key',
    kekId: 'secret_kek_id',
    bindingColumns: [],
    // TOTP secrets belong to a person, not to one organization (see mfa.service.ts).
    binding: (r) => ({ organizationId: 'user', recordId: str(r.user_id), purpose: 'totp-secret' }),
  },
  {
    table: 'oidc_providers',
    key: 'id',
    ciphertext: 'client_secret_ciphertext',
    wrappedKey: 'client_secret_wrapped_key',
    kekId: 'client_secret_kek_id',
    bindingColumns: ['organization_id'],
    binding: (r) => ({
      organizationId: str(r.organization_id),
      recordId: str(r.id),
      purpose: 'oidc-client-secret',
    }),
  },
  {
    table: 'ldap_directories',
    key: 'id',
    ciphertext: 'bind_password_ciphertext',
    wrappedKey: 'bind_password_wrapped_key',
    kekId: 'bind_password_kek_id',
    bindingColumns: ['organization_id'],
    binding: (r) => ({
      organizationId: str(r.organization_id),
      recordId: str(r.id),
      purpose: 'ldap-bind-password',
    }),
  },
  {
    table: 'notification_settings',
    key: 'organization_id',
    ciphertext: 'smtp_password_ciphertext',
    wrappedKey: 'smtp_password_wrapped_key',
    kekId: 'smtp_password_kek_id',
    bindingColumns: [],
    binding: (r) => ({
      organizationId: str(r.organization_id),
      recordId: `notification-settings:${str(r.organization_id)}`,
      purpose: 'smtp-password',
    }),
  },
  {
    table: 'notification_webhooks',
    key: 'id',
    ciphertext: 'secret_ciphertext',
    wrappedKey: 'secret_wrapped_key',
    kekId: 'secret_kek_id',
    bindingColumns: ['organization_id'],
    binding: (r) => ({
      organizationId: str(r.organization_id),
      recordId: str(r.id),
      purpose: 'webhook-secret',
    }),
  },
];

export interface SealedRow {
  key: string;
  sealed: SealedSecret;
  bindingRow: Record<string, unknown>;
}

type Executor = Kysely<Record<string, Record<string, unknown>>>;

/**
 * Generic access to one column set. Table and column names come from the constant list above,
 * never from input, so the untyped Kysely view is safe here.
 */
export function sealedSecretsRepo(db: Db, set: SealedColumnSet) {
  const untyped = (trx: unknown) => trx as Executor;
  return {
    /** Up to `limit` rows holding a secret not yet wrapped by `kekId`. */
    async notWrappedBy(kekId: string, limit: number, trx: unknown = db): Promise<SealedRow[]> {
      const columns = [
        ...new Set([set.key, set.ciphertext, set.wrappedKey, set.kekId, ...set.bindingColumns]),
      ];
      const rows = await untyped(trx)
        .selectFrom(set.table)
        .select(columns)
        .where(set.kekId, 'is not', null)
        .where(set.kekId, '!=', kekId)
        .orderBy(set.key)
        .limit(limit)
        .execute();
      return rows.map((row) => ({
        key: str(row[set.key]),
        sealed: {
          ciphertext: str(row[set.ciphertext]),
          wrappedKey: str(row[set.wrappedKey]),
          kekId: str(row[set.kekId]),
        },
        bindingRow: row,
      }));
    },
    /** Swaps the wrapping only if the row still holds `from` (a concurrent change wins). */
    async replaceWrapping(
      key: string,
      from: SealedSecret,
      to: SealedSecret,
      trx: unknown = db,
    ): Promise<boolean> {
      const result = await untyped(trx)
        .updateTable(set.table)
        .set({ [set.wrappedKey]: to.wrappedKey, [set.kekId]: to.kekId })
        .where(set.key, '=', key)
        .where(set.kekId, '=', from.kekId)
        .where(set.wrappedKey, '=', from.wrappedKey)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
  };
}
