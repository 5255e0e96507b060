/**
 * The Microsoft Graph subset BitLocker scripts call, at `/v1.0` and `/beta`: recovery keys (metadata,
 * and the key itself through `$select=key`) and devices by display name. Every failure under these
 * prefixes is an OData error, so Graph SDKs raise their usual GraphError with Graph's codes.
 */
import type { FastifyRequest } from 'fastify';
import type { App } from '../../app-types.js';
import type { AppDeps } from '../../deps.js';
import { AppError } from '../../lib/errors.js';
import { buildAccess, buildRecoveryKeysService } from '../access/access.build.js';
import { principalOf } from '../access/access.hooks.js';
import { createDevicesRepo } from '../devices/devices.repo.js';
import { createGraphCompatRepo } from './graph-compat.repo.js';
import { createODataErrorHandler, odataErrorBody, parseEqFilter } from './graph-compat.odata.js';
import {
  deviceCollection,
  getKeyQuery,
  keyParams,
  listDevicesQuery,
  listKeysQuery,
  odataErrors,
  recoveryKeyCollection,
  recoveryKeyEntity,
} from './graph-compat.schemas.js';
import { createGraphCompatService } from './graph-compat.service.js';

export const GRAPH_VERSIONS = ['v1.0', 'beta'] as const;
const KEYS_PATH = '/informationProtection/bitlocker/recoveryKeys';
const DEFAULT_PAGE = 100;
const KEY_PROPERTIES = ['id', 'createdDateTime', 'deviceId', 'key', 'volumeType'] as const;
const DEVICE_PROPERTIES = ['id', 'deviceId', 'displayName'] as const;

/**
 * Scripts read keys in bulk (every key of a fleet), so the limit is per caller, not per address,
 * and higher than the portal's disclose route; every read is still audited one by one.
 */
const graphRateLimit = {
  max: 300,
  timeWindow: '1 minute',
  keyGenerator: (request: FastifyRequest) => {
    const p = request.principal;
    return p === undefined
      ? `ip:${request.ip}`
      : `${p.kind}:${p.kind === 'api-token' ? p.apiTokenId : p.organizationId}`;
  },
};

/** `$select` as a set of known property names; an unknown one is a 400 as on Graph. */
function parseSelect<P extends string>(select: string | undefined, known: readonly P[]): Set<P> | undefined {
  if (select === undefined) return undefined;
  const names = select.split(',').map((s) => s.trim());
  const picked = new Set<P>();
  for (const name of names) {
    const property = known.find((k) => k.toLowerCase() === name.toLowerCase());
    if (property === undefined) throw new AppError('VALIDATION_FAILED', 'Unknown property in $select');
    picked.add(property);
  }
  return picked;
}

/**
 * Absolute base for `@odata.*` links (Graph SDK page iterators need absolute next links). The host
 * is the caller's own Host header, so it only ever points a caller back at the address it used.
 */
function serviceRoot(request: FastifyRequest, version: string): string {
  const host = /^[A-Za-z0-9.\-:[\]]{1,300}$/.test(request.host) ? request.host : '127.0.0.1';
  return `${request.protocol}://${host}/${version}`;
}

/** Graph SDK identification headers, kept only when short and printable, for the audit row. */
function clientContext(request: FastifyRequest): Record<string, string> {
  const context: Record<string, string> = { channel: 'graph' };
  const header = (name: string) => {
    const value = request.headers[name];
    return typeof value === 'string' && /^[\x20-\x7e]{1,128}$/.test(value) ? value : undefined;
  };
  const name = header('ocp-client-name');
  const version = header('ocp-client-version');
  const requestId = header('client-request-id');
  if (name !== undefined) context.clientName = name;
  if (version !== undefined) context.clientVersion = version;
  if (requestId !== undefined) context.clientRequestId = requestId;
  return context;
}

export function registerGraphCompatModule(app: App, deps: AppDeps) {
  const service = createGraphCompatService({
    graphRepo: createGraphCompatRepo(deps.db),
    devicesRepo: createDevicesRepo(deps.db),
    recoveryKeys: buildRecoveryKeysService(deps),
    authorizer: buildAccess(deps).authorizer,
  });
  const errorHandler = createODataErrorHandler(() => deps.clock.now());

  for (const version of GRAPH_VERSIONS) {
    const register = async (scope: App) => {
      scope.setErrorHandler(errorHandler);
      scope.setNotFoundHandler((request, reply) =>
        reply
          .code(404)
          .send(odataErrorBody('Request_ResourceNotFound', 'Resource not found', request, deps.clock.now())),
      );

      scope.route({
        method: 'GET',
        url: KEYS_PATH,
        // Only keys of devices in the caller's keys:read-metadata scope are listed.
        config: { permission: 'keys:read-metadata', rateLimit: graphRateLimit },
        schema: {
          tags: ['graph-compat'],
          summary: 'Graph: list BitLocker recovery keys (never the key)',
          querystring: listKeysQuery,
          response: { 200: recoveryKeyCollection, ...odataErrors(400, 401, 403, 429) },
        },
        handler: async (request) => {
          const { $filter, $top, $skiptoken, $select } = request.query;
          if (parseSelect($select, KEY_PROPERTIES)?.has('key')) {
            throw new AppError(
              'VALIDATION_FAILED',
              'The key can be selected only when reading one recovery key',
            );
          }
          const filter = $filter === undefined ? undefined : parseEqFilter($filter, ['deviceId'] as const);
          const top = $top ?? DEFAULT_PAGE;
          const page = await service.listRecoveryKeys(principalOf(request), {
            top,
            ...(filter === undefined ? {} : { graphDeviceId: filter.value }),
            ...($skiptoken === undefined ? {} : { skipToken: $skiptoken }),
          });
          const root = serviceRoot(request, version);
          let nextLink: string | undefined;
          if (page.skipToken !== undefined) {
            const next = new URLSearchParams();
            if ($filter !== undefined) next.set('$filter', $filter);
            next.set('$top', String(top));
            next.set('$skiptoken', page.skipToken);
            nextLink = `${root}${KEYS_PATH}?${next.toString().replace(/\+/g, '%20')}`;
          }
          return {
            '@odata.context': `${root}/$metadata#informationProtection/bitlocker/recoveryKeys`,
            ...(nextLink === undefined ? {} : { '@odata.nextLink': nextLink }),
            value: page.keys,
          };
        },
      });

      scope.route({
        method: 'GET',
        url: `${KEYS_PATH}/:recoveryKeyId`,
        // No HEAD twin: with `$select=key` it would disclose (audit, rotation) and send no body.
        exposeHeadRoute: false,
        // Metadata needs keys:read-metadata and `$select=key` needs keys:disclose: the service decides
        // once it knows which, through the access module's authorizer (scoped to the key's device).
        config: { permission: 'authenticated', rateLimit: graphRateLimit },
        schema: {
          tags: ['graph-compat'],
          summary:
            'Graph: one BitLocker recovery key; `$select=key` discloses it (audited, marked for rotation)',
          params: keyParams,
          querystring: getKeyQuery,
          response: { 200: recoveryKeyEntity, ...odataErrors(400, 401, 403, 404, 429, 500) },
        },
        handler: async (request, reply) => {
          const disclose = parseSelect(request.query.$select, KEY_PROPERTIES)?.has('key') === true;
          const key = await service.readRecoveryKey(principalOf(request), request.params.recoveryKeyId, {
            disclose,
            requestId: request.id,
            address: request.ip,
            context: clientContext(request),
          });
          const root = serviceRoot(request, version);
          if (disclose) reply.header('cache-control', 'no-store');
          return {
            '@odata.context': `${root}/$metadata#informationProtection/bitlocker/recoveryKeys${disclose ? '(key)' : ''}/$entity`,
            ...key,
          };
        },
      });

      scope.route({
        method: 'GET',
        url: '/devices',
        // Only devices in the caller's devices:read scope are found.
        config: { permission: 'devices:read', rateLimit: graphRateLimit },
        schema: {
          tags: ['graph-compat'],
          summary: "Graph: devices by `$filter=displayName eq '…'` (or deviceId)",
          querystring: listDevicesQuery,
          response: { 200: deviceCollection, ...odataErrors(400, 401, 403, 429) },
        },
        handler: async (request) => {
          const { $filter, $top, $select } = request.query;
          const selected = parseSelect($select, DEVICE_PROPERTIES);
          const filter = parseEqFilter($filter, ['displayName', 'deviceId'] as const);
          const devices = await service.findDevices(principalOf(request), filter, $top ?? DEFAULT_PAGE);
          return {
            '@odata.context': `${serviceRoot(request, version)}/$metadata#devices`,
            value: devices.map((d) =>
              selected === undefined
                ? d
                : Object.fromEntries(DEVICE_PROPERTIES.filter((p) => selected.has(p)).map((p) => [p, d[p]])),
            ),
          };
        },
      });
    };
    void app.register(register, { prefix: `/${version}` });
  }
}
