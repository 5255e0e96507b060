/**
 * Outgoing mail leaves through this narrow interface, per organization (each organization has its
 * own SMTP settings, managed by the notifications module). Messages carry identifiers and one-time
 * codes, never recovery passwords.
 */
import { AppError } from './errors.js';

export interface MailMessage {
  to: string[];
  subject: string;
  text: string;
}

export interface MailSender {
  /** Sends now; throws MAIL_NOT_CONFIGURED when the organization has no mail settings. */
  send(organizationId: string, message: MailMessage): Promise<void>;
}

/** Until an organization configures SMTP, sending is refused with a clear code. */
export const unconfiguredMailSender: MailSender = {
  send: async () => {
    throw new AppError('MAIL_NOT_CONFIGURED', 'No mail server is configured for this organization');
  },
};
