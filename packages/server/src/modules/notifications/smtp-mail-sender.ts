/** The real MailSender: nodemailer over the organization's own SMTP settings (password envelope-sealed). */
import nodemailer from 'nodemailer';
import type { Db } from '../../db/database.js';
import type { Envelope, SecretBinding } from '../../lib/envelope.js';
import { AppError } from '../../lib/errors.js';
import type { MailSender } from '../../lib/mail.js';
import { createNotificationsRepo, type NotificationSettingsRow } from './notifications.repo.js';

export const smtpPasswordBinding = (organizationId: string): SecretBinding => ({
  organizationId,
  recordId: `notification-settings:${organizationId}`,
  purpose: 'smtp-password',
});

/** A short, secret-free description of why sending failed, and the SMTP reply code when there is one. */
export function describeMailError(err: unknown): { status: string; message: string } {
  if (err instanceof AppError) return { status: err.code, message: err.message };
  const e = err as { responseCode?: unknown; code?: unknown; message?: unknown };
  const status = typeof e.responseCode === 'number' ? String(e.responseCode) : String(e.code ?? 'error');
  // nodemailer messages name the host and the server's reply, never the password we sent.
  return { status: status.slice(0, 40), message: String(e.message ?? 'mail delivery failed').slice(0, 500) };
}

function transportOptions(settings: NotificationSettingsRow, password: string | null) {
  const tls = settings.smtp_tls ?? 'starttls';
  return {
    host: settings.smtp_host ?? '',
    port: settings.smtp_port ?? (tls === 'implicit' ? 465 : 587),
    secure: tls === 'implicit',
    requireTLS: tls === 'starttls',
    ignoreTLS: tls === 'none',
    ...(settings.smtp_username ? { auth: { user: settings.smtp_username, pass: password ?? '' } } : {}),
    // Bounded waits: a hung server must not hold a delivery (or a test-send request) for minutes.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  };
}

export function createSmtpMailSender(deps: { db: Db; envelope: Envelope }): MailSender {
  const repo = createNotificationsRepo(deps.db);
  return {
    async send(organizationId, message) {
      const settings = await repo.getSettings(organizationId);
      if (!settings?.smtp_host || !settings.smtp_from) {
        throw new AppError('MAIL_NOT_CONFIGURED', 'No mail server is configured for this organization');
      }
      const password =
        settings.smtp_password_ciphertext &&
        settings.smtp_password_wrapped_key &&
        settings.smtp_password_kek_id
          ? deps.envelope.open(smtpPasswordBinding(organizationId), {
              ciphertext: settings.smtp_password_ciphertext,
              wrappedKey: settings.smtp_password_wrapped_key,
              kekId: settings.smtp_password_kek_id,
            })
          : null;
      const transport = nodemailer.createTransport(transportOptions(settings, password));
      try {
        await transport.sendMail({
          from: settings.smtp_from,
          to: message.to,
          subject: message.subject,
          text: message.text,
        });
      } finally {
        transport.close();
      }
    },
  };
}
