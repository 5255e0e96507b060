/** Creating, listing and revoking API tokens (Bearer credentials with a list of permissions). */
import type { Db } from '../../db/database.js';
import type { ApiTokensTable } from '../../db/schema.js';
import type { Clock } from '../../lib/clock.js';
import { AppError } from '../../lib/errors.js';
import type { IdGenerator } from '../../lib/ids.js';
import type { RandomSource } from '../../lib/random.js';
import { issueToken } from '../../lib/tokens.js';
import type { AccessRepo } from '../access/access.repo.js';
import {
  decideScope,
  hasPermission,
  isPermission,
  PERMISSIONS,
  scopeWithin,
  type GrantLayer,
} from '../access/permissions.js';
import type { AuditActorType, AuditWriter } from '../audit/audit.service.js';
import type { ApiTokensRepo } from './api-tokens.repo.js';

export function toApiTokenSummary(row: ApiTokensTable) {
  return {
    id: row.id,
    name: row.name,
    permissions: JSON.parse(row.permissions) as string[],
    kind: row.kind,
    deviceGroupIds: row.device_group_ids === null ? null : (JSON.parse(row.device_group_ids) as string[]),
    createdByUserId: row.created_by_user_id,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

/** True when every permission a grant list covers is also covered by `held`: no escalation by token. */
export function grantsWithin(requested: readonly string[], held: readonly string[]): boolean {
  return (
    PERMISSIONS.every((p) => !hasPermission(requested, p) || hasPermission(held, p)) &&
    requested.every((g) => g === '*' || g.endsWith(':*') || isPermission(g))
  );
}

/**
 * True when a token with these grants, on these device groups, allows nothing its creator's current
 * rights (layers) do not, permission by permission and device by device.
 */
export function tokenWithinCreator(
  requested: { permissions: readonly string[]; deviceGroupIds: readonly string[] | null },
  creatorLayers: readonly GrantLayer[],
): boolean {
  const token: GrantLayer[] = [[requested]];
  return PERMISSIONS.every((p) => scopeWithin(decideScope(token, p), decideScope(creatorLayers, p)));
}

export type ApiTokensService = ReturnType<typeof createApiTokensService>;

export function createApiTokensService(deps: {
  db: Db;
  clock: Clock;
  random: RandomSource;
  ids: IdGenerator;
  auditWriter: AuditWriter;
  apiTokensRepo: ApiTokensRepo;
  accessRepo: Pick<AccessRepo, 'findGroup'>;
}) {
  const { db, clock, random, ids, auditWriter, apiTokensRepo, accessRepo } = deps;
  return {
    async createApiToken(options: {
      organizationId: string;
      name: string;
      permissions: string[];
      expiresInDays?: number | undefined;
      deviceGroupIds?: string[] | undefined;
      /** `personal` needs createdByUserId and is bounded by that user's rights at every use. */
      kind?: 'personal' | 'service' | undefined;
      /** The creator's own grants; undefined for the operator at the console (CLI). */
      creatorPermissions: readonly string[] | undefined;
      /** The creator's grants with their scopes; when given, checked device group by device group. */
      creatorLayers?: readonly GrantLayer[] | undefined;
      actor: { type: AuditActorType; id: string | null };
      createdByUserId?: string | null;
      requestId?: string;
    }) {
      if (
        options.creatorPermissions !== undefined &&
        !grantsWithin(options.permissions, options.creatorPermissions)
      ) {
        throw new AppError('FORBIDDEN', 'A token cannot hold permissions its creator lacks');
      }
      const deviceGroupIds =
        options.deviceGroupIds === undefined ? null : [...new Set(options.deviceGroupIds)].sort();
      if (
        options.creatorLayers !== undefined &&
        !tokenWithinCreator({ permissions: options.permissions, deviceGroupIds }, options.creatorLayers)
      ) {
        throw new AppError('FORBIDDEN', 'A token cannot reach devices or permissions its creator cannot');
      }
      const kind = options.kind ?? 'service';
      if (kind === 'personal' && !options.createdByUserId) {
        throw new AppError(
          'VALIDATION_FAILED',
          'A personal token belongs to a person; create a service token',
        );
      }
      for (const groupId of deviceGroupIds ?? []) {
        if (!(await accessRepo.findGroup(options.organizationId, groupId))) {
          throw new AppError('NOT_FOUND', 'No such device group');
        }
      }
      const issued = issueToken('apiToken', random);
      const now = clock.now();
      const row: ApiTokensTable = {
        id: ids('apiToken'),
        organization_id: options.organizationId,
        created_by_user_id: options.createdByUserId ?? null,
        name: options.name,
        lookup_prefix: issued.lookupPrefix,
        token_hash: issued.hash,
        permissions: JSON.stringify(options.permissions),
        expires_at:
          options.expiresInDays === undefined
            ? null
            : new Date(now.getTime() + options.expiresInDays * 86_400_000).toISOString(),
        last_used_at: null,
        created_at: now.toISOString(),
        revoked_at: null,
        kind,
        device_group_ids: deviceGroupIds === null ? null : JSON.stringify(deviceGroupIds),
      };
      await db.transaction().execute(async (trx) => {
        await apiTokensRepo.insert(row, trx);
        await auditWriter.append(
          {
            organizationId: options.organizationId,
            actor: options.actor,
            action: 'api-token.created',
            target: { type: 'api-token', id: row.id },
            outcome: 'success',
            details: {
              name: options.name,
              kind,
              permissions: options.permissions.join(' '),
              deviceGroupIds: deviceGroupIds === null ? null : deviceGroupIds.join(' '),
            },
            ...(options.requestId === undefined ? {} : { requestId: options.requestId }),
          },
          trx,
        );
      });
      return { ...toApiTokenSummary(row), token: issued.token };
    },

    async listApiTokens(organizationId: string) {
      return (await apiTokensRepo.list(organizationId)).map(toApiTokenSummary);
    },

    async revokeApiToken(
      organizationId: string,
      id: string,
      actor: { type: AuditActorType; id: string | null },
      requestId?: string,
    ) {
      await db.transaction().execute(async (trx) => {
        if (!(await apiTokensRepo.revoke(organizationId, id, clock.now().toISOString(), trx))) {
          throw new AppError('NOT_FOUND', 'No such active API token');
        }
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'api-token.revoked',
            target: { type: 'api-token', id },
            outcome: 'success',
            ...(requestId === undefined ? {} : { requestId }),
          },
          trx,
        );
      });
    },
  };
}
