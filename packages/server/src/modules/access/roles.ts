/** Built-in roles as data: the roles Entra ID, AD and MBAM administrators already know, by stable key. */
import type { PermissionGrant } from './permissions.js';

export interface BuiltInRole {
  id: string;
  name: string;
  description: string;
  permissions: readonly PermissionGrant[];
}

export const BUILT_IN_ROLES = [
  {
    id: 'organization-administrator',
    name: 'Organization Administrator',
    description: 'Everything in the organization, including roles, settings and tokens',
    permissions: ['*'],
  },
  {
    id: 'device-administrator',
    name: 'Device Administrator',
    description: "Like Entra's Cloud Device Administrator: manage devices and disclose their recovery keys",
    permissions: [
      'devices:read',
      'devices:write',
      'devices:delete',
      'keys:read-metadata',
      'keys:disclose',
      'keys:lookup-by-id',
      'rotation:request',
    ],
  },
  {
    id: 'helpdesk',
    name: 'Helpdesk',
    description:
      "Works recovery cases, which verify the user's identity; no direct disclosure, no lookup by key id alone",
    permissions: ['cases:work', 'devices:read', 'keys:read-metadata', 'rotation:request'],
  },
  {
    id: 'helpdesk-advanced',
    name: 'Helpdesk Advanced',
    description: "Helpdesk that may also look a key up by its key id alone, like MBAM's advanced helpdesk",
    permissions: [
      'cases:work',
      'devices:read',
      'keys:read-metadata',
      'keys:lookup-by-id',
      'rotation:request',
    ],
  },
  {
    id: 'security-reader',
    name: 'Security Reader',
    description: 'Reads device and key metadata and the audit log; never a recovery password',
    permissions: ['devices:read', 'keys:read-metadata', 'audit:read', 'reports:read'],
  },
  {
    id: 'report-reader',
    name: 'Report Reader',
    description: 'Reads reports only',
    permissions: ['reports:read'],
  },
] as const satisfies readonly BuiltInRole[];

export type BuiltInRoleId = (typeof BUILT_IN_ROLES)[number]['id'];

export function builtInRole(id: string): BuiltInRole | undefined {
  return BUILT_IN_ROLES.find((r) => r.id === id);
}
