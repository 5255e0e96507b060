/** Notification settings: the organization's SMTP server and security addresses, webhooks, test sends, deliveries. */
import { useState } from 'react';
import { api, get, post } from '../api.tsx';
import { Empty, ErrorBox, Loaded, ShownOnce, useAction, useAsync, When } from '../ui.tsx';

interface MailSettings {
  smtp: {
    host: string;
    port: number;
    tls: 'implicit' | 'starttls' | 'none';
    username: string | null;
    passwordSet: boolean;
    from: string;
  } | null;
  securityAddresses: string[];
}
interface Webhook {
  id: string;
  name: string;
  url: string;
  eventTypes: string[];
  enabled: boolean;
  createdAt: string;
}
interface Delivery {
  id: string;
  channel: string;
  recipient: string;
  eventType: string;
  status: string;
  attempts: number;
  lastError: string | null;
  createdAt: string;
}

const EVENT_TYPES = [
  'recovery-key.disclosed',
  'rotation.overdue',
  'rotation.failed',
  'rotation.completed',
  'device.event-reported',
];

export function NotificationsPage() {
  const settings = useAsync(() => get<MailSettings>('/api/notifications/settings'), []);
  const webhooks = useAsync(() => get<{ webhooks: Webhook[] }>('/api/notifications/webhooks'), []);
  const deliveries = useAsync(
    () => get<{ deliveries: Delivery[] }>('/api/notifications/deliveries?limit=50'),
    [],
  );
  const [result, setResult] = useState<string | undefined>();
  const [secret, setSecret] = useState<string | undefined>();
  const { busy, error, run } = useAction();

  // A webhook delivery names the webhook by id: show its name and address while it exists.
  const webhookLabel = (id: string) => {
    const w = webhooks.data?.webhooks.find((x) => x.id === id);
    return w ? `${w.name} (${w.url})` : id;
  };
  const testResult = (r: { delivered: boolean; status: string; error: string | null } | undefined) => {
    if (r) setResult(r.delivered ? `Delivered (${r.status}).` : `Not delivered: ${r.error ?? r.status}`);
    deliveries.reload();
  };

  return (
    <>
      <h1>Notifications</h1>
      {secret && (
        <ShownOnce
          label="Webhook signing secret (HMAC-SHA256)."
          value={secret}
          onDone={() => setSecret(undefined)}
        />
      )}
      <ErrorBox error={error} />
      {result && (
        <p className="alert alert-ok" role="status" data-testid="test-result">
          {result}
        </p>
      )}
      <Loaded state={settings} what="Loading mail settings">
        {(s) => (
          <form
            className="panel"
            aria-labelledby="smtp-title"
            onSubmit={async (e) => {
              e.preventDefault();
              const f = new FormData(e.currentTarget);
              const password = String(f.get('smtp-password') ?? '');
              const username = String(f.get('smtp-username') ?? '');
              const saved = await run(() =>
                api('PUT', '/api/notifications/settings', {
                  smtp: {
                    host: String(f.get('smtp-host')),
                    port: Number(f.get('smtp-port')),
                    tls: String(f.get('smtp-tls')),
                    from: String(f.get('smtp-from')),
                    ...(username ? { username } : {}),
                    ...(password ? { password } : {}),
                  },
                  securityAddresses: String(f.get('security-addresses') ?? '')
                    .split(/[\s,;]+/)
                    .filter(Boolean),
                }),
              );
              if (saved) {
                setResult('Mail settings saved.');
                settings.reload();
              }
            }}
          >
            <h2 id="smtp-title">E-mail (SMTP)</h2>
            <div className="inline-form">
              <label className="grow">
                SMTP server
                <input name="smtp-host" defaultValue={s.smtp?.host ?? ''} required maxLength={255} />
              </label>
              <label>
                Port
                <input
                  name="smtp-port"
                  type="number"
                  min={1}
                  max={65535}
                  defaultValue={s.smtp?.port ?? 587}
                  required
                />
              </label>
              <label>
                Encryption
                <select name="smtp-tls" defaultValue={s.smtp?.tls ?? 'starttls'}>
                  <option value="starttls">STARTTLS</option>
                  <option value="implicit">TLS (implicit)</option>
                  <option value="none">None (local relay only)</option>
                </select>
              </label>
            </div>
            <div className="inline-form">
              <label>
                User name
                <input
                  name="smtp-username"
                  defaultValue={s.smtp?.username ?? ''}
                  maxLength={255}
                  autoComplete="off"
                />
              </label>
              <label>
                Password {s.smtp?.passwordSet && <span className="hint">set; leave empty to keep</span>}
                <input name="smtp-password" type="password" maxLength={1024} autoComplete="new-password" />
              </label>
              <label className="grow">
                From address
                <input
                  name="smtp-from"
                  type="email"
                  defaultValue={s.smtp?.from ?? ''}
                  required
                  maxLength={255}
                />
              </label>
            </div>
            <label>
              Security addresses{' '}
              <span className="hint">
                told about every disclosure, overdue rotation and alert; comma-separated
              </span>
              <input
                name="security-addresses"
                defaultValue={s.securityAddresses.join(', ')}
                maxLength={2000}
              />
            </label>
            <div className="row">
              <button type="submit" disabled={busy}>
                Save mail settings
              </button>
              <button
                type="button"
                className="secondary"
                disabled={busy || !s.smtp}
                onClick={async () =>
                  testResult(
                    await run(() =>
                      post<{ delivered: boolean; status: string; error: string | null }>(
                        '/api/notifications/settings/test-mail',
                        {},
                      ),
                    ),
                  )
                }
              >
                Send a test e-mail
              </button>
            </div>
          </form>
        )}
      </Loaded>
      <section aria-labelledby="wh-title">
        <h2 id="wh-title">Webhooks</h2>
        <Loaded state={webhooks} what="Loading webhooks">
          {({ webhooks: list }) =>
            list.length === 0 ? (
              <Empty>No webhook yet.</Empty>
            ) : (
              <ul className="list">
                {list.map((w) => (
                  <li key={w.id}>
                    <strong>{w.name}</strong> <code className="small">{w.url}</code> ·{' '}
                    {w.eventTypes.join(', ')}
                    {!w.enabled && <span className="badge badge-superseded">off</span>}{' '}
                    <button
                      type="button"
                      className="secondary small"
                      disabled={busy}
                      aria-label={`Test webhook ${w.name}`}
                      onClick={async () =>
                        testResult(
                          await run(() =>
                            post<{ delivered: boolean; status: string; error: string | null }>(
                              `/api/notifications/webhooks/${w.id}/test`,
                            ),
                          ),
                        )
                      }
                    >
                      Test
                    </button>{' '}
                    <button
                      type="button"
                      className="secondary small"
                      disabled={busy}
                      aria-label={`Delete webhook ${w.name}`}
                      onClick={async () => {
                        await run(() => api('DELETE', `/api/notifications/webhooks/${w.id}`));
                        webhooks.reload();
                      }}
                    >
                      Delete
                    </button>
                  </li>
                ))}
              </ul>
            )
          }
        </Loaded>
        <form
          className="panel"
          aria-labelledby="new-webhook-title"
          onSubmit={async (e) => {
            e.preventDefault();
            const form = e.currentTarget;
            const f = new FormData(form);
            const r = await run(() =>
              post<Webhook & { secret?: string }>('/api/notifications/webhooks', {
                name: String(f.get('wh-name')),
                url: String(f.get('wh-url')),
                eventTypes: f.getAll('wh-event').map(String),
              }),
            );
            if (r) {
              if (r.secret) setSecret(r.secret);
              form.reset();
              webhooks.reload();
            }
          }}
        >
          <h3 id="new-webhook-title">New webhook</h3>
          <div className="inline-form">
            <label>
              Name
              <input name="wh-name" required maxLength={100} />
            </label>
            <label className="grow">
              URL
              <input name="wh-url" type="url" required maxLength={2048} placeholder="https://…" />
            </label>
          </div>
          <fieldset className="checks">
            <legend>Events</legend>
            {EVENT_TYPES.map((t) => (
              <label key={t} className="check">
                <input type="checkbox" name="wh-event" value={t} defaultChecked />
                <code>{t}</code>
              </label>
            ))}
          </fieldset>
          <button type="submit" disabled={busy}>
            Add webhook
          </button>
        </form>
      </section>
      <section aria-labelledby="dl-title">
        <h2 id="dl-title">Recent deliveries</h2>
        <Loaded state={deliveries} what="Loading deliveries">
          {({ deliveries: list }) =>
            list.length === 0 ? (
              <Empty>Nothing sent yet.</Empty>
            ) : (
              <div className="table-wrap">
                <table>
                  <caption className="visually-hidden">Recent deliveries</caption>
                  <thead>
                    <tr>
                      <th scope="col">When</th>
                      <th scope="col">Channel</th>
                      <th scope="col">To</th>
                      <th scope="col">Event</th>
                      <th scope="col">Status</th>
                    </tr>
                  </thead>
                  <tbody>
                    {list.map((d) => (
                      <tr key={d.id}>
                        <td>
                          <When iso={d.createdAt} />
                        </td>
                        <td>{d.channel}</td>
                        <td className="small">
                          {d.channel === 'webhook' ? webhookLabel(d.recipient) : d.recipient}
                        </td>
                        <td>
                          <code>{d.eventType}</code>
                        </td>
                        <td>
                          {d.status} {d.attempts > 1 && `(${d.attempts} tries)`}{' '}
                          {d.lastError && <span className="muted small">{d.lastError}</span>}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )
          }
        </Loaded>
      </section>
    </>
  );
}
