// Rotation test fixtures: a vault on a controllable clock, a recording event sink, and the device side through the escrow API.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { buildApp } from '../../src/app.js';
import type { App } from '../../src/app-types.js';
import type { Clock } from '../../src/lib/clock.js';
import { loadConfig } from '../../src/lib/config.js';
import type { DomainEvent, EventSink } from '../../src/lib/events.js';
import { buildRotationServices } from '../../src/modules/rotation/rotation.routes.js';
import { openVault, type Vault } from '../../src/vault.js';
import { bearer, escrowPayload, fastHasher, newKey, randomKeyId } from '../helpers.js';
import { testDatabase } from '../support/postgres.js';

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = Date.now()) {
    this.#now = start;
  }
  now(): Date {
    return new Date(this.#now);
  }
  advance(ms: number): void {
    this.#now += ms;
  }
}

export const DAY = 86_400_000;

/** Keeps every emitted event, so a test can count them. */
export class RecordingSink implements EventSink {
  readonly events: DomainEvent[] = [];
  async emit(...events: DomainEvent[]): Promise<void> {
    this.events.push(...events);
  }
  ofType<T extends DomainEvent['type']>(type: T): Extract<DomainEvent, { type: T }>[] {
    return this.events.filter((e): e is Extract<DomainEvent, { type: T }> => e.type === type);
  }
}

export interface RotationVault {
  vault: Vault;
  app: App;
  clock: ManualClock;
  sink: RecordingSink;
  adminToken: string;
  organizationId: string;
  /** The services on the same clock and sink as the app (the sweep, device events). */
  services: ReturnType<typeof buildRotationServices>;
  close(): Promise<void>;
}

export async function createRotationVault(): Promise<RotationVault> {
  const dir = mkdtempSync(join(tmpdir(), 'bdevault-rotation-'));
  const database = await testDatabase();
  const config = loadConfig({ dataDir: dir, logLevel: 'silent', ...database.input });
  const clock = new ManualClock();
  const vault = await openVault(config, { passwordHasher: fastHasher, clock });
  const first = await vault.services.identity.bootstrapFirstOrganization({
    organizationName: 'Rotation org',
  });
  if (!first) throw new Error('bootstrap did not run on an empty database');
  const token = await vault.services.apiTokens.createApiToken({
    organizationId: first.organizationId,
    name: 'test admin',
    permissions: ['*'],
    creatorPermissions: undefined,
    actor: { type: 'cli', id: null },
  });
  const sink = new RecordingSink();
  const deps = { ...vault.deps, events: sink };
  const app = await buildApp(config, deps);
  await app.ready();
  return {
    vault,
    app,
    clock,
    sink,
    adminToken: token.token,
    organizationId: first.organizationId,
    services: buildRotationServices(deps),
    async close() {
      await app.close();
      await vault.close();
      await database.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let address = 1;
/** A distinct client address per enrollment: enrollment is rate-limited per address. */
const nextAddress = () => `10.77.${(++address >> 8) & 255}.${address & 255}`;

/** A simulated agent: enrolls, escrows, checks in and reports, all through the escrow API. */
export class FakeAgent {
  readonly volumeGuid = randomKeyId();
  constructor(
    readonly r: RotationVault,
    readonly deviceId: string,
    readonly credential: string,
  ) {}

  static async enroll(r: RotationVault, options: { groupName?: string; adminToken?: string } = {}) {
    const created = await r.app.inject({
      method: 'POST',
      url: '/api/enrollment-tokens',
      headers: bearer(options.adminToken ?? r.adminToken),
      payload: { maxUses: 1, ...(options.groupName ? { deviceGroupName: options.groupName } : {}) },
    });
    expect(created.statusCode, created.body).toBe(201);
    const enrolled = await r.app.inject({
      method: 'POST',
      url: '/api/escrow/enroll',
      remoteAddress: nextAddress(),
      headers: bearer(created.json().enrollmentToken),
      payload: { device: { name: `PC-${randomKeyId().slice(0, 8)}`, os: 'Windows 11 Pro' } },
    });
    expect(enrolled.statusCode, enrolled.body).toBe(201);
    return new FakeAgent(r, enrolled.json().deviceId, enrolled.json().deviceCredential);
  }

  post(url: string, payload: unknown) {
    return this.r.app.inject({
      method: 'POST',
      url,
      headers: bearer(this.credential),
      payload: payload as object,
    });
  }

  /** Escrows the given keys as the volume's complete set of numerical passwords; returns record ids. */
  async escrow(keys: { keyId: string; password: string }[]): Promise<string[]> {
    const res = await this.post('/api/escrow/recovery-keys', escrowPayload(this.volumeGuid, keys));
    expect(res.statusCode, res.body).toBe(200);
    return (res.json().volumes[0].recoveryKeys as { id: string }[]).map((k) => k.id);
  }

  /** Escrows one fresh key and returns it with its record id. */
  async escrowNewKey() {
    const key = newKey();
    const [id] = await this.escrow([key]);
    return { ...key, id: id! };
  }

  async checkIn() {
    const res = await this.post('/api/escrow/check-in', { agentVersion: '1.0.0' });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as {
      serverTime: string;
      actions: {
        type: string;
        rotationId: string;
        recoveryKeyId: string;
        volumeGuid: string;
        dueAt: string;
      }[];
    };
  }

  report(rotationId: string, payload: unknown) {
    return this.post(`/api/escrow/rotations/${rotationId}/result`, payload);
  }
}

export async function disclose(r: RotationVault, recoveryKeyRecordId: string, token = r.adminToken) {
  const res = await r.app.inject({
    method: 'POST',
    url: `/api/recovery-keys/${recoveryKeyRecordId}/disclose`,
    headers: bearer(token),
    payload: { reason: 'user locked out at preboot' },
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { recoveryPassword: string };
}

export async function keyStatus(r: RotationVault, recoveryKeyRecordId: string): Promise<string> {
  const res = await r.app.inject({
    url: `/api/recovery-keys/${recoveryKeyRecordId}`,
    headers: bearer(r.adminToken),
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().status;
}

export async function rotationsOf(r: RotationVault, deviceId: string, status?: string) {
  const res = await r.app.inject({
    url: `/api/rotations?deviceId=${deviceId}${status ? `&status=${status}` : ''}`,
    headers: bearer(r.adminToken),
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().rotations as {
    id: string;
    status: string;
    trigger: string;
    recoveryKey: { id: string; recoveryKeyId: string };
    newRecoveryKey: { id: string; recoveryKeyId: string } | null;
    failureReason: string | null;
    dueAt: string;
  }[];
}
