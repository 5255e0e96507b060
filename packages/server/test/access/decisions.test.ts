// Tables for the pure access decisions: grant matching, scope per permission, and scope containment.
import { describe, expect, it } from 'vitest';
import {
  decideScope,
  effectivePermissions,
  hasPermission,
  intersectScopes,
  isPermissionGrant,
  scopeWithin,
  type AccessScope,
  type Grant,
  type GrantLayer,
  type Permission,
} from '../../src/modules/access/permissions.js';
import { builtInRole } from '../../src/modules/access/roles.js';
import { tokenWithinCreator } from '../../src/modules/api-tokens/api-tokens.service.js';

const orgWide = (...permissions: string[]): Grant => ({ permissions, deviceGroupIds: null });
const inGroups = (groups: string[], ...permissions: string[]): Grant => ({
  permissions,
  deviceGroupIds: groups,
});
const role = (id: string) => [...builtInRole(id)!.permissions];

const NONE: AccessScope = { kind: 'none' };
const ALL: AccessScope = { kind: 'all' };
const groups = (...constraints: string[][]): AccessScope => ({ kind: 'groups', constraints });

describe('hasPermission (grant matching)', () => {
  const cases: [string, string[], Permission, boolean][] = [
    ['exact grant', ['keys:disclose'], 'keys:disclose', true],
    ['star grants everything', ['*'], 'org:admin', true],
    ['area wildcard matches its area', ['keys:*'], 'keys:lookup-by-id', true],
    ['area wildcard does not leak into another area', ['keys:*'], 'devices:read', false],
    ['a prefix of the area is not the area', ['key:*'], 'keys:disclose', false],
    ['a sibling permission is not enough', ['keys:read-metadata'], 'keys:disclose', false],
    ['no grants', [], 'devices:read', false],
    ['org:admin alone is not everything', ['org:admin'], 'audit:read', false],
    ['one of several grants matches', ['reports:read', 'devices:*'], 'devices:delete', true],
  ];
  for (const [name, grants, required, want] of cases) {
    it(name, () => expect(hasPermission(grants, required)).toBe(want));
  }

  it('accepts only known grants', () => {
    expect(['*', 'keys:*', 'audit:read', 'org:admin'].map(isPermissionGrant)).toEqual([
      true,
      true,
      true,
      true,
    ]);
    expect(
      ['keys:nope', 'nope:*', '**', 'keys:', 'KEYS:disclose', ' keys:disclose'].map(isPermissionGrant),
    ).toEqual([false, false, false, false, false, false]);
  });
});

describe('decideScope', () => {
  const cases: { name: string; layers: GrantLayer[]; permission: Permission; want: AccessScope }[] = [
    { name: 'no layers: nothing', layers: [], permission: 'devices:read', want: NONE },
    {
      name: 'an empty layer (a member with no role): nothing',
      layers: [[]],
      permission: 'devices:read',
      want: NONE,
    },
    {
      name: 'organization-wide grant: everywhere',
      layers: [[orgWide(...role('helpdesk'))]],
      permission: 'devices:read',
      want: ALL,
    },
    {
      name: 'a role without the permission: nothing',
      layers: [[orgWide(...role('helpdesk'))]],
      permission: 'keys:disclose',
      want: NONE,
    },
    {
      name: 'group grants add up within a source (union of groups)',
      layers: [[inGroups(['g2'], 'devices:read'), inGroups(['g1'], 'devices:read')]],
      permission: 'devices:read',
      want: groups(['g1', 'g2']),
    },
    {
      name: 'an organization-wide grant wins over group grants in the same source',
      layers: [[inGroups(['g1'], 'devices:read'), orgWide('devices:*')]],
      permission: 'devices:read',
      want: ALL,
    },
    {
      name: 'grants for other permissions in the same source do not add groups',
      layers: [[inGroups(['g1'], 'devices:read'), inGroups(['g2'], 'keys:disclose')]],
      permission: 'devices:read',
      want: groups(['g1']),
    },
    {
      name: 'sources intersect: a group-scoped token narrows an organization-wide user',
      layers: [[inGroups(['g1'], '*')], [orgWide(...role('device-administrator'))]],
      permission: 'keys:disclose',
      want: groups(['g1']),
    },
    {
      name: 'sources intersect: an unscoped token cannot widen a group-scoped user',
      layers: [[orgWide('*')], [inGroups(['g1'], ...role('device-administrator'))]],
      permission: 'keys:disclose',
      want: groups(['g1']),
    },
    {
      name: 'sources intersect: each scoped source is its own constraint',
      layers: [[inGroups(['g1', 'g2'], '*')], [inGroups(['g2', 'g3'], 'devices:read')]],
      permission: 'devices:read',
      want: groups(['g1', 'g2'], ['g2', 'g3']),
    },
    {
      name: 'sources intersect: the token lacks the permission (personal token ∩ user)',
      layers: [[orgWide('devices:read')], [orgWide('*')]],
      permission: 'keys:disclose',
      want: NONE,
    },
    {
      name: 'sources intersect: the user lost the permission',
      layers: [[orgWide('*')], [orgWide(...role('security-reader'))]],
      permission: 'keys:disclose',
      want: NONE,
    },
    {
      name: 'a group-scoped Organization Administrator is not an organization administrator',
      layers: [[inGroups(['g1'], ...role('organization-administrator'))]],
      permission: 'org:admin',
      want: NONE,
    },
    {
      name: 'a group-scoped grant never gives audit:read',
      layers: [[inGroups(['g1'], ...role('security-reader'))]],
      permission: 'audit:read',
      want: NONE,
    },
    {
      name: 'a group-scoped grant never gives api-tokens:manage',
      layers: [[inGroups(['g1'], 'api-tokens:*')]],
      permission: 'api-tokens:manage',
      want: NONE,
    },
    {
      name: 'a group-scoped grant still gives device permissions in its groups',
      layers: [[inGroups(['g1'], ...role('organization-administrator'))]],
      permission: 'devices:delete',
      want: groups(['g1']),
    },
    {
      name: 'an assignment that lost all its groups grants nothing (never organization-wide)',
      layers: [[inGroups([], ...role('device-administrator'))]],
      permission: 'keys:disclose',
      want: NONE,
    },
    {
      name: 'an emptied assignment beside a live one: only the live one counts',
      layers: [[inGroups([], '*'), inGroups(['g9'], 'devices:read')]],
      permission: 'devices:read',
      want: groups(['g9']),
    },
  ];
  for (const c of cases) {
    it(c.name, () => expect(decideScope(c.layers, c.permission)).toEqual(c.want));
  }

  it('effective permissions are those usable somewhere, org-level ones only from organization-wide grants', () => {
    expect(effectivePermissions([[inGroups(['g1'], '*')]])).toEqual([
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
    expect(effectivePermissions([[orgWide('*')], [orgWide(...role('report-reader'))]])).toEqual([
      'reports:read',
    ]);
    expect(effectivePermissions([[inGroups([], '*')]])).toEqual([]);
  });
});

describe('scopeWithin (a token against its creator)', () => {
  const cases: [string, AccessScope, AccessScope, boolean][] = [
    ['nothing is within anything', NONE, NONE, true],
    ['anything is within everywhere', groups(['g1']), ALL, true],
    ['everywhere is within everywhere', ALL, ALL, true],
    ['everywhere is not within groups', ALL, groups(['g1']), false],
    ['something is not within nothing', groups(['g1']), NONE, false],
    ['a subset of the groups', groups(['g1']), groups(['g1', 'g2']), true],
    ['the same groups', groups(['g1', 'g2']), groups(['g1', 'g2']), true],
    ['a superset of the groups', groups(['g1', 'g2']), groups(['g1']), false],
    ['disjoint groups', groups(['g3']), groups(['g1']), false],
    ['narrower by an extra constraint', groups(['g1'], ['g5']), groups(['g1']), true],
    ['every outer constraint must be implied', groups(['g1']), groups(['g1'], ['g2']), false],
    [
      'each outer constraint implied by some inner one',
      groups(['g2'], ['g1']),
      groups(['g1'], ['g2', 'g3']),
      true,
    ],
  ];
  for (const [name, inner, outer, want] of cases) {
    it(name, () => expect(scopeWithin(inner, outer)).toBe(want));
  }

  it('tokenWithinCreator checks every permission and every device group', () => {
    const creator: GrantLayer[] = [
      [orgWide('api-tokens:manage'), inGroups(['g1'], ...role('device-administrator'))],
    ];
    expect(tokenWithinCreator({ permissions: ['keys:disclose'], deviceGroupIds: ['g1'] }, creator)).toBe(
      true,
    );
    expect(tokenWithinCreator({ permissions: ['keys:disclose'], deviceGroupIds: null }, creator)).toBe(false);
    expect(
      tokenWithinCreator({ permissions: ['keys:disclose'], deviceGroupIds: ['g1', 'g2'] }, creator),
    ).toBe(false);
    expect(tokenWithinCreator({ permissions: ['api-tokens:manage'], deviceGroupIds: null }, creator)).toBe(
      true,
    );
    expect(tokenWithinCreator({ permissions: ['audit:read'], deviceGroupIds: null }, creator)).toBe(false);
    expect(tokenWithinCreator({ permissions: ['*'], deviceGroupIds: ['g1'] }, creator)).toBe(false);
  });
});

describe('intersectScopes (two permissions needed on the same device)', () => {
  const cases: [string, AccessScope, AccessScope, AccessScope][] = [
    ['nothing and everywhere', NONE, ALL, NONE],
    ['everywhere and nothing', ALL, NONE, NONE],
    ['everywhere and everywhere', ALL, ALL, ALL],
    ['everywhere and groups', ALL, groups(['g1']), groups(['g1'])],
    ['groups and everywhere', groups(['g1', 'g2']), ALL, groups(['g1', 'g2'])],
    [
      'groups and groups: both constraints hold',
      groups(['g1']),
      groups(['g2', 'g3']),
      groups(['g1'], ['g2', 'g3']),
    ],
  ];
  for (const [name, a, b, want] of cases) {
    it(name, () => expect(intersectScopes(a, b)).toEqual(want));
  }
});
