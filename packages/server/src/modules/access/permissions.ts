/** Permissions as data: the known strings and the pure functions that decide what a set of grants allows. */

export const PERMISSIONS = [
  'keys:read-metadata',
  'keys:disclose',
  'keys:lookup-by-id',
  'devices:read',
  'devices:write',
  'devices:delete',
  'rotation:request',
  'cases:work',
  'cases:approve',
  /** Lets a case go on when the verified user does not own the device (Organization Administrator only). */
  'cases:override-owner',
  'escrow:write',
  'enrollment:manage',
  'api-tokens:manage',
  'audit:read',
  'reports:read',
  'org:admin',
] as const;

export type Permission = (typeof PERMISSIONS)[number];

/**
 * Permissions that act on devices and their keys, so a device-group scope can narrow them. Every
 * other permission is about the whole organization (its audit log, its settings, its tokens) and is
 * granted only by an organization-wide assignment: a group-scoped "Organization Administrator" is
 * not an administrator of the organization.
 */
export const DEVICE_SCOPED_PERMISSIONS: ReadonlySet<Permission> = new Set<Permission>([
  'keys:read-metadata',
  'keys:disclose',
  'keys:lookup-by-id',
  'devices:read',
  'devices:write',
  'devices:delete',
  'rotation:request',
  'cases:work',
  'cases:approve',
  'cases:override-owner',
]);

/**
 * `public` is explicit: a route open to anyone says so, nothing is open by omission.
 * `authenticated` needs a signed-in caller but no grant (your own account, signing out).
 */
export type RoutePermission = Permission | 'public' | 'authenticated';

/** A grant is a permission, `area:*`, or `*` (everything: the Organization Administrator). */
export type PermissionGrant = Permission | `${string}:*` | '*';

const GRANT_PATTERN = /^(\*|[a-z-]+:\*|[a-z-]+:[a-z-]+)$/;

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

export function isPermissionGrant(value: string): value is PermissionGrant {
  if (!GRANT_PATTERN.test(value)) return false;
  if (value === '*') return true;
  if (value.endsWith(':*')) return PERMISSIONS.some((p) => p.startsWith(value.slice(0, -1)));
  return isPermission(value);
}

export function hasPermission(grants: readonly string[], required: Permission): boolean {
  const area = required.slice(0, required.indexOf(':'));
  return grants.some((g) => g === '*' || g === required || g === `${area}:*`);
}

/** Permission grants together with where they apply: `null` device groups means organization-wide. */
/** True when the grants allow disclosing keys, directly or through recovery cases. */
export function canDiscloseKeys(grants: readonly string[]): boolean {
  return grants.some((g) => ['*', 'keys:*', 'keys:disclose', 'cases:*', 'cases:work'].includes(g));
}

export interface Grant {
  permissions: readonly string[];
  deviceGroupIds: readonly string[] | null;
}

/**
 * Everything one source of rights holds (a user's role assignments, a token's own grants). A
 * principal's rights are the intersection of its layers: a personal token never exceeds its user.
 */
export type GrantLayer = readonly Grant[];

/**
 * Where a permission may be used. `all`: every device of the organization. `groups`: a device must
 * be in (directly, or through its owner) at least one group of EACH listed set (one set per
 * constraining layer). `none`: nowhere.
 */
export type AccessScope =
  { kind: 'none' } | { kind: 'all' } | { kind: 'groups'; constraints: readonly (readonly string[])[] };

const NONE: AccessScope = { kind: 'none' };
const ALL: AccessScope = { kind: 'all' };

/**
 * The one decision: where the layers allow `permission`. Within a layer grants add up (any
 * organization-wide grant wins, else the union of groups); across layers they intersect.
 */
export function decideScope(layers: readonly GrantLayer[], permission: Permission): AccessScope {
  if (layers.length === 0) return NONE;
  const constraints: string[][] = [];
  for (const layer of layers) {
    let orgWide = false;
    const groups = new Set<string>();
    for (const grant of layer) {
      if (!hasPermission(grant.permissions, permission)) continue;
      if (grant.deviceGroupIds === null) orgWide = true;
      else if (DEVICE_SCOPED_PERMISSIONS.has(permission)) grant.deviceGroupIds.forEach((g) => groups.add(g));
    }
    if (orgWide) continue;
    if (groups.size === 0) return NONE;
    constraints.push([...groups].sort());
  }
  return constraints.length === 0 ? ALL : { kind: 'groups', constraints };
}

/** The permissions usable somewhere: what a route-level check (403 when missing) looks at. */
export function effectivePermissions(layers: readonly GrantLayer[]): Permission[] {
  return PERMISSIONS.filter((p) => decideScope(layers, p).kind !== 'none');
}

/** Where both scopes allow: for a request that needs two permissions on the same devices. */
export function intersectScopes(a: AccessScope, b: AccessScope): AccessScope {
  if (a.kind === 'none' || b.kind === 'none') return NONE;
  if (a.kind === 'all') return b;
  if (b.kind === 'all') return a;
  return { kind: 'groups', constraints: [...a.constraints, ...b.constraints] };
}

/** True when `inner` allows no device that `outer` does not (a token's scope against its creator's). */
export function scopeWithin(inner: AccessScope, outer: AccessScope): boolean {
  if (inner.kind === 'none' || outer.kind === 'all') return true;
  if (outer.kind === 'none' || inner.kind === 'all') return false;
  // Each outer constraint must be implied by some inner constraint that is a subset of it.
  return outer.constraints.every((o) => inner.constraints.some((i) => i.every((g) => o.includes(g))));
}
