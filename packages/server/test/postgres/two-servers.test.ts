// Two real `bdevault serve` processes on one PostgreSQL database disclose at once: the chain holds, no row is lost.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bdevaultArgs, repoRoot, runBdevault } from '../../../cli/test/run-bdevault.js';
import { loadConfig } from '../../src/lib/config.js';
import { openVault } from '../../src/vault.js';
import { escrowPayload, fastHasher, newKey, randomKeyId } from '../helpers.js';
import { createPgDatabase, PG_ADMIN_URL, postgresAvailable } from '../support/postgres.js';

const pgUp = await postgresAvailable();
if (!pgUp) console.warn(`PostgreSQL not reachable at ${PG_ADMIN_URL}: the two-server test is skipped`);

const PER_SERVER = 50;
const TOKENS = 10;
const children: ChildProcess[] = [];
const dirs: string[] = [];
let database: { url: string; drop(): Promise<void> } | undefined;
// Both instances must share the KEK: one installation, two processes.
const env = { BDEVAULT_KEK: randomBytes(32).toString('base64'), BDEVAULT_LOG_LEVEL: 'warn' };

function serve(databaseUrl: string): Promise<{ child: ChildProcess; url: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bdevault-pg-serve-'));
  dirs.push(dataDir);
  const child = spawn(
    process.execPath,
    bdevaultArgs([
      'serve',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--database-url',
      databaseUrl,
      '--trust-proxy',
      '127.0.0.1',
    ]),
    { cwd: repoRoot, env: { ...process.env, ...env, DATABASE_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start: ${out}${err}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /bdevault listening on (http:\/\/\S+)/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1]! });
      }
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

async function stop(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

afterAll(async () => {
  for (const child of children) await stop(child);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  await database?.drop();
});

describe.skipIf(!pgUp)('two servers on one PostgreSQL', () => {
  let servers: string[] = [];
  const tokens: string[] = [];
  const keys: { keyId: string; password: string }[] = [];

  beforeAll(async () => {
    database = await createPgDatabase();
    // The first start creates the organization; the second joins an installation that exists.
    const a = await serve(database.url);
    const b = await serve(database.url);
    servers = [a.url, b.url];

    const vault = await openVault(
      loadConfig({
        databaseUrl: database.url,
        kekBase64: env.BDEVAULT_KEK,
        dataDir: dirs[0]!,
        logLevel: 'silent',
      }),
      { passwordHasher: fastHasher },
    );
    try {
      const [organization] = await vault.services.organizations.list();
      for (let i = 0; i < TOKENS + 1; i += 1) {
        const created = await vault.services.apiTokens.createApiToken({
          organizationId: organization!.id,
          name: `load ${i}`,
          permissions: ['keys:read-metadata', 'keys:disclose', 'enrollment:manage'],
          creatorPermissions: undefined,
          actor: { type: 'cli', id: null },
        });
        tokens.push(created.token);
      }
    } finally {
      await vault.close();
    }
    const admin = { authorization: `Bearer ${tokens[TOKENS]}`, 'content-type': 'application/json' };
    const enrollment = await fetch(`${a.url}/api/enrollment-tokens`, {
      method: 'POST',
      headers: admin,
      body: JSON.stringify({ maxUses: 1 }),
    });
    const enrolled = await fetch(`${a.url}/api/escrow/enroll`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${((await enrollment.json()) as { enrollmentToken: string }).enrollmentToken}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ device: { name: 'LOAD-PC', os: 'Windows 11 Pro' } }),
    });
    const credential = ((await enrolled.json()) as { deviceCredential: string }).deviceCredential;
    for (let batch = 0; batch < (2 * PER_SERVER) / 10; batch += 1) {
      const volumes = Array.from({ length: 10 }, () => {
        const key = newKey();
        keys.push(key);
        return escrowPayload(randomKeyId(), [key], 'fixed').volumes[0];
      });
      const res = await fetch(`${servers[batch % 2]}/api/escrow/recovery-keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${credential}`, 'content-type': 'application/json' },
        body: JSON.stringify({ volumes }),
      });
      expect(res.status, await res.clone().text()).toBe(200);
    }
  }, 180_000);

  it(`discloses ${2 * PER_SERVER} keys through both at once; audit verify passes and every row is there`, async () => {
    const started = Date.now();
    const results = await Promise.all(
      keys.map(async (key, i) => {
        // Behind a load balancer: the trusted proxy (127.0.0.1) names a different client each time.
        const res = await fetch(
          `${servers[i % 2]}/v1.0/informationProtection/bitlocker/recoveryKeys/${key.keyId.toLowerCase()}?$select=key`,
          {
            headers: {
              authorization: `Bearer ${tokens[i % TOKENS]}`,
              'x-forwarded-for': `10.1.${i >> 8}.${i & 255}`,
            },
          },
        );
        return { status: res.status, body: (await res.json()) as { key?: string }, expected: key.password };
      }),
    );
    expect(results.filter((r) => r.status !== 200).map((r) => r.body)).toEqual([]);
    expect(results.every((r) => r.body.key === r.expected)).toBe(true);
    expect(Date.now() - started).toBeLessThan(60_000);

    const verify = await runBdevault(['audit', 'verify', '--database-url', database!.url], { env });
    expect(verify.code, verify.stderr + verify.stdout).toBe(0);

    const client = new pg.Client({ connectionString: database!.url });
    await client.connect();
    try {
      const disclosed = await client.query(
        "select count(*)::int as n, count(distinct seq)::int as seqs from audit_log where action = 'recovery-key.disclosed'",
      );
      expect(disclosed.rows[0]).toEqual({ n: 2 * PER_SERVER, seqs: 2 * PER_SERVER });
      const chain = await client.query(
        'select (select count(*)::int from audit_log) as rows, (select max(seq)::int from audit_log) as top, (select seq::int from audit_chain_head) as head',
      );
      // Gap-free: as many rows as sequence numbers, and the head points at the last one.
      expect(chain.rows[0].rows).toBe(chain.rows[0].top);
      expect(chain.rows[0].head).toBe(chain.rows[0].top);
    } finally {
      await client.end();
    }
  }, 120_000);
});
