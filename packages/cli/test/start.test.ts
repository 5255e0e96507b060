// What `npm start` runs after its build: the built CLI serving on the embedded SQLite default.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const builtCli = fileURLToPath(new URL('../dist/main.js', import.meta.url));
const built = existsSync(builtCli);
if (!built)
  console.warn(
    '[start] packages/cli/dist is not built (run npm run build): the built-server check is skipped',
  );

describe.skipIf(!built)('the built server (npm start)', () => {
  it('comes up on SQLite in a fresh data directory and answers /healthz and the portal', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bdevault-start-'));
    const child = spawn(process.execPath, [builtCli, 'serve', '--port', '0', '--log-level', 'silent'], {
      env: { ...process.env, BDEVAULT_DATA_DIR: dataDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let output = '';
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "listening" line: ${output}`)), 60_000);
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          output += chunk;
          const m = /listening on (\S+)/.exec(output);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${output}`)));
      });
      expect(output).toContain('one-time password');
      expect(existsSync(join(dataDir, 'bdevault.sqlite'))).toBe(true);
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      const portal = await fetch(`${url}/`);
      expect([200, 503]).toContain(portal.status);
      expect(portal.headers.get('content-security-policy')).toContain("script-src 'self'");
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
