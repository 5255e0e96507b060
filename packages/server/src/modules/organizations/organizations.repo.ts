/** Organizations: the tenant boundary every other row is scoped by. */
import type { Executor } from '../../db/database.js';

export interface OrganizationsRepo {
  insert(row: { id: string; name: string; created_at: string }, trx?: Executor): Promise<void>;
  count(trx?: Executor): Promise<number>;
  findById(id: string, trx?: Executor): Promise<{ id: string; name: string; created_at: string } | undefined>;
  list(trx?: Executor): Promise<{ id: string; name: string }[]>;
}

export function createOrganizationsRepo(db: Executor): OrganizationsRepo {
  return {
    async insert(row, trx = db) {
      await trx.insertInto('organizations').values(row).execute();
    },
    async count(trx = db) {
      const row = await trx
        .selectFrom('organizations')
        .select((eb) => eb.fn.countAll().as('n'))
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
    async findById(id, trx = db) {
      return trx.selectFrom('organizations').selectAll().where('id', '=', id).executeTakeFirst();
    },
    async list(trx = db) {
      return trx.selectFrom('organizations').select(['id', 'name']).orderBy('created_at').execute();
    },
  };
}
