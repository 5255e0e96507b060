/** Test helpers: PFX files made by the openssl CLI at test time, and a multi-key PFX assembled from them. */
import { execFileSync } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { childrenOf, decodeDer, octets } from '../../src/crypto/asn1.js';
import { pkcs12Kdf } from '../../src/crypto/pkcs12.js';

/** The openssl CLI version line, or null when there is none (the PFX tests are then skipped). */
export const opensslVersion: string | null = (() => {
  try {
    return execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim();
  } catch {
    return null;
  }
})();

/** True when `openssl pkcs12 -legacy` works (OpenSSL 3 with its legacy provider installed). */
export function opensslHasLegacy(): boolean {
  try {
    execFileSync('openssl', ['list', '-providers', '-provider', 'legacy'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

export interface GeneratedPfx {
  pfx: Buffer;
  keyPem: string;
  certDer: Buffer;
  /** SHA-1 of the DER certificate, as openssl computes it, lower-case hex. */
  thumbprint: string;
}

/**
 * A fresh RSA key and self-signed certificate, exported with `openssl pkcs12 -export` and the
 * given extra arguments (cipher choices) and password.
 */
export function opensslPfx(password: string, exportArgs: string[] = [], bits = 2048): GeneratedPfx {
  const dir = mkdtempSync(join(tmpdir(), 'bde-pfx-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    const pfx = join(dir, 'out.pfx');
    const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
    run(
      ['req', '-x509', '-newkey', `rsa:${bits}`, '-nodes', '-keyout', key, '-out', cert].concat([
        '-subj',
        '/CN=bdevault test DRA',
        '-days',
        '2',
      ]),
    );
    run([
      'pkcs12',
      '-export',
      '-inkey',
      key,
      '-in',
      cert,
      '-out',
      pfx,
      '-passout',
      `pass:${password}`,
      ...exportArgs,
    ]);
    const fingerprint = run(['x509', '-in', cert, '-noout', '-fingerprint', '-sha1']).toString('latin1');
    const certDer = run(['x509', '-in', cert, '-outform', 'DER']);
    return {
      pfx: readFileSync(pfx),
      keyPem: readFileSync(key, 'latin1'),
      certDer,
      thumbprint: fingerprint.split('=')[1]!.trim().replace(/:/g, '').toLowerCase(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A DER TLV. */
export function tlv(tag: number, ...contents: Uint8Array[]): Buffer {
  const body = Buffer.concat(contents);
  const n = body.length;
  const length =
    n < 0x80
      ? Buffer.of(n)
      : n < 0x100
        ? Buffer.of(0x81, n)
        : n < 0x10000
          ? Buffer.of(0x82, n >> 8, n & 0xff)
          : Buffer.of(0x83, n >> 16, (n >> 8) & 0xff, n & 0xff);
  return Buffer.concat([Buffer.of(tag), length, body]);
}

const OID_DATA = Buffer.from('06092a864886f70d010701', 'hex');
const OID_SHA256 = Buffer.from('0609608648016503040201', 'hex');

/** The ContentInfo elements of a PFX's AuthenticatedSafe, as raw DER. */
export function authSafeParts(pfx: Uint8Array): Buffer[] {
  const [, authSafe] = childrenOf(decodeDer(pfx, 'ERR_BDE_BAD_PFX'));
  const [, wrapped] = childrenOf(authSafe!);
  const data = octets(childrenOf(wrapped!)[0]!);
  return childrenOf(decodeDer(data, 'ERR_BDE_BAD_PFX')).map((n) => Buffer.from(n.raw));
}

/**
 * One PFX holding the bags of several (all encrypted under the same password), with a fresh
 * HMAC-SHA256 MAC: openssl itself only exports one key per file.
 */
export function combinePfx(pfxs: Uint8Array[], password: string): Buffer {
  const authSafe = tlv(0x30, ...pfxs.flatMap(authSafeParts));
  const salt = randomBytes(8);
  const utf16 = Buffer.from(password, 'utf16le');
  utf16.swap16();
  const macKey = pkcs12Kdf(
    { name: 'sha256', size: 32, block: 64 },
    Buffer.concat([utf16, Buffer.alloc(2)]),
    salt,
    3,
    2048,
    32,
  );
  const mac = createHmac('sha256', macKey).update(authSafe).digest();
  const macData = tlv(
    0x30,
    tlv(0x30, tlv(0x30, OID_SHA256, Buffer.of(5, 0)), tlv(0x04, mac)),
    tlv(0x04, salt),
    tlv(0x02, Buffer.of(0x08, 0x00)),
  );
  const contentInfo = tlv(0x30, OID_DATA, tlv(0xa0, tlv(0x04, authSafe)));
  return tlv(0x30, tlv(0x02, Buffer.of(3)), contentInfo, macData);
}

export const sha1Hex = (bytes: Uint8Array): string => createHash('sha1').update(bytes).digest('hex');
