/**
 * The real BitLocker images of ../shared/fixtures/bitlk, unpacked once per test process into a
 * temporary folder. Where the archive is absent, `bitlkFixtures()` returns null and suites skip,
 * saying so.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BitlkImage {
  /** Section name in images.conf, also the image's file name without `.img`. */
  name: string;
  path: string;
  cipher?: string;
  guid?: string;
  pw?: string;
  pwVmkGuid?: string;
  rp?: string;
  rpVmkGuid?: string;
  uuid?: string;
  sha256?: string;
  [extra: string]: string | undefined;
}

export interface BitlkFixtures {
  /** Shared by every test file of a run: read from it, never write into it. */
  dir: string;
  images: BitlkImage[];
  image(name: string): BitlkImage;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const defaultArchive = resolve(here, '../../../../shared/fixtures/bitlk/bitlk-images.tar.xz');

/** Where the archive is: BDEVAULT_BITLK_ARCHIVE, else ../shared beside the project. */
export function bitlkArchivePath(): string | null {
  const path = process.env.BDEVAULT_BITLK_ARCHIVE ?? defaultArchive;
  return existsSync(path) ? path : null;
}

const keyNames: Record<string, string> = {
  CIPHER: 'cipher',
  GUID: 'guid',
  PW: 'pw',
  PW_VMK_GUID: 'pwVmkGuid',
  RP: 'rp',
  RP_VMK_GUID: 'rpVmkGuid',
  UUID: 'uuid',
  SHA256SUM: 'sha256',
};

/** Parses images.conf (INI-like: `[section]` then `KEY=value`). */
export function parseImagesConf(text: string, dir: string): BitlkImage[] {
  const images: BitlkImage[] = [];
  let current: BitlkImage | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      const name = section[1]!;
      current = { name, path: join(dir, `${name}.img`) };
      images.push(current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || !current) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    current[keyNames[key] ?? key] = value === '' ? undefined : value;
  }
  return images;
}

let cached: BitlkFixtures | null | undefined;

/** The unpacked images (sparse: tens of KiB on disk), or null when the archive is absent. */
export function bitlkFixtures(): BitlkFixtures | null {
  if (cached !== undefined) return cached;
  const archive = bitlkArchivePath();
  if (!archive) {
    console.warn(
      `[bitlk fixtures] archive not found (${defaultArchive}); suites using the real images are skipped`,
    );
    cached = null;
    return cached;
  }
  // Unpacked once per run by vitest.global-setup.ts; a process outside vitest unpacks its own copy.
  let dir = process.env.BDEVAULT_BITLK_DIR;
  if (!dir || !existsSync(join(dir, 'images.conf'))) {
    const root = mkdtempSync(join(tmpdir(), 'bdevault-bitlk-'));
    execFileSync('tar', ['-xJf', archive, '-C', root, '--sparse']);
    dir = join(root, 'bitlk-images');
    process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  }
  const images = parseImagesConf(readFileSync(join(dir, 'images.conf'), 'utf8'), dir);
  cached = {
    dir,
    images,
    image(name: string) {
      const found = images.find((i) => i.name === name || i.name === `bitlk-${name}`);
      if (!found) throw new Error(`no image ${name} in images.conf`);
      return found;
    },
  };
  return cached;
}
