/** Recovery cases, their recorded steps, one-time codes and per-organization policy; always scoped by organization. */
import type { Executor } from '../../db/database.js';
import type {
  RecoveryCaseCodesTable,
  RecoveryCasePoliciesTable,
  RecoveryCasesTable,
  RecoveryCaseStatus,
  RecoveryCaseStepsTable,
} from '../../db/schema.js';
import { deviceInScope } from '../access/access.repo.js';
import type { AccessScope } from '../access/permissions.js';

export type RecoveryCaseRow = RecoveryCasesTable;
export type RecoveryCaseStepRow = RecoveryCaseStepsTable;
export type RecoveryCaseCodeRow = RecoveryCaseCodesTable;
export type RecoveryCasePolicyRow = RecoveryCasePoliciesTable;

export interface CaseListFilter {
  statuses: readonly RecoveryCaseStatus[] | undefined;
  deviceId?: string | undefined;
  requesterUserId?: string | undefined;
  limit: number;
}

/** Whose cases a caller may see: device in scope, or (before a device is recorded) their own. */
export interface CaseVisibility {
  scope: AccessScope;
  operator: { type: 'user' | 'api-token'; id: string } | undefined;
}

export interface RecoveryCasesRepo {
  findPolicy(organizationId: string, trx?: Executor): Promise<RecoveryCasePolicyRow | undefined>;
  upsertPolicy(row: RecoveryCasePolicyRow, trx?: Executor): Promise<void>;
  insertCase(row: RecoveryCaseRow, trx?: Executor): Promise<void>;
  findCase(organizationId: string, id: string, trx?: Executor): Promise<RecoveryCaseRow | undefined>;
  /**
   * Takes the case row's write lock (an UPDATE touching it) and returns it, so steps on one case
   * never interleave; call first in a transaction, before the audit chain head.
   */
  lockCase(
    organizationId: string,
    id: string,
    now: string,
    trx: Executor,
  ): Promise<RecoveryCaseRow | undefined>;
  updateCase(
    id: string,
    changes: Partial<Omit<RecoveryCaseRow, 'id' | 'organization_id'>>,
    trx?: Executor,
  ): Promise<void>;
  listCases(
    organizationId: string,
    filter: CaseListFilter,
    visibility: CaseVisibility,
    trx?: Executor,
  ): Promise<RecoveryCaseRow[]>;
  insertStep(row: RecoveryCaseStepRow, trx?: Executor): Promise<void>;
  stepsOf(caseId: string, trx?: Executor): Promise<RecoveryCaseStepRow[]>;
  insertCode(row: RecoveryCaseCodeRow, trx?: Executor): Promise<void>;
  /** The newest code of a case that is neither used nor voided. */
  liveCode(caseId: string, trx?: Executor): Promise<RecoveryCaseCodeRow | undefined>;
  updateCode(
    id: string,
    changes: Partial<Omit<RecoveryCaseCodeRow, 'id' | 'case_id'>>,
    trx?: Executor,
  ): Promise<void>;
  countCodes(caseId: string, trx?: Executor): Promise<number>;
}

export function createRecoveryCasesRepo(db: Executor): RecoveryCasesRepo {
  return {
    async findPolicy(organizationId, trx = db) {
      return trx
        .selectFrom('recovery_case_policies')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .executeTakeFirst();
    },
    async upsertPolicy(row, trx = db) {
      await trx
        .insertInto('recovery_case_policies')
        .values(row)
        .onConflict((oc) =>
          oc.column('organization_id').doUpdateSet({
            identity_methods: row.identity_methods,
            require_disclosure_approval: row.require_disclosure_approval,
            allow_root_cause_after_disclosure: row.allow_root_cause_after_disclosure,
            updated_at: row.updated_at,
          }),
        )
        .execute();
    },
    async insertCase(row, trx = db) {
      await trx.insertInto('recovery_cases').values(row).execute();
    },
    async findCase(organizationId, id, trx = db) {
      return trx
        .selectFrom('recovery_cases')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .executeTakeFirst();
    },
    async lockCase(organizationId, id, now, trx) {
      await trx
        .updateTable('recovery_cases')
        .set({ updated_at: now })
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .execute();
      return trx
        .selectFrom('recovery_cases')
        .selectAll()
        .where('organization_id', '=', organizationId)
        .where('id', '=', id)
        .executeTakeFirst();
    },
    async updateCase(id, changes, trx = db) {
      await trx.updateTable('recovery_cases').set(changes).where('id', '=', id).execute();
    },
    async listCases(organizationId, filter, visibility, trx = db) {
      if (visibility.scope.kind === 'none') return [];
      let query = trx
        .selectFrom('recovery_cases as c')
        .leftJoin('devices as d', 'd.id', 'c.device_id')
        .selectAll('c')
        .where('c.organization_id', '=', organizationId);
      if (visibility.scope.kind !== 'all') {
        const inScope = deviceInScope(visibility.scope, 'd.id', 'd.owner_user_id');
        const operator = visibility.operator;
        query = query.where((eb) =>
          operator === undefined
            ? eb.and([eb('c.device_id', 'is not', null), inScope])
            : eb.or([
                eb.and([eb('c.device_id', 'is not', null), inScope]),
                eb.and([
                  eb('c.device_id', 'is', null),
                  eb('c.operator_type', '=', operator.type),
                  eb('c.operator_id', '=', operator.id),
                ]),
              ]),
        );
      }
      if (filter.statuses !== undefined) query = query.where('c.status', 'in', filter.statuses);
      if (filter.deviceId !== undefined) query = query.where('c.device_id', '=', filter.deviceId);
      if (filter.requesterUserId !== undefined) {
        query = query.where('c.requester_user_id', '=', filter.requesterUserId);
      }
      return query.orderBy('c.created_at', 'desc').orderBy('c.id').limit(filter.limit).execute();
    },
    async insertStep(row, trx = db) {
      await trx.insertInto('recovery_case_steps').values(row).execute();
    },
    async stepsOf(caseId, trx = db) {
      return trx
        .selectFrom('recovery_case_steps')
        .selectAll()
        .where('case_id', '=', caseId)
        .orderBy('seq')
        .execute();
    },
    async insertCode(row, trx = db) {
      await trx.insertInto('recovery_case_codes').values(row).execute();
    },
    async liveCode(caseId, trx = db) {
      return trx
        .selectFrom('recovery_case_codes')
        .selectAll()
        .where('case_id', '=', caseId)
        .where('consumed_at', 'is', null)
        .where('voided_at', 'is', null)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .executeTakeFirst();
    },
    async updateCode(id, changes, trx = db) {
      await trx.updateTable('recovery_case_codes').set(changes).where('id', '=', id).execute();
    },
    async countCodes(caseId, trx = db) {
      const row = await trx
        .selectFrom('recovery_case_codes')
        .select((eb) => eb.fn.countAll().as('n'))
        .where('case_id', '=', caseId)
        .executeTakeFirstOrThrow();
      return Number(row.n);
    },
  };
}
