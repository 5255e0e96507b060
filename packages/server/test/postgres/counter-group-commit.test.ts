// Group commit of the rate-limit counters on PostgreSQL (counter-batcher.ts): the increments of
// requests that arrive while an upsert runs go together in the next one. Each caller must still get
// the count it would have got alone, so limits refuse from the same attempt on and the alert
// threshold is crossed exactly once.
import { describe, expect, it } from 'vitest';
import { createAccessRepo } from '../../src/modules/access/access.repo.js';
import { createCounterBatcher } from '../../src/modules/access/counter-batcher.js';
import { PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';
import { statementsOf } from '../support/sent-statements.js';
import {
  discloseAllAtOnce,
  escrowKeysOnNewDevice,
  onFreshPostgresVault,
  type TestVault,
} from '../helpers.js';

const pgUp = await postgresAvailable();
if (!pgUp)
  console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the counter group commit tests are skipped`);

describe.skipIf(!pgUp)('rate-limit counter group commit on PostgreSQL', () => {
  let t: TestVault;
  onFreshPostgresVault((vault) => (t = vault));

  const counterUpserts = (sent: string[]) => sent.filter((s) => /insert into "rate_limit_counters"/i.test(s));

  it('concurrent increments share statements, and each caller sees the count it would have seen alone', async () => {
    const batcher = createCounterBatcher(createAccessRepo(t.vault.db));
    const window = { windowStart: '2026-01-01T00:00:00.000Z', expiresAt: '2099-01-01T00:00:00.000Z' };
    const n = 40;
    let counts: Map<string, number>[] = [];
    const sent = await statementsOf(async () => {
      counts = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          batcher.incrementCounters([
            { bucket: 'test:shared', ...window },
            { bucket: `test:own:${i}`, ...window },
            // Half the callers share a second bucket, so two windows add up at different rates.
            ...(i % 2 === 0 ? [{ bucket: 'test:even', ...window }] : []),
          ]),
        ),
      );
    });
    // In the order the callers queued: 1, 2, … n, as n upserts one after the other would answer.
    expect(counts.map((c) => c.get('test:shared'))).toEqual(Array.from({ length: n }, (_, i) => i + 1));
    expect(counts.filter((_, i) => i % 2 === 0).map((c) => c.get('test:even'))).toEqual(
      Array.from({ length: n / 2 }, (_, i) => i + 1),
    );
    for (const [i, c] of counts.entries()) expect(c.get(`test:own:${i}`)).toBe(1);
    // Grouped: the first runs alone, the rest wait and go together.
    expect(counterUpserts(sent).length).toBeGreaterThan(1);
    expect(counterUpserts(sent).length).toBeLessThan(n / 2);
    const stored = await t.vault.db
      .selectFrom('rate_limit_counters')
      .select(['bucket', 'count'])
      .where('bucket', 'in', ['test:shared', 'test:even'])
      .orderBy('bucket')
      .execute();
    expect(stored.map((r) => [r.bucket, Number(r.count)])).toEqual([
      ['test:even', n / 2],
      ['test:shared', n],
    ]);
  });

  it('over HTTP, concurrent disclosures past the limit: exactly the limit served, one threshold alert', async () => {
    // The defaults: 30 disclosures a minute per account, an alert past 20 an hour.
    // 16 keys a request at most: three devices.
    const keys = (await Promise.all([14, 13, 13].map((n) => escrowKeysOnNewDevice(t, n)))).flat();
    const { responses, sent } = await discloseAllAtOnce(
      t,
      keys.map((k) => k.id),
      'counter group commit',
    );
    const statuses = responses.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 200)).toHaveLength(30);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);
    expect(counterUpserts(sent).length).toBeLessThan(keys.length);
    const alerts = await t.vault.db
      .selectFrom('audit_log')
      .select(['details'])
      .where('action', '=', 'alert.disclosure_threshold')
      .execute();
    expect(alerts).toHaveLength(1);
    expect(JSON.parse(alerts[0]!.details)).toMatchObject({ count: 21, threshold: 20 });
  });
});
