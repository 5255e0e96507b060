// A notification that cannot be queued after its change committed (the database failed between the
// two) is not silently dropped: the disclosure still succeeds, and the loss is reported with the
// event's type and key (the server logs it at error level; startServer wires the reporter).
import { sql } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LostNotification } from '../../src/modules/notifications/notifications.outbox.js';
import { deviceWithKey } from '../access/support.js';
import { bearer, createTestVault, type TestVault } from '../helpers.js';

let t: TestVault;
const lost: LostNotification[] = [];

beforeAll(async () => {
  t = await createTestVault();
  t.vault.onNotificationLost((l) => lost.push(l));
});

afterAll(async () => {
  await t?.close();
});

const disclose = (keyRecordId: string) =>
  t.app.inject({
    method: 'POST',
    url: `/api/recovery-keys/${keyRecordId}/disclose`,
    headers: bearer(t.adminToken),
    payload: { reason: 'lost notification test' },
  });

it('reports an event whose deliveries could not be queued, and the disclosure still succeeds', async () => {
  const device = await deviceWithKey(t, t.adminToken);
  // The routing read fails after the disclosure commits, as it would with the database gone.
  await sql`alter table notification_settings rename to notification_settings_away`.execute(t.vault.db);
  let res: Awaited<ReturnType<typeof disclose>>;
  try {
    res = await disclose(device.keyRecordId);
  } finally {
    await sql`alter table notification_settings_away rename to notification_settings`.execute(t.vault.db);
  }
  expect(res.statusCode, res.body).toBe(200);
  const auditEntryId = res.json().auditEntryId as string;
  expect(lost.map(({ eventType, eventKey }) => ({ eventType, eventKey }))).toEqual([
    { eventType: 'recovery-key.disclosed', eventKey: `recovery-key.disclosed:${auditEntryId}` },
    // Single-use passwords (the default): the disclosure also opened a rotation request.
    { eventType: 'rotation.requested', eventKey: `rotation.requested:${auditEntryId}` },
  ]);
  expect(lost[0]!.err).toBeInstanceOf(Error);
  // Nothing of the secret travels with the report.
  expect(JSON.stringify(lost.map((l) => ({ ...l, err: String(l.err) })))).not.toContain(
    res.json().recoveryPassword,
  );

  const other = await deviceWithKey(t, t.adminToken);
  expect((await disclose(other.keyRecordId)).statusCode).toBe(200);
  expect(lost).toHaveLength(2);
});
