// Unpacks the real BitLocker images once per test run (not once per test file) and removes them
// afterwards; test workers find them through BDEVAULT_BITLK_DIR (see packages/bde/test/fixtures.ts).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bitlkArchivePath } from './packages/bde/test/fixtures.js';

export default function setup(): (() => void) | undefined {
  const archive = bitlkArchivePath();
  if (!archive || process.env.BDEVAULT_BITLK_DIR) return undefined;
  const root = mkdtempSync(join(tmpdir(), 'bdevault-bitlk-'));
  execFileSync('tar', ['-xJf', archive, '-C', root, '--sparse']);
  process.env.BDEVAULT_BITLK_DIR = join(root, 'bitlk-images');
  return () => {
    rmSync(root, { recursive: true, force: true });
    delete process.env.BDEVAULT_BITLK_DIR;
  };
}
