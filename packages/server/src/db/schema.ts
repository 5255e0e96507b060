/** Table types for Kysely: the one description of the stored data model, shared by every dialect. */
import type { ColumnType, Selectable } from 'kysely';

// Timestamps are ISO-8601 UTC text and flags are 0/1 integers: identical on SQLite and PostgreSQL.

export interface OrganizationsTable {
  id: string;
  name: string;
  created_at: string;
}

export interface UsersTable {
  id: string;
  username: string;
  display_name: string;
  password_hash: string;
  must_change_password: number;
  created_at: string;
  updated_at: string;
  disabled_at: string | null;
  /** `local` accounts sign in with a password; `oidc` / `ldap` ones only through their provider. */
  auth_source: 'local' | 'oidc' | 'ldap';
  /** Where notifications and one-time codes for this person go; optional so older writers need not name it. */
  email?: string | null;
  /**
   * The organization that manages the account (the one that created it); only its administrators
   * act on the account itself. Null on rows older writers made: then its earliest membership's.
   */
  home_organization_id: string | null;
}

export interface MembershipsTable {
  id: string;
  organization_id: string;
  user_id: string;
  /** Legacy JSON array of permission strings; since 0002 rights come from role assignments and this is `[]`. */
  permissions: string;
  created_at: string;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  user_id: string;
  organization_id: string;
  created_at: string;
  expires_at: string;
  last_seen_at: string;
  revoked_at: string | null;
  /** `active`, or a step still owed: `mfa-pending` (verify) or `mfa-enrollment-required` (enroll). */
  state: SessionState;
  auth_method: 'password' | 'oidc' | 'ldap';
}

export type SessionState = 'active' | 'mfa-pending' | 'mfa-enrollment-required';

export interface ApiTokensTable {
  id: string;
  organization_id: string;
  created_by_user_id: string | null;
  name: string;
  lookup_prefix: string;
  token_hash: string;
  permissions: string;
  expires_at: string | null;
  last_used_at: string | null;
  created_at: string;
  revoked_at: string | null;
  /** `personal` acts as its creator (intersected with the creator's rights at use); `service` has its own grants. */
  kind: 'personal' | 'service';
  /** JSON array of device-group ids the token is limited to; null means organization-wide. */
  device_group_ids: string | null;
}

export interface DeviceGroupsTable {
  id: string;
  organization_id: string;
  name: string;
  created_at: string;
}

export interface DevicesTable {
  id: string;
  organization_id: string;
  name: string;
  /** Upper-cased name: Windows device names are case-insensitive, and this keeps lookups portable. */
  name_key: string;
  dns_name: string | null;
  os: string | null;
  serial_number: string | null;
  /** What the agent reported (e.g. `CONTOSO\\alice`); informational only. */
  registered_owner: string | null;
  /** The user who owns the device: self-service and user-member device groups go by this. */
  owner_user_id: string | null;
  first_seen_at: string;
  last_seen_at: string;
  created_at: string;
  deleted_at: string | null;
}

export interface DeviceGroupMembersTable {
  device_group_id: string;
  device_id: string;
}

export interface VolumesTable {
  id: string;
  organization_id: string;
  device_id: string;
  volume_guid: string;
  volume_type: 'os' | 'fixed' | 'removable';
  drive_letter: string | null;
  encryption_method: string | null;
  protection_status: string | null;
  created_at: string;
  updated_at: string;
}

export type RecoveryKeyStatus = 'active' | 'superseded' | 'rotation_pending';
export type RecoveryKeySource = 'agent' | 'import' | 'api' | 'manual';

export interface RecoveryKeysTable {
  id: string;
  organization_id: string;
  device_id: string;
  volume_id: string;
  key_id: string;
  /** First 8 hex digits of key_id, the part the preboot screen shows: an indexed equality lookup. */
  key_id_prefix: string;
  source: RecoveryKeySource;
  status: RecoveryKeyStatus;
  password_ciphertext: string;
  password_wrapped_key: string;
  password_kek_id: string;
  created_at: string;
  superseded_at: string | null;
  last_disclosed_at: string | null;
}

export interface EnrollmentTokensTable {
  id: string;
  organization_id: string;
  device_group_id: string | null;
  description: string;
  lookup_prefix: string;
  token_hash: string;
  expires_at: string;
  max_uses: number;
  use_count: number;
  created_by: string;
  created_at: string;
  revoked_at: string | null;
}

export interface DeviceCredentialsTable {
  id: string;
  organization_id: string;
  device_id: string;
  lookup_prefix: string;
  token_hash: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/**
 * On PostgreSQL a row is inserted without `seq`, `prev_hash` and `hash`; the chain trigger fills
 * them at commit (migration 0011), so no reader ever sees them null.
 */
export interface AuditLogTable {
  id: string;
  seq: ColumnType<number, number | null, number>;
  organization_id: string | null;
  occurred_at: string;
  actor_type: string;
  actor_id: string | null;
  action: string;
  target_type: string | null;
  target_id: string | null;
  outcome: string;
  reason: string | null;
  /** JSON object; part of the hashed content. */
  details: string;
  request_id: string | null;
  prev_hash: ColumnType<string, string | null, string>;
  hash: ColumnType<string, string | null, string>;
  /** SHA-256 of the content (encoding 2); null on rows written before migration 0011. */
  entry_hash: string | null;
}

export type AuditLogRow = Selectable<AuditLogTable>;

/** One row (id 1) holding the chain's tip; appends lock it first, which serializes writers. */
export interface AuditChainHeadTable {
  id: number;
  seq: number;
  last_hash: string;
}

/** Where an imported device came from: one row per directory object (AD objectGUID, else its DN). */
export interface DeviceExternalRefsTable {
  organization_id: string;
  source: 'ad';
  external_id: string;
  external_dn: string | null;
  device_id: string;
  created_at: string;
  updated_at: string;
}

/** A BitLocker key package (msFVE-KeyPackage), envelope-encrypted like the password it belongs to. */
export interface RecoveryKeyPackagesTable {
  recovery_key_id: string;
  organization_id: string;
  ciphertext: string;
  wrapped_key: string;
  kek_id: string;
  created_at: string;
}

/** Scheduled Active Directory sync of one organization; the lease columns keep runs single across servers. */
export interface DirectorySyncConfigsTable {
  organization_id: string;
  url: string;
  ca_certificate: string | null;
  base_dn: string;
  bind_dn: string;
  bind_password_ciphertext: string;
  bind_password_wrapped_key: string;
  bind_password_kek_id: string;
  interval_minutes: number;
  enabled: number;
  next_run_at: string | null;
  lease_holder: string | null;
  lease_expires_at: string | null;
  last_run_started_at: string | null;
  last_run_finished_at: string | null;
  last_run_status: 'running' | 'succeeded' | 'failed' | null;
  last_run_trigger: 'schedule' | 'manual' | null;
  /** JSON of the import report's counts (never a password). */
  last_run_summary: string | null;
  last_run_error: string | null;
  created_at: string;
  updated_at: string;
}

/** A custom role of one organization; built-in roles live in code (access/roles.ts). */
export interface RolesTable {
  id: string;
  organization_id: string;
  name: string;
  description: string;
  /** JSON array of permission grants. */
  permissions: string;
  created_at: string;
  updated_at: string;
}

export interface RoleAssignmentsTable {
  id: string;
  organization_id: string;
  /** A built-in role key (`helpdesk`) or a custom role id (`rol_…`). */
  role_id: string;
  user_id: string | null;
  /** Lower-cased external (SSO / LDAP) group name; set instead of user_id. */
  external_group: string | null;
  /** `device-groups` limits it to the rows in role_assignment_groups (none left: grants nothing). */
  scope: 'organization' | 'device-groups';
  created_at: string;
}

export interface RoleAssignmentGroupsTable {
  role_assignment_id: string;
  device_group_id: string;
}

export interface UserExternalGroupsTable {
  organization_id: string;
  user_id: string;
  external_group: string;
}

export interface DeviceGroupUserMembersTable {
  device_group_id: string;
  user_id: string;
}

export interface OrganizationSettingsTable {
  organization_id: string;
  restrict_owner_key_recovery: number;
  disclosure_alert_threshold: number;
  disclosure_alert_window_minutes: number;
  suspend_on_disclosure_alert: number;
  updated_at: string;
  /** Shown on the self-service refusal; optional so older writers need not name it. */
  self_service_contact_text?: string | null;
  /** An https: or mailto: link shown with it. */
  self_service_contact_link?: string | null;
}

export interface AccountSuspensionsTable {
  id: string;
  organization_id: string;
  subject_type: 'user' | 'api-token';
  subject_id: string;
  reason: string;
  created_at: string;
  lifted_at: string | null;
}

/**
 * An organization's offer of a membership with one role assignment to an existing account; it
 * takes effect only when that account accepts it, before `expires_at`.
 */
export interface OrganizationInvitationsTable {
  id: string;
  organization_id: string;
  /** The user name as the administrator typed it (what they see, whether or not it exists). */
  username: string;
  /** The account of that name when invited; null when there was none (it can only expire). */
  user_id: string | null;
  /** A built-in role key or a custom role id of the organization. */
  role_id: string;
  /** JSON array of device-group ids the assignment is limited to; null means organization-wide. */
  device_group_ids: string | null;
  invited_by_type: string;
  invited_by_id: string | null;
  created_at: string;
  expires_at: string;
  accepted_at: string | null;
  declined_at: string | null;
  revoked_at: string | null;
}

export interface RateLimitCountersTable {
  bucket: string;
  window_start: string;
  count: number;
  expires_at: string;
}

/** Consecutive failed sign-ins per throttled key and the lock they set; shared by every instance. */
export interface SignInAttemptsTable {
  key: string;
  failures: number;
  last_failure_at: string;
  locked_until: string | null;
}

/** The organization's identity policy (absent row: defaults, MFA not required). */
export interface OrganizationIdentitySettingsTable {
  organization_id: string;
  require_mfa_for_disclosure: number;
  updated_at: string;
}

/** A user's TOTP secret, envelope-encrypted; usable once `confirmed_at` is set. */
export interface TotpCredentialsTable {
  user_id: string;
  secret_ciphertext: string;
  secret_wrapped_key: string;
  secret_kek_id: string;
  confirmed_at: string | null;
  /** The last 30-second step accepted: a code from that step or earlier is a replay. */
  last_used_step: number | null;
  created_at: string;
}

export interface MfaRecoveryCodesTable {
  id: string;
  user_id: string;
  /** SHA-256 hex of the normalised code (80 random bits, so a fast hash is enough). */
  code_hash: string;
  created_at: string;
  used_at: string | null;
}

export interface WebauthnCredentialsTable {
  id: string;
  user_id: string;
  /** base64url credential id, as the browser reports it. */
  credential_id: string;
  /** base64url COSE public key. */
  public_key: string;
  counter: number;
  /** JSON array of transport hints. */
  transports: string;
  name: string;
  created_at: string;
  last_used_at: string | null;
}

export interface WebauthnChallengesTable {
  id: string;
  session_id: string;
  purpose: 'registration' | 'authentication';
  challenge: string;
  expires_at: string;
}

export interface OidcProvidersTable {
  id: string;
  organization_id: string;
  /** Unique across the installation: it names the provider in the start and callback URLs. */
  slug: string;
  display_name: string;
  issuer: string;
  client_id: string;
  client_secret_ciphertext: string | null;
  client_secret_wrapped_key: string | null;
  client_secret_kek_id: string | null;
  /** Space-separated. */
  scopes: string;
  groups_claim: string;
  username_claim: string;
  allow_insecure_issuer: number;
  enabled: number;
  created_at: string;
  updated_at: string;
}

export interface OidcSignInStatesTable {
  /** SHA-256 of the `state` parameter. */
  state_hash: string;
  provider_id: string;
  /** SHA-256 of the browser-binding cookie set at start: the callback must come from that browser. */
  binding_hash: string;
  nonce: string;
  code_verifier: string;
  expires_at: string;
}

export interface LdapDirectoriesTable {
  id: string;
  organization_id: string;
  slug: string;
  display_name: string;
  url: string;
  ca_certificate: string | null;
  base_dn: string;
  bind_dn: string | null;
  bind_password_ciphertext: string | null;
  bind_password_wrapped_key: string | null;
  bind_password_kek_id: string | null;
  upn_suffix: string | null;
  enabled: number;
  created_at: string;
  updated_at: string;
}

/** Links an account at an identity provider or directory (its stable subject) to a user. */
export interface ExternalIdentitiesTable {
  id: string;
  organization_id: string;
  provider_type: 'oidc' | 'ldap';
  provider_id: string;
  subject: string;
  user_id: string;
  created_at: string;
  last_sign_in_at: string;
}

/** An organization's mail (SMTP) settings and security addresses; the SMTP password is envelope-sealed. */
export interface NotificationSettingsTable {
  organization_id: string;
  smtp_host: string | null;
  smtp_port: number | null;
  /** `implicit` (TLS from the first byte, port 465), `starttls` (required upgrade) or `none`. */
  smtp_tls: 'implicit' | 'starttls' | 'none' | null;
  smtp_username: string | null;
  smtp_password_ciphertext: string | null;
  smtp_password_wrapped_key: string | null;
  smtp_password_kek_id: string | null;
  smtp_from: string | null;
  /** JSON array of e-mail addresses told of every disclosure, overdue rotation and alert. */
  security_addresses: string;
  updated_at: string;
}

/** A signed webhook; its HMAC secret is envelope-sealed. */
export interface NotificationWebhooksTable {
  id: string;
  organization_id: string;
  name: string;
  url: string;
  secret_ciphertext: string;
  secret_wrapped_key: string;
  secret_kek_id: string;
  /** JSON array of event types (`recovery-key.disclosed`, `rotation.*`, `*`). */
  event_types: string;
  enabled: number;
  created_at: string;
  updated_at: string;
}

export type NotificationDeliveryStatus = 'pending' | 'delivered' | 'failed';

/** The durable outbox: one row per event, channel and recipient, retried until delivered or given up. */
export interface NotificationDeliveriesTable {
  id: string;
  organization_id: string;
  channel: 'email' | 'webhook';
  /** An e-mail address, or a webhook id. */
  recipient: string;
  event_type: string;
  /** What makes the event unique (its audit entry id): the same event is queued once. */
  event_key: string;
  /** JSON: the rendered mail, or the webhook body; identifiers only, never a password. */
  payload: string;
  status: NotificationDeliveryStatus;
  attempts: number;
  next_attempt_at: string | null;
  lease_holder: string | null;
  lease_expires_at: string | null;
  /** SMTP reply code or HTTP status of the last attempt. */
  last_status: string | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  delivered_at: string | null;
}

export type RotationStatus = 'requested' | 'delivered' | 'completed' | 'failed' | 'overdue';

/** One request to replace a recovery key on its device; `open_key` keeps one open request per key. */
export interface RotationRequestsTable {
  id: string;
  organization_id: string;
  /** The key to replace (record id, `rk_…`). */
  recovery_key_id: string;
  device_id: string;
  volume_id: string;
  status: RotationStatus;
  /** `disclosure` (single-use policy) or `on-demand` (an operator asked). */
  trigger: 'disclosure' | 'on-demand';
  reason: string | null;
  requested_by_type: string;
  requested_by_id: string | null;
  requested_at: string;
  due_at: string;
  /** First check-in that handed it to the device; later check-ins hand it out again until a result. */
  delivered_at: string | null;
  last_delivered_at: string | null;
  completed_at: string | null;
  failed_at: string | null;
  failure_reason: string | null;
  overdue_at: string | null;
  /** The replacing key's record id, once completed. */
  new_recovery_key_id: string | null;
  /** recovery_key_id while open (requested, delivered, overdue), null once closed: unique. */
  open_key: string | null;
  updated_at: string;
}

/** Per-organization rotation policy (absent row: single-use passwords on, 7-day deadline). */
export interface RotationPoliciesTable {
  organization_id: string;
  single_use_passwords: number;
  deadline_days: number;
  updated_at: string;
}

/** A BitLocker event the agent forwarded from the device's event log; identifiers and text only. */
export interface DeviceEventsTable {
  id: string;
  organization_id: string;
  device_id: string;
  /** The Windows EventRecordID: the agent may resend, the same record is stored once. */
  record_id: number;
  event_id: number;
  occurred_at: string;
  received_at: string;
  level: string | null;
  /** Protector GUID named in the event text (which protector unlocked, was added or removed). */
  protector_id: string | null;
  message: string | null;
}

/** What the agent last said at check-in. */
export interface DeviceAgentStatusTable {
  device_id: string;
  organization_id: string;
  agent_version: string | null;
  last_check_in_at: string;
}

/** An organization's recovery-case policy (absent row: the defaults in recovery-cases.service.ts). */
export interface RecoveryCasePoliciesTable {
  organization_id: string;
  /** JSON array of the identity methods the helpdesk may use: `email-code`, `second-person`, `attested`. */
  identity_methods: string;
  require_disclosure_approval: number;
  allow_root_cause_after_disclosure: number;
  updated_at: string;
}

export type RecoveryCaseStatus =
  'open' | 'awaiting-approval' | 'disclosed' | 'awaiting-rotation' | 'closed' | 'cancelled';

/** One helpdesk recovery case: the checklist's outcome so far; each recorded step is a recovery_case_steps row. */
export interface RecoveryCasesTable {
  id: string;
  organization_id: string;
  /** The locked-out user. */
  requester_user_id: string;
  /** The account that opened the case (a user, or a service token). */
  operator_type: 'user' | 'api-token';
  operator_id: string;
  /** The ticket or call reference the helpdesk gave, if any. */
  reference: string | null;
  status: RecoveryCaseStatus;
  /** `email-code`, `second-person` or `attested`; set when verification starts. */
  identity_method: string | null;
  identity_verified_at: string | null;
  device_id: string | null;
  /** Whether the device belongs to the verified user: `match`, `mismatch`, `unknown` (no owner recorded). */
  owner_match: 'match' | 'mismatch' | 'unknown' | null;
  owner_override_at: string | null;
  /** As read from the preboot screen, canonical upper case (8 hex digits or a full key id). */
  key_id_entered: string | null;
  key_match: 'this-device' | 'other-device' | 'not-found' | null;
  recovery_key_id: string | null;
  located_at: string | null;
  root_cause_class: string | null;
  /** JSON of the root-cause answers (no secrets). */
  root_cause_answers: string | null;
  disclosure_approved_by_type: string | null;
  disclosure_approved_by_id: string | null;
  identity_approver_type: string | null;
  identity_approver_id: string | null;
  disclosed_at: string | null;
  disclosure_audit_id: string | null;
  /** MBAM reason code given at disclosure. */
  reason_code: string | null;
  /** The rotation module's request, when one was made for this case's disclosure. */
  rotation_request_id: string | null;
  read_back_count: number;
  closed_at: string | null;
  created_at: string;
  updated_at: string;
}

/** Who did which checklist step of a case, and when; `details` is JSON without secrets. */
export interface RecoveryCaseStepsTable {
  id: string;
  case_id: string;
  /** 1, 2, 3… within the case: the order steps were recorded in (timestamps can tie). */
  seq: number;
  step: string;
  action: string;
  actor_type: string;
  actor_id: string | null;
  occurred_at: string;
  details: string;
  audit_entry_id: string;
}

/** A one-time identity code e-mailed to the requester; only its Argon2id hash is kept. */
export interface RecoveryCaseCodesTable {
  id: string;
  case_id: string;
  code_hash: string;
  expires_at: string;
  attempts: number;
  consumed_at: string | null;
  voided_at: string | null;
  created_at: string;
}

export interface Database {
  organizations: OrganizationsTable;
  users: UsersTable;
  memberships: MembershipsTable;
  sessions: SessionsTable;
  api_tokens: ApiTokensTable;
  device_groups: DeviceGroupsTable;
  devices: DevicesTable;
  device_group_members: DeviceGroupMembersTable;
  volumes: VolumesTable;
  recovery_keys: RecoveryKeysTable;
  enrollment_tokens: EnrollmentTokensTable;
  device_credentials: DeviceCredentialsTable;
  audit_log: AuditLogTable;
  audit_chain_head: AuditChainHeadTable;
  sign_in_attempts: SignInAttemptsTable;
  organization_identity_settings: OrganizationIdentitySettingsTable;
  totp_credentials: TotpCredentialsTable;
  mfa_recovery_codes: MfaRecoveryCodesTable;
  webauthn_credentials: WebauthnCredentialsTable;
  webauthn_challenges: WebauthnChallengesTable;
  oidc_providers: OidcProvidersTable;
  oidc_sign_in_states: OidcSignInStatesTable;
  ldap_directories: LdapDirectoriesTable;
  external_identities: ExternalIdentitiesTable;
  device_external_refs: DeviceExternalRefsTable;
  recovery_key_packages: RecoveryKeyPackagesTable;
  directory_sync_configs: DirectorySyncConfigsTable;
  roles: RolesTable;
  role_assignments: RoleAssignmentsTable;
  role_assignment_groups: RoleAssignmentGroupsTable;
  user_external_groups: UserExternalGroupsTable;
  device_group_user_members: DeviceGroupUserMembersTable;
  organization_settings: OrganizationSettingsTable;
  account_suspensions: AccountSuspensionsTable;
  organization_invitations: OrganizationInvitationsTable;
  rate_limit_counters: RateLimitCountersTable;
  notification_settings: NotificationSettingsTable;
  notification_webhooks: NotificationWebhooksTable;
  notification_deliveries: NotificationDeliveriesTable;
  rotation_requests: RotationRequestsTable;
  rotation_policies: RotationPoliciesTable;
  device_events: DeviceEventsTable;
  device_agent_status: DeviceAgentStatusTable;
  recovery_case_policies: RecoveryCasePoliciesTable;
  recovery_cases: RecoveryCasesTable;
  recovery_case_steps: RecoveryCaseStepsTable;
  recovery_case_codes: RecoveryCaseCodesTable;
}
