/** Security alerts leave through this narrow sink; notifications (mail, webhooks) implement it later. */

export interface SecurityAlert {
  type: 'disclosure_threshold';
  organizationId: string;
  account: { type: 'user' | 'api-token'; id: string };
  /** Disclosures counted in the window when the alert fired. */
  count: number;
  threshold: number;
  windowMinutes: number;
  suspended: boolean;
  occurredAt: string;
  auditEntryId: string;
}

export interface AlertSink {
  /** Called after the alert's audit row is committed; a failure here never undoes that row. */
  emit(alert: SecurityAlert): Promise<void>;
}

/** Until notifications exist the audit row is the alert; nothing else is sent. */
export const auditOnlyAlertSink: AlertSink = { emit: async () => undefined };
