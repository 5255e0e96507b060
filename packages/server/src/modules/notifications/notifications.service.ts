/** Notification settings and webhooks (audited), test sends, and the delivery log of one organization. */
import type { z } from 'zod';
import type { Db } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import type { Envelope } from '../../lib/envelope.js';
import { AppError } from '../../lib/errors.js';
import { base32, type IdGenerator } from '../../lib/ids.js';
import type { MailSender } from '../../lib/mail.js';
import type { RandomSource } from '../../lib/random.js';
import type { AuditActorType, AuditWriter } from '../audit/audit.service.js';
import { renderWebhookBody } from './notification-messages.js';
import { openWebhookSecret, postWebhook, webhookSecretBinding } from './notifications.outbox.js';
import type { DeliveryFilter, DeliveryRow, NotificationsRepo, WebhookRow } from './notifications.repo.js';
import type { createWebhookBody, settingsBody, updateWebhookBody } from './notifications.schemas.js';
import { describeMailError, smtpPasswordBinding } from './smtp-mail-sender.js';

type Actor = { type: AuditActorType; id: string | null };

function toWebhook(row: WebhookRow) {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    eventTypes: JSON.parse(row.event_types) as string[],
    enabled: row.enabled === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function toDelivery(row: DeliveryRow) {
  return {
    id: row.id,
    channel: row.channel,
    recipient: row.recipient,
    eventType: row.event_type,
    eventKey: row.event_key,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.next_attempt_at,
    lastStatus: row.last_status,
    lastError: row.last_error,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deliveredAt: row.delivered_at,
  };
}

export function createNotificationsService(deps: {
  db: Db;
  clock: Clock;
  ids: IdGenerator;
  random: RandomSource;
  envelope: Envelope;
  auditWriter: AuditWriter;
  mail: MailSender;
  notificationsRepo: NotificationsRepo;
}) {
  const { db, clock, ids, random, envelope, auditWriter, mail, notificationsRepo: repo } = deps;
  const newSecret = () => `whsec_${base32(random.bytes(32))}`;

  async function getSettings(organizationId: string) {
    const row = await repo.getSettings(organizationId);
    return {
      smtp:
        row?.smtp_host && row.smtp_port && row.smtp_tls && row.smtp_from
          ? {
              host: row.smtp_host,
              port: row.smtp_port,
              tls: row.smtp_tls,
              username: row.smtp_username,
              passwordSet: row.smtp_password_ciphertext !== null,
              from: row.smtp_from,
            }
          : null,
      securityAddresses: JSON.parse(row?.security_addresses ?? '[]') as string[],
      updatedAt: row?.updated_at ?? null,
    };
  }

  async function findWebhook(organizationId: string, id: string): Promise<WebhookRow> {
    const row = await repo.findWebhook(organizationId, id);
    if (!row) throw new AppError('NOT_FOUND', 'No such webhook');
    return row;
  }

  return {
    getSettings,

    async putSettings(
      organizationId: string,
      input: z.infer<typeof settingsBody>,
      actor: Actor,
      requestId: string,
    ) {
      const now = clock.now().toISOString();
      await db.transaction().execute(async (trx) => {
        const existing = await repo.getSettings(organizationId, trx);
        const smtp = input.smtp;
        // Omitted password: keep the stored one; a new one is sealed now (cheap, no network).
        const sealed =
          smtp === null || smtp.password === null
            ? null
            : smtp.password === undefined
              ? existing?.smtp_password_ciphertext &&
                existing.smtp_password_wrapped_key &&
                existing.smtp_password_kek_id
                ? {
                    ciphertext: existing.smtp_password_ciphertext,
                    wrappedKey: existing.smtp_password_wrapped_key,
                    kekId: existing.smtp_password_kek_id,
                  }
                : null
              : envelope.seal(smtpPasswordBinding(organizationId), smtp.password);
        await repo.upsertSettings(
          {
            organization_id: organizationId,
            smtp_host: smtp?.host ?? null,
            smtp_port: smtp?.port ?? null,
            smtp_tls: smtp?.tls ?? null,
            smtp_username: smtp?.username ?? null,
            smtp_password_ciphertext: sealed?.ciphertext ?? null,
            smtp_password_wrapped_key: sealed?.wrappedKey ?? null,
            smtp_password_kek_id: sealed?.kekId ?? null,
            smtp_from: smtp?.from ?? null,
            security_addresses: JSON.stringify([...new Set(input.securityAddresses)]),
            updated_at: now,
          },
          trx,
        );
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'notifications.settings-updated',
            outcome: 'success',
            details: {
              smtpHost: smtp?.host ?? null,
              passwordChanged: smtp?.password !== undefined,
              securityAddresses: input.securityAddresses.length,
            },
            requestId,
          },
          trx,
        );
      });
      return getSettings(organizationId);
    },

    async listWebhooks(organizationId: string) {
      return (await repo.listWebhooks(organizationId)).map(toWebhook);
    },

    async createWebhook(
      organizationId: string,
      input: z.infer<typeof createWebhookBody>,
      actor: Actor,
      requestId: string,
    ) {
      const id = ids('webhook');
      const secret = newSecret();
      const sealed = envelope.seal(webhookSecretBinding(organizationId, id), secret);
      const now = clock.now().toISOString();
      const row: WebhookRow = {
        id,
        organization_id: organizationId,
        name: input.name,
        url: input.url,
        secret_ciphertext: sealed.ciphertext,
        secret_wrapped_key: sealed.wrappedKey,
        secret_kek_id: sealed.kekId,
        event_types: JSON.stringify([...new Set(input.eventTypes)]),
        enabled: input.enabled ? 1 : 0,
        created_at: now,
        updated_at: now,
      };
      await db.transaction().execute(async (trx) => {
        await repo.insertWebhook(row, trx);
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'notifications.webhook-created',
            target: { type: 'webhook', id },
            outcome: 'success',
            details: { eventTypes: row.event_types },
            requestId,
          },
          trx,
        );
      });
      return { ...toWebhook(row), secret };
    },

    async updateWebhook(
      organizationId: string,
      id: string,
      input: z.infer<typeof updateWebhookBody>,
      actor: Actor,
      requestId: string,
    ) {
      const now = clock.now().toISOString();
      const secret = input.rotateSecret ? newSecret() : undefined;
      const sealed =
        secret === undefined ? undefined : envelope.seal(webhookSecretBinding(organizationId, id), secret);
      await db.transaction().execute(async (trx) => {
        if (!(await repo.findWebhook(organizationId, id, trx)))
          throw new AppError('NOT_FOUND', 'No such webhook');
        await repo.updateWebhook(
          id,
          {
            ...(input.name === undefined ? {} : { name: input.name }),
            ...(input.url === undefined ? {} : { url: input.url }),
            ...(input.eventTypes === undefined
              ? {}
              : { event_types: JSON.stringify([...new Set(input.eventTypes)]) }),
            ...(input.enabled === undefined ? {} : { enabled: input.enabled ? 1 : 0 }),
            ...(sealed === undefined
              ? {}
              : {
                  secret_ciphertext: sealed.ciphertext,
                  secret_wrapped_key: sealed.wrappedKey,
                  secret_kek_id: sealed.kekId,
                }),
            updated_at: now,
          },
          trx,
        );
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'notifications.webhook-updated',
            target: { type: 'webhook', id },
            outcome: 'success',
            details: { secretRotated: secret !== undefined },
            requestId,
          },
          trx,
        );
      });
      const row = await findWebhook(organizationId, id);
      return { ...toWebhook(row), ...(secret === undefined ? {} : { secret }) };
    },

    async deleteWebhook(organizationId: string, id: string, actor: Actor, requestId: string) {
      await db.transaction().execute(async (trx) => {
        if (!(await repo.deleteWebhook(organizationId, id, trx)))
          throw new AppError('NOT_FOUND', 'No such webhook');
        await auditWriter.append(
          {
            organizationId,
            actor,
            action: 'notifications.webhook-deleted',
            target: { type: 'webhook', id },
            outcome: 'success',
            requestId,
          },
          trx,
        );
      });
    },

    /** Sends a test mail now (not through the outbox) and says what the server answered. */
    async testMail(organizationId: string, to: string[] | undefined) {
      const recipients = to ?? (await getSettings(organizationId)).securityAddresses;
      if (recipients.length === 0) {
        throw new AppError('VALIDATION_FAILED', 'Give recipients or configure security addresses first');
      }
      try {
        await mail.send(organizationId, {
          to: recipients,
          subject: '[bdevault] Test message',
          text: `This is a test message from bdevault for organization ${organizationId}, sent at ${clock.now().toISOString()}.`,
        });
        return { delivered: true, status: 'sent', error: null };
      } catch (err) {
        const { status, message } = describeMailError(err);
        return { delivered: false, status, error: message };
      }
    },

    /** Sends a signed `notification.test` event to one webhook now and reports the receiver's answer. */
    async testWebhook(organizationId: string, id: string) {
      const row = await findWebhook(organizationId, id);
      const deliveryId = `test_${base32(random.bytes(10))}`;
      const now = clock.now();
      const body = renderWebhookBody(
        {
          type: 'notification.test',
          organizationId,
          occurredAt: now.toISOString(),
          key: deliveryId,
          fields: { webhookId: id },
        },
        deliveryId,
      );
      const result = await postWebhook(row.url, openWebhookSecret(envelope, row), body, {
        deliveryId,
        eventType: 'notification.test',
        unixSeconds: Math.floor(now.getTime() / 1000),
      });
      return { delivered: result.ok, status: result.status, error: result.error };
    },

    async listDeliveries(organizationId: string, filter: DeliveryFilter) {
      return (await repo.listDeliveries(organizationId, filter)).map(toDelivery);
    },
  };
}
