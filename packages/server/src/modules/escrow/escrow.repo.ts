/** Enrollment tokens, device credentials and device groups: the rows behind device escrow. */
import type { Executor } from '../../db/database.js';
import type { DeviceCredentialsTable, DeviceGroupsTable, EnrollmentTokensTable } from '../../db/schema.js';

export interface EscrowRepo {
  insertEnrollmentToken(row: EnrollmentTokensTable, trx?: Executor): Promise<void>;
  findEnrollmentTokenByLookupPrefix(
    lookupPrefix: string,
    trx?: Executor,
  ): Promise<EnrollmentTokensTable | undefined>;
  /** The organization's enrollment tokens, newest first (at most `limit`). */
  listEnrollmentTokens(
    organizationId: string,
    limit: number,
    trx?: Executor,
  ): Promise<EnrollmentTokensTable[]>;
  /** Revokes a token of the organization; false when there is none (or it was already revoked). */
  revokeEnrollmentToken(organizationId: string, id: string, at: string, trx?: Executor): Promise<boolean>;
  /**
   * Counts one use if the token is still live (uses left, not revoked, not expired at `now`); false
   * otherwise. One conditional update, so a revocation committed meanwhile is honoured.
   */
  consumeEnrollmentToken(id: string, now: string, trx?: Executor): Promise<boolean>;
  insertDeviceCredential(row: DeviceCredentialsTable, trx?: Executor): Promise<void>;
  findDeviceCredentialByLookupPrefix(
    lookupPrefix: string,
    trx?: Executor,
  ): Promise<DeviceCredentialsTable | undefined>;
  touchDeviceCredential(id: string, at: string, trx?: Executor): Promise<void>;
  findGroupByName(
    organizationId: string,
    name: string,
    trx?: Executor,
  ): Promise<DeviceGroupsTable | undefined>;
  findGroupById(organizationId: string, id: string, trx?: Executor): Promise<DeviceGroupsTable | undefined>;
  insertGroup(row: DeviceGroupsTable, trx?: Executor): Promise<void>;
}

export function createEscrowRepo(db: Executor): EscrowRepo {
  return {
    async insertEnrollmentToken(row, trx = db) {
      await trx.insertInto('enrollment_tokens').values(row).execute();
    },
    async findEnrollmentTokenByLookupPrefix(lookupPrefix, trx = db) {
      return trx
        .selectFrom('enrollment_tokens')
        .selectAll()
        .where('lookup_prefix', '=', lookupPrefix)
        .executeTakeFirst();
    },
    async listEnrollmentTokens(organizationId, limit, trx = db) {
      return trx
        .selectFrom('enrollment_tokens')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit)
        .execute();
    },
    async revokeEnrollmentToken(organizationId, id, at, trx = db) {
      const result = await trx
        .updateTable('enrollment_tokens')
        .set({ revoked_at: at })
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async consumeEnrollmentToken(id, now, trx = db) {
      const result = await trx
        .updateTable('enrollment_tokens')
        .set((eb) => ({ use_count: eb('use_count', '+', 1) }))
        .where('id', '=', id)
        .whereRef('use_count', '<', 'max_uses')
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },
    async insertDeviceCredential(row, trx = db) {
      await trx.insertInto('device_credentials').values(row).execute();
    },
    async findDeviceCredentialByLookupPrefix(lookupPrefix, trx = db) {
      return trx
        .selectFrom('device_credentials')
        .selectAll()
        .where('lookup_prefix', '=', lookupPrefix)
        .executeTakeFirst();
    },
    async touchDeviceCredential(id, at, trx = db) {
      await trx.updateTable('device_credentials').set({ last_used_at: at }).where('id', '=', id).execute();
    },
    async findGroupByName(organizationId, name, trx = db) {
      return trx
        .selectFrom('device_groups')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('name', '=', name)
        .executeTakeFirst();
    },
    async findGroupById(organizationId, id, trx = db) {
      return trx
        .selectFrom('device_groups')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .executeTakeFirst();
    },
    async insertGroup(row, trx = db) {
      await trx.insertInto('device_groups').values(row).execute();
    },
  };
}
