// Reports on a seeded data set: devices, volumes and keys through the escrow API, disclosures through the disclosure service and helpdesk cases (HTTP) on a controlled clock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RootCauseAnswers } from '../../src/modules/recovery-cases/root-causes.js';
import { createRotationRepo } from '../../src/modules/rotation/rotation.repo.js';
import { bearer, enrollDevice, escrowPayload, newKey, randomKeyId, type TestVault } from '../helpers.js';
import { setOwner } from '../access/people.js';
import { assignRole, createPerson, deviceWithKey, personalToken } from '../access/support.js';
import { controlledClock, createClockedVault, type ControlledClock } from '../notifications/support.js';
import { caseApi, FORGOT_PIN, locatedCase } from '../recovery-cases/support.js';

let t: TestVault;
let clock: ControlledClock;
const seed = {
  u1: '',
  u2: '',
  tokenId: '',
  tokenName: '=cmd, "night" script',
  d1: { deviceId: '', name: '', keys: [] as string[] },
  d3: { deviceId: '', name: '', keys: [] as string[] },
};

/** RFC 4180: quoted fields may hold commas, quotes (doubled) and line breaks. */
function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  const endField = () => {
    row.push(field);
    field = '';
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') endField();
    else if (c === '\r' && text[i + 1] === '\n') {
      endField();
      rows.push(row);
      row = [];
      i++;
    } else field += c;
  }
  const [header, ...body] = rows;
  return body.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
}

async function get(url: string, token = t.adminToken) {
  return t.app.inject({ method: 'GET', url, headers: bearer(token) });
}

async function disclose(
  at: string,
  keyRecordId: string,
  actor: { type: 'user' | 'api-token'; id: string },
  channel?: string,
) {
  clock.set(at);
  await t.vault.services.recoveryKeys.discloseRecoveryPassword({
    organizationId: t.organizationId,
    recoveryKeyRecordId: keyRecordId,
    reason: 'seed',
    actor,
    ...(channel === undefined ? {} : { context: { channel } }),
  });
}

beforeAll(async () => {
  clock = controlledClock('2026-01-05T08:00:00.000Z');
  t = await createClockedVault(clock);
  seed.u1 = await createPerson(t, t.organizationId, 'alice');
  seed.u2 = await createPerson(t, t.organizationId, 'bob');
  const token = await t.app.inject({
    method: 'POST',
    url: '/api/api-tokens',
    headers: bearer(t.adminToken),
    payload: { name: seed.tokenName, permissions: ['keys:disclose'] },
  });
  seed.tokenId = token.json().id;

  // D1 (Sales): two volumes with keys. D2 (Sales): enrolled, no volume. D3 (Ops): one volume. D4: no group, no volume.
  const d1 = await deviceWithKey(t, t.adminToken, 'Sales');
  const second = await t.app.inject({
    method: 'POST',
    url: '/api/escrow/recovery-keys',
    headers: bearer(d1.credential),
    payload: escrowPayload(randomKeyId(), [newKey()], 'fixed'),
  });
  expect(second.statusCode, second.body).toBe(200);
  seed.d1 = {
    deviceId: d1.deviceId,
    name: d1.name,
    keys: [d1.keyRecordId, second.json().volumes[0].recoveryKeys[0].id],
  };
  await enrollDevice(t, 'PC-SALES-EMPTY', 'Sales');
  const d3 = await deviceWithKey(t, t.adminToken, 'Ops');
  seed.d3 = { deviceId: d3.deviceId, name: d3.name, keys: [d3.keyRecordId] };
  await enrollDevice(t, 'PC-NO-GROUP');
}, 60_000);

afterAll(async () => {
  await t?.close();
});

describe('escrow coverage', () => {
  it('counts devices and volumes with and without a current key, overall and per group', async () => {
    const res = await get('/api/reports/escrow-coverage');
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report.overall).toEqual({
      devices: 4,
      devicesWithCurrentKey: 2,
      devicesWithoutCurrentKey: 2,
      volumes: 3,
      volumesWithCurrentKey: 3,
      volumesWithoutCurrentKey: 0,
      volumesAwaitingRotation: 0,
    });
    const byName = Object.fromEntries(report.groups.map((g: { name: string }) => [g.name, g]));
    expect(byName.Sales).toMatchObject({
      devices: 2,
      devicesWithCurrentKey: 1,
      devicesWithoutCurrentKey: 1,
      volumes: 2,
    });
    expect(byName.Ops).toMatchObject({
      devices: 1,
      devicesWithCurrentKey: 1,
      devicesWithoutCurrentKey: 0,
      volumes: 1,
    });
  });
});

describe('disclosure reports', () => {
  beforeAll(async () => {
    await disclose('2026-01-20T08:00:00.000Z', seed.d3.keys[0]!, { type: 'user', id: seed.u1 }, 'cli');
    await disclose(
      '2026-03-02T10:00:00.000Z',
      seed.d1.keys[0]!,
      { type: 'user', id: seed.u1 },
      'self-service',
    );
    await disclose('2026-03-02T15:00:00.000Z', seed.d3.keys[0]!, { type: 'user', id: seed.u2 }, 'helpdesk');
    await disclose('2026-03-04T09:00:00.000Z', seed.d1.keys[1]!, { type: 'api-token', id: seed.tokenId });
    await disclose('2026-03-11T12:00:00.000Z', seed.d1.keys[0]!, { type: 'user', id: seed.u2 }, 'graph');
    await disclose('2026-03-13T08:00:00.000Z', seed.d3.keys[0]!, { type: 'user', id: seed.u2 }, 'helpdesk');
    clock.set('2026-03-20T00:00:00.000Z');
  });

  it('disclosed keys count as current but awaiting rotation', async () => {
    const report = (await get('/api/reports/escrow-coverage')).json();
    expect(report.overall).toMatchObject({
      volumesWithCurrentKey: 3,
      volumesAwaitingRotation: 3,
      devicesWithCurrentKey: 2,
    });
  });

  it('recoveries per day by path and root cause', async () => {
    const res = await get('/api/reports/recoveries?from=2026-03-01&to=2026-03-20');
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report.total).toBe(5);
    expect(report.byPath).toEqual({ 'self-service': 1, helpdesk: 2, api: 1, graph: 1 });
    expect(report.byRootCause).toEqual({ unknown: 5 });
    expect(report.series).toEqual([
      { period: '2026-03-02', path: 'helpdesk', rootCause: 'unknown', count: 1 },
      { period: '2026-03-02', path: 'self-service', rootCause: 'unknown', count: 1 },
      { period: '2026-03-04', path: 'api', rootCause: 'unknown', count: 1 },
      { period: '2026-03-11', path: 'graph', rootCause: 'unknown', count: 1 },
      { period: '2026-03-13', path: 'helpdesk', rootCause: 'unknown', count: 1 },
    ]);
  });

  it('recoveries per ISO week (Monday), and the same figures as CSV', async () => {
    const report = (await get('/api/reports/recoveries?from=2026-03-01&to=2026-03-20&bucket=week')).json();
    expect(
      report.series.map((s: { period: string; path: string; count: number }) => [s.period, s.path, s.count]),
    ).toEqual([
      ['2026-03-02', 'api', 1],
      ['2026-03-02', 'helpdesk', 1],
      ['2026-03-02', 'self-service', 1],
      ['2026-03-09', 'graph', 1],
      ['2026-03-09', 'helpdesk', 1],
    ]);
    const csv = await get('/api/reports/recoveries?from=2026-03-01&to=2026-03-20&bucket=week&format=csv');
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.headers['content-disposition']).toBe(
      'attachment; filename="bdevault-recoveries-2026-03-20.csv"',
    );
    expect(parseCsv(csv.body)).toEqual(
      report.series.map((s: Record<string, unknown>) => ({ ...s, count: String(s.count) })),
    );
  });

  it('disclosures per operator, with names, and CSV escaping that survives a round trip', async () => {
    const res = await get('/api/reports/disclosures-by-operator?from=2026-01-01&to=2026-03-20');
    expect(res.json().operators).toEqual([
      {
        actorType: 'user',
        actorId: seed.u2,
        actorName: 'bob',
        disclosures: 3,
        devices: 2,
        firstAt: '2026-03-02T15:00:00.000Z',
        lastAt: '2026-03-13T08:00:00.000Z',
      },
      {
        actorType: 'user',
        actorId: seed.u1,
        actorName: 'alice',
        disclosures: 2,
        devices: 2,
        firstAt: '2026-01-20T08:00:00.000Z',
        lastAt: '2026-03-02T10:00:00.000Z',
      },
      {
        actorType: 'api-token',
        actorId: seed.tokenId,
        actorName: seed.tokenName,
        disclosures: 1,
        devices: 1,
        firstAt: '2026-03-04T09:00:00.000Z',
        lastAt: '2026-03-04T09:00:00.000Z',
      },
    ]);
    const csv = parseCsv(
      (await get('/api/reports/disclosures-by-operator?from=2026-01-01&to=2026-03-20&format=csv')).body,
    );
    expect(csv).toHaveLength(3);
    // A leading = would run as a formula in a spreadsheet: the cell is neutralised, the rest intact.
    expect(csv[2]).toMatchObject({ actorName: `'${seed.tokenName}`, disclosures: '1' });
    expect(csv[0]).toMatchObject({ actorName: 'bob', disclosures: '3', devices: '2' });
  });

  it('flags devices with two or more disclosures in the last 30 days', async () => {
    const report = (await get('/api/reports/post-recovery')).json();
    expect(report.devices).toEqual([
      {
        deviceId: seed.d1.deviceId,
        deviceName: seed.d1.name,
        disclosures: 3,
        firstAt: '2026-03-02T10:00:00.000Z',
        lastAt: '2026-03-11T12:00:00.000Z',
        paths: ['api', 'graph', 'self-service'],
        rootCauses: ['unknown'],
      },
      // The January disclosure is outside the window.
      {
        deviceId: seed.d3.deviceId,
        deviceName: seed.d3.name,
        disclosures: 2,
        firstAt: '2026-03-02T15:00:00.000Z',
        lastAt: '2026-03-13T08:00:00.000Z',
        paths: ['helpdesk'],
        rootCauses: ['unknown'],
      },
    ]);
    expect((await get('/api/reports/post-recovery?windowDays=7')).json().devices).toEqual([]);
    const csv = parseCsv((await get('/api/reports/post-recovery?format=csv')).body);
    expect(csv.map((r) => [r.deviceName, r.disclosures, r.paths])).toEqual([
      [seed.d1.name, '3', 'api graph self-service'],
      [seed.d3.name, '2', 'helpdesk'],
    ]);
  });
});

describe('rotation compliance', () => {
  it('counts requests of the period by outcome, with the median time to complete', async () => {
    const repo = createRotationRepo(t.vault.db);
    const volumeOf = async (keyId: string) =>
      await t.vault.db
        .selectFrom('recovery_keys')
        .select(['volume_id', 'device_id'])
        .where('id', '=', keyId)
        .executeTakeFirstOrThrow();
    const key = seed.d1.keys[0]!;
    const { volume_id, device_id } = await volumeOf(key);
    const rows: [string, string, string | null, string][] = [
      // status, requested_at, completed_at, due_at
      ['completed', '2026-02-01T00:00:00.000Z', '2026-02-01T06:00:00.000Z', '2026-02-08T00:00:00.000Z'],
      ['completed', '2026-02-03T00:00:00.000Z', '2026-02-04T00:00:00.000Z', '2026-02-10T00:00:00.000Z'],
      ['completed', '2026-02-05T00:00:00.000Z', '2026-02-05T02:00:00.000Z', '2026-02-12T00:00:00.000Z'],
      ['failed', '2026-02-06T00:00:00.000Z', null, '2026-02-13T00:00:00.000Z'],
      ['overdue', '2026-02-07T00:00:00.000Z', null, '2026-02-14T00:00:00.000Z'],
      // Open and past its deadline: overdue even before a sweep marks it.
      ['requested', '2026-02-08T00:00:00.000Z', null, '2026-02-15T00:00:00.000Z'],
      ['delivered', '2026-02-25T00:00:00.000Z', null, '2026-04-01T00:00:00.000Z'],
    ];
    for (const [i, [status, requestedAt, completedAt, dueAt]] of rows.entries()) {
      await repo.insert({
        id: `rot_seed${i}`,
        organization_id: t.organizationId,
        recovery_key_id: key,
        device_id,
        volume_id,
        status: status as 'completed',
        trigger: 'on-demand',
        reason: null,
        requested_by_type: 'cli',
        requested_by_id: null,
        requested_at: requestedAt,
        due_at: dueAt,
        delivered_at: null,
        last_delivered_at: null,
        completed_at: completedAt,
        failed_at: status === 'failed' ? dueAt : null,
        failure_reason: null,
        overdue_at: status === 'overdue' ? dueAt : null,
        new_recovery_key_id: null,
        // Distinct placeholders: the seed must not collide with a request the disclosures opened.
        open_key: ['requested', 'delivered', 'overdue'].includes(status) ? `seed-open-${i}` : null,
        updated_at: requestedAt,
      });
    }
    const res = await get('/api/reports/rotation-compliance?from=2026-02-01&to=2026-03-01');
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toEqual({
      from: '2026-02-01T00:00:00.000Z',
      to: '2026-03-01T00:00:00.000Z',
      requested: 7,
      completed: 3,
      failed: 1,
      overdue: 2,
      open: 1,
      medianSecondsToComplete: 21_600,
    });
    const csv = parseCsv(
      (await get('/api/reports/rotation-compliance?from=2026-02-01&to=2026-03-01&format=csv')).body,
    );
    expect(csv).toEqual([
      {
        from: '2026-02-01T00:00:00.000Z',
        to: '2026-03-01T00:00:00.000Z',
        requested: '7',
        completed: '3',
        failed: '1',
        overdue: '2',
        open: '1',
        medianSecondsToComplete: '21600',
      },
    ]);
  });
});

describe('recoveries by root cause, from helpdesk cases', () => {
  type Device = Awaited<ReturnType<typeof deviceWithKey>>;
  const devices: Device[] = [];
  /** The helpdesk operator's token. */
  let helpdesk = '';
  let requester = '';
  const answers = (changes: Partial<RootCauseAnswers>): RootCauseAnswers => ({
    ...FORGOT_PIN,
    forgottenPinOrLostKey: 'no',
    ...changes,
  });

  async function setPolicy(allowRootCauseAfterDisclosure: boolean) {
    const res = await caseApi(t.app, t.adminToken).send({
      method: 'PUT',
      url: '/api/recovery-cases/policy',
      payload: { allowRootCauseAfterDisclosure },
    });
    expect(res.statusCode, res.body).toBe(200);
  }

  /**
   * A helpdesk case through the HTTP API at `at`: identity, device, key id, locate, then the
   * root-cause answers (unless `answers` is null or comes `after` the disclosure), then disclosure.
   */
  async function helpdeskCase(
    at: string,
    device: Device,
    rootCause: { answers: RootCauseAnswers | null; expect: string | null; after?: string },
  ) {
    clock.set(at);
    const api = caseApi(t.app, helpdesk);
    const id = await locatedCase(api, requester, device, { rootCause: false });
    const record = async () => {
      const res = await api.post(id, 'root-cause', { answers: rootCause.answers });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().resolution.class).toBe(rootCause.expect);
    };
    if (rootCause.answers && rootCause.after === undefined) await record();
    const disclosed = await api.post(id, 'disclose', { reasonCode: 'other', reason: 'seeded case' });
    expect(disclosed.statusCode, disclosed.body).toBe(200);
    if (rootCause.answers && rootCause.after !== undefined) {
      clock.set(rootCause.after);
      await record();
    }
    return id;
  }

  beforeAll(async () => {
    const operator = await createPerson(t, t.organizationId, 'carol-helpdesk');
    await assignRole(t, t.organizationId, operator, 'helpdesk');
    helpdesk = (await personalToken(t, t.organizationId, operator)).token;
    requester = await createPerson(t, t.organizationId, 'dave-locked-out');
    for (let i = 0; i < 9; i++) {
      const d = await deviceWithKey(t, t.adminToken);
      await setOwner(t, t.adminToken, d.deviceId, requester);
      devices.push(d);
    }
    const [e1, e2, e3, e4, e5, e6, e7, e8, e9] = devices as [Device, ...Device[]];
    // The policy lets the root-cause questions wait until after disclosure (two cases below do).
    await setPolicy(true);
    try {
      // Week of Monday 2026-04-06.
      await helpdeskCase('2026-04-06T09:00:00.000Z', e1, { answers: FORGOT_PIN, expect: 'unknown-pin' });
      await helpdeskCase('2026-04-06T11:00:00.000Z', e2!, {
        answers: answers({ changeCause: 'bios-firmware-update' }),
        expect: 'boot-or-firmware-change',
      });
      await helpdeskCase('2026-04-07T10:00:00.000Z', e3!, {
        answers: answers({ changeCause: 'tpm-cleared-or-replaced' }),
        expect: 'tpm-change',
      });
      await helpdeskCase('2026-04-08T10:00:00.000Z', e4!, {
        answers: answers({ forgottenPinOrLostKey: 'forgot-pin', unattendedOrExposed: 'yes' }),
        expect: 'malware-suspected',
      });
      // A "forgotten PIN" on a TPM-only volume is not the cause; the boot file change is.
      await helpdeskCase('2026-04-08T15:00:00.000Z', e5!, {
        answers: answers({
          protectionMode: 'tpm',
          forgottenPinOrLostKey: 'forgot-pin',
          bootFileChange: 'yes',
        }),
        expect: 'boot-or-firmware-change',
      });
      // Answered after the disclosure: the report files it under the class recorded later.
      await helpdeskCase('2026-04-09T10:00:00.000Z', e6!, {
        answers: answers({ protectionMode: 'startup-key', forgottenPinOrLostKey: 'lost-startup-key' }),
        expect: 'lost-startup-key',
        after: '2026-04-09T10:30:00.000Z',
      });
      // Week of Monday 2026-04-13: the first device again, for another reason.
      await helpdeskCase('2026-04-13T08:00:00.000Z', e1, {
        answers: answers({ changeCause: 'tpm-cleared-or-replaced' }),
        expect: 'tpm-change',
      });
      // Recoveries without a case: self-service and the API.
      await disclose(
        '2026-04-13T12:00:00.000Z',
        e7!.keyRecordId,
        { type: 'user', id: requester },
        'self-service',
      );
      clock.set('2026-04-14T09:00:00.000Z');
      const direct = await t.app.inject({
        method: 'POST',
        url: `/api/recovery-keys/${e8!.keyRecordId}/disclose`,
        headers: bearer(t.adminToken),
        payload: { reason: 'script' },
      });
      expect(direct.statusCode, direct.body).toBe(200);
      // Disclosed, the questions never answered: unknown.
      await helpdeskCase('2026-04-15T09:00:00.000Z', e9!, { answers: null, expect: null });
      // Just outside the period asked for below (`to` is exclusive).
      await helpdeskCase('2026-04-20T00:00:00.000Z', e3!, { answers: FORGOT_PIN, expect: 'unknown-pin' });
    } finally {
      await setPolicy(false);
    }
    clock.set('2026-04-20T12:00:00.000Z');
  }, 120_000);

  it('counts each recovery under the class its case recorded, and under its path', async () => {
    const res = await get('/api/reports/recoveries?from=2026-04-01&to=2026-04-20');
    expect(res.statusCode, res.body).toBe(200);
    const report = res.json();
    expect(report.total).toBe(10);
    expect(report.byPath).toEqual({ helpdesk: 8, 'self-service': 1, api: 1 });
    expect(report.byRootCause).toEqual({
      'unknown-pin': 1,
      'boot-or-firmware-change': 2,
      'tpm-change': 2,
      'malware-suspected': 1,
      'lost-startup-key': 1,
      unknown: 3,
    });
    expect(report.series).toEqual([
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'boot-or-firmware-change', count: 1 },
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'unknown-pin', count: 1 },
      { period: '2026-04-07', path: 'helpdesk', rootCause: 'tpm-change', count: 1 },
      { period: '2026-04-08', path: 'helpdesk', rootCause: 'boot-or-firmware-change', count: 1 },
      { period: '2026-04-08', path: 'helpdesk', rootCause: 'malware-suspected', count: 1 },
      { period: '2026-04-09', path: 'helpdesk', rootCause: 'lost-startup-key', count: 1 },
      { period: '2026-04-13', path: 'helpdesk', rootCause: 'tpm-change', count: 1 },
      { period: '2026-04-13', path: 'self-service', rootCause: 'unknown', count: 1 },
      { period: '2026-04-14', path: 'api', rootCause: 'unknown', count: 1 },
      { period: '2026-04-15', path: 'helpdesk', rootCause: 'unknown', count: 1 },
    ]);
  });

  it('per ISO week, and the CSV carries the same rows', async () => {
    const url = '/api/reports/recoveries?from=2026-04-01&to=2026-04-20&bucket=week';
    const report = (await get(url)).json();
    expect(report.byRootCause).toMatchObject({ 'boot-or-firmware-change': 2, 'tpm-change': 2, unknown: 3 });
    expect(report.series).toEqual([
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'boot-or-firmware-change', count: 2 },
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'lost-startup-key', count: 1 },
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'malware-suspected', count: 1 },
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'tpm-change', count: 1 },
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'unknown-pin', count: 1 },
      { period: '2026-04-13', path: 'api', rootCause: 'unknown', count: 1 },
      { period: '2026-04-13', path: 'helpdesk', rootCause: 'tpm-change', count: 1 },
      { period: '2026-04-13', path: 'helpdesk', rootCause: 'unknown', count: 1 },
      { period: '2026-04-13', path: 'self-service', rootCause: 'unknown', count: 1 },
    ]);
    const csv = await get(`${url}&format=csv`);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.headers['content-disposition']).toBe(
      'attachment; filename="bdevault-recoveries-2026-04-20.csv"',
    );
    expect(csv.body.split('\r\n')[0]).toBe('period,path,rootCause,count');
    expect(parseCsv(csv.body)).toEqual([
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'boot-or-firmware-change', count: '2' },
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'lost-startup-key', count: '1' },
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'malware-suspected', count: '1' },
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'tpm-change', count: '1' },
      { period: '2026-04-06', path: 'helpdesk', rootCause: 'unknown-pin', count: '1' },
      { period: '2026-04-13', path: 'api', rootCause: 'unknown', count: '1' },
      { period: '2026-04-13', path: 'helpdesk', rootCause: 'tpm-change', count: '1' },
      { period: '2026-04-13', path: 'helpdesk', rootCause: 'unknown', count: '1' },
      { period: '2026-04-13', path: 'self-service', rootCause: 'unknown', count: '1' },
    ]);
  });

  it('lists the root causes of a device flagged for post-recovery analysis', async () => {
    const report = (await get('/api/reports/post-recovery')).json();
    expect(report.devices).toEqual(
      [
        {
          deviceId: devices[0]!.deviceId,
          deviceName: devices[0]!.name,
          disclosures: 2,
          firstAt: '2026-04-06T09:00:00.000Z',
          lastAt: '2026-04-13T08:00:00.000Z',
          paths: ['helpdesk'],
          rootCauses: ['tpm-change', 'unknown-pin'],
        },
        {
          deviceId: devices[2]!.deviceId,
          deviceName: devices[2]!.name,
          disclosures: 2,
          firstAt: '2026-04-07T10:00:00.000Z',
          lastAt: '2026-04-20T00:00:00.000Z',
          paths: ['helpdesk'],
          rootCauses: ['tpm-change', 'unknown-pin'],
        },
      ].sort((a, b) => a.deviceName.localeCompare(b.deviceName)),
    );
    const csv = parseCsv((await get('/api/reports/post-recovery?format=csv')).body);
    expect(csv.map((r) => [r.deviceId, r.rootCauses]).sort()).toEqual(
      [
        [devices[0]!.deviceId, 'tpm-change unknown-pin'],
        [devices[2]!.deviceId, 'tpm-change unknown-pin'],
      ].sort(),
    );
  });
});

describe('access and input', () => {
  it('needs reports:read; bad periods and unknown parameters are 400', async () => {
    const reader = await t.app.inject({
      method: 'POST',
      url: '/api/api-tokens',
      headers: bearer(t.adminToken),
      payload: { name: 'reader', permissions: ['reports:read'] },
    });
    const deviceReader = await t.app.inject({
      method: 'POST',
      url: '/api/api-tokens',
      headers: bearer(t.adminToken),
      payload: { name: 'devices', permissions: ['devices:read'] },
    });
    expect((await get('/api/reports/escrow-coverage', reader.json().token)).statusCode).toBe(200);
    expect((await get('/api/reports/escrow-coverage', deviceReader.json().token)).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'GET', url: '/api/reports/recoveries' })).statusCode).toBe(401);
    expect((await get('/api/reports/recoveries?from=2026-03-20&to=2026-03-01')).statusCode).toBe(400);
    expect((await get('/api/reports/recoveries?from=2020-01-01&to=2026-03-01')).statusCode).toBe(400);
    expect((await get('/api/reports/recoveries?from=yesterday')).statusCode).toBe(400);
    expect((await get('/api/reports/recoveries?format=xml')).statusCode).toBe(400);
    expect((await get('/api/reports/post-recovery?windowDays=0')).statusCode).toBe(400);
    expect((await get('/api/reports/escrow-coverage?extra=1')).statusCode).toBe(400);
  });
});
