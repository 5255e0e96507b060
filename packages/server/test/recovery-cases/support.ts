// Recovery-case fixtures: a real SMTP sink on loopback, a nodemailer MailSender pointed at it, and case helpers.
import type { AddressInfo } from 'node:net';
import type { InjectOptions } from 'fastify';
import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { SMTPServer } from 'smtp-server';
import { expect } from 'vitest';
import type { App } from '../../src/app-types.js';
import type { MailSender } from '../../src/lib/mail.js';
import { bearer, type TestVault } from '../helpers.js';
import { nextAddress } from '../access/support.js';

export interface ReceivedMail {
  to: string[];
  subject: string;
  text: string;
}

export interface SmtpSink {
  port: number;
  messages: ReceivedMail[];
  /** Resolves with the next message sent to `address` (already received or arriving later). */
  next(address: string, timeoutMs?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
}

export async function startSmtpSink(): Promise<SmtpSink> {
  const messages: ReceivedMail[] = [];
  const consumed = new Set<ReceivedMail>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, _session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          const to = ([] as { value: { address?: string }[] }[])
            .concat(parsed.to ?? [])
            .flatMap((a) => a.value.map((v) => v.address ?? ''));
          messages.push({ to, subject: parsed.subject ?? '', text: parsed.text ?? '' });
          callback();
        })
        .catch((err: Error) => callback(err));
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    port,
    messages,
    async next(address, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find((m) => !consumed.has(m) && m.to.includes(address));
        if (found) {
          consumed.add(found);
          return found;
        }
        if (Date.now() > deadline) throw new Error(`no mail to ${address}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** The per-organization sender the notifications module will provide, here one SMTP server for all. */
export function nodemailerSender(port: number): MailSender & { sent: number } {
  const transport = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  const sender = {
    sent: 0,
    async send(_organizationId: string, message: { to: string[]; subject: string; text: string }) {
      await transport.sendMail({ from: 'bdevault@example.test', ...message });
      sender.sent += 1;
    },
  };
  return sender;
}

export function codeIn(mail: ReceivedMail): string {
  const match = /helpdesk: (\d{6})/.exec(mail.text);
  expect(match, mail.text).not.toBeNull();
  return match![1]!;
}

/** Sends a case request as `token` from its own address (disclosure limits count per address). */
export function caseApi(app: App, token: string, address = nextAddress()) {
  const send = (options: InjectOptions) =>
    app.inject({
      ...options,
      remoteAddress: address,
      headers: { ...(options.headers ?? {}), ...bearer(token) },
    });
  return {
    send,
    create: (requesterUserId: string) =>
      send({ method: 'POST', url: '/api/recovery-cases', payload: { requesterUserId, reference: 'INC-1' } }),
    get: (caseId: string) => send({ url: `/api/recovery-cases/${caseId}` }),
    post: (caseId: string, path: string, payload: unknown = {}) =>
      send({ method: 'POST', url: `/api/recovery-cases/${caseId}/${path}`, payload: payload as object }),
  };
}

export const FORGOT_PIN = {
  protectionMode: 'tpm-pin',
  bootFileChange: 'no',
  pcrProfile: '0,2,4,11',
  forgottenPinOrLostKey: 'forgot-pin',
  changeCause: 'none',
  lastSuccessfulStart: { at: '2026-01-05T08:00:00.000Z', whatHappenedSince: 'Came back from holiday' },
  unattendedOrExposed: 'no',
} as const;

/** Sets a user's registered e-mail address (the identity module owns the account; the column is shared). */
export async function setEmail(t: TestVault, userId: string, email: string | null) {
  await t.vault.db.updateTable('users').set({ email }).where('id', '=', userId).execute();
}

/** Walks a case to "located" with an attested identity check; returns the case id. */
export async function locatedCase(
  api: ReturnType<typeof caseApi>,
  requesterUserId: string,
  device: { name: string; keyId: string },
  options: { rootCause?: boolean } = {},
): Promise<string> {
  const created = await api.create(requesterUserId);
  expect(created.statusCode, created.body).toBe(201);
  const id = created.json().id as string;
  const steps: [string, unknown][] = [
    [
      'identity',
      { method: 'attested', attestation: 'call-back', note: 'Called back on the number in the HR record' },
    ],
    ['device', { deviceName: device.name }],
    ['key-id', { keyId: device.keyId.slice(0, 8) }],
    ['locate', {}],
  ];
  if (options.rootCause !== false) steps.push(['root-cause', { answers: FORGOT_PIN }]);
  for (const [path, payload] of steps) {
    const res = await api.post(id, path, payload);
    expect(res.statusCode, `${path}: ${res.body}`).toBe(200);
  }
  return id;
}
