// PKCS#12 reading: files exported by the openssl CLI at test time (modern and legacy), wrong passwords, fuzzing.
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { MAX_DEPTH, decodeDer, oid } from '../../src/crypto/asn1.js';
import { looksLikePkcs12, pkcs12Kdf, readPkcs12 } from '../../src/crypto/pkcs12.js';
import { BdeError, isBdeError } from '../../src/errors.js';
import { combinePfx, opensslHasLegacy, opensslPfx, opensslVersion, sha1Hex, tlv } from './pkcs12-helpers.js';

const SHA1 = { name: 'sha1', size: 20, block: 64 };
const SHA256 = { name: 'sha256', size: 32, block: 64 };
const bmp = (s: string) => {
  const b = Buffer.from(s, 'utf16le');
  b.swap16();
  return Buffer.concat([b, Buffer.alloc(2)]);
};
const spki = (key: Parameters<typeof createPublicKey>[0]) =>
  createPublicKey(key).export({ format: 'der', type: 'spki' }).toString('hex');

/** The BdeError code `fn` throws; fails the test on any other kind of throw. */
function codeOf(fn: () => unknown): string | null {
  try {
    fn();
    return null;
  } catch (err) {
    if (!(err instanceof BdeError)) throw new Error(`not a BdeError: ${String(err)}`);
    return err.code;
  }
}

describe('pkcs12Kdf (RFC 7292 appendix B.2)', () => {
  it('matches known vectors (BouncyCastle "smeg"; OpenSSL PKCS12KDF for a multi-block SHA-256 output)', () => {
    const salt = Buffer.from('0a58cf64530d823f', 'hex');
    expect(pkcs12Kdf(SHA1, bmp('smeg'), salt, 1, 1, 24).toString('hex')).toBe(
      '8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3',
    );
    expect(pkcs12Kdf(SHA1, bmp('smeg'), salt, 2, 1, 8).toString('hex')).toBe('79993dfe048d3b76');
    // `openssl kdf -keylen 100 -kdfopt digest:SHA256 -kdfopt hexpass:<bmp smeg> ... -kdfopt iter:1000 -kdfopt id:3 PKCS12KDF`
    expect(pkcs12Kdf(SHA256, bmp('smeg'), salt, 3, 1000, 100).toString('hex')).toBe(
      '35ac16a454d608fb10c8d7c6338ca85818587aed0ff771fd265957e412c2c03c26ad8fa213a9fcf342d684dae98b66ee' +
        '87e7ea6d3179303c84a70f3d5dcc8e679924fb48ee745d1e14f752512a1c12d30cb1b47a5886089e2e10bf1eeadf4a45807fc087',
    );
  });

  it('refuses absurd iteration counts with a BdeError', () => {
    expect(codeOf(() => pkcs12Kdf(SHA1, bmp('x'), Buffer.alloc(8), 1, 0, 24))).toBe('ERR_BDE_BAD_PFX');
    expect(codeOf(() => pkcs12Kdf(SHA1, bmp('x'), Buffer.alloc(8), 1, 1e9, 24))).toBe('ERR_BDE_BAD_PFX');
  });
});

describe('asn1 reader bounds', () => {
  it('reads OIDs and refuses deep nesting, bad lengths and trailing bytes with BdeErrors', () => {
    expect(oid(decodeDer(Buffer.from('06092a864886f70d010701', 'hex'), 'ERR_BDE_BAD_PFX'))).toBe(
      '1.2.840.113549.1.7.1',
    );
    // Indefinite-length nesting deeper than the limit.
    const deep = Buffer.concat([
      Buffer.alloc((MAX_DEPTH + 2) * 2, 0).map((_, i) => (i % 2 ? 0x80 : 0x30)),
      Buffer.alloc((MAX_DEPTH + 2) * 2),
    ]);
    expect(codeOf(() => decodeDer(deep, 'ERR_BDE_BAD_PFX'))).toBe('ERR_BDE_BAD_PFX');
    expect(codeOf(() => decodeDer(Buffer.from('3005020103', 'hex'), 'ERR_BDE_BAD_PFX'))).toBe(
      'ERR_BDE_BAD_PFX',
    );
    expect(codeOf(() => decodeDer(Buffer.from('02010300', 'hex'), 'ERR_BDE_BAD_PFX'))).toBe(
      'ERR_BDE_BAD_PFX',
    );
    expect(codeOf(() => decodeDer(Buffer.from('3085ffffffffff', 'hex'), 'ERR_BDE_BAD_PFX'))).toBe(
      'ERR_BDE_BAD_PFX',
    );
    // BER indefinite length within the limit is fine.
    expect(decodeDer(Buffer.from('30800201030000', 'hex'), 'ERR_BDE_BAD_PFX').content).toHaveLength(3);
  });
});

describe.skipIf(!opensslVersion)(`readPkcs12 on files from ${opensslVersion ?? 'openssl (missing)'}`, () => {
  it('modern export (PBES2 / PBKDF2-SHA256 / AES-256-CBC, MAC SHA-256): key, certificate, thumbprint', () => {
    const made = opensslPfx('correct horse');
    expect(looksLikePkcs12(made.pfx)).toBe(true);
    const pfx = readPkcs12(made.pfx, 'correct horse');
    expect(pfx.macVerified).toBe(true);
    expect(pfx.skipped).toEqual([]);
    expect(pfx.keys).toHaveLength(1);
    expect(pfx.certificates).toHaveLength(1);
    const [key] = pfx.keys;
    expect(spki(key!.key)).toBe(spki(createPrivateKey(made.keyPem)));
    expect(key!.certificate?.thumbprint).toBe(made.thumbprint);
    expect(pfx.certificates[0]!.thumbprint).toBe(sha1Hex(made.certDer));
    expect(Buffer.from(pfx.certificates[0]!.der).equals(made.certDer)).toBe(true);
    expect(key!.localKeyId).toBe(pfx.certificates[0]!.localKeyId);
    expect(key!.localKeyId).not.toBeNull();
  });

  it('legacy-style export (PBE-SHA1-3DES for key and certificates, MAC SHA-1)', () => {
    const made = opensslPfx('pw', [
      '-keypbe',
      'PBE-SHA1-3DES',
      '-certpbe',
      'PBE-SHA1-3DES',
      '-macalg',
      'sha1',
    ]);
    const pfx = readPkcs12(made.pfx, 'pw');
    expect(spki(pfx.keys[0]!.key)).toBe(spki(createPrivateKey(made.keyPem)));
    expect(pfx.keys[0]!.certificate?.thumbprint).toBe(made.thumbprint);
    expect(pfx.skipped).toEqual([]);
  });

  it('other PBES2 choices: AES-128, 3DES, PBKDF2-SHA1 MAC SHA-1; certificates unencrypted', () => {
    for (const args of [
      ['-keypbe', 'aes-128-cbc', '-certpbe', 'aes-192-cbc'],
      ['-keypbe', 'des-ede3-cbc', '-certpbe', 'NONE', '-macalg', 'sha1'],
    ]) {
      const made = opensslPfx('pw', args);
      const pfx = readPkcs12(made.pfx, 'pw');
      expect(spki(pfx.keys[0]!.key), args.join(' ')).toBe(spki(createPrivateKey(made.keyPem)));
      expect(pfx.keys[0]!.certificate?.thumbprint, args.join(' ')).toBe(made.thumbprint);
    }
  });

  it.skipIf(!opensslHasLegacy())('-legacy export (RC2-40 certificates): the key is read anyway', () => {
    const made = opensslPfx('pw', ['-legacy']);
    const pfx = readPkcs12(made.pfx, 'pw');
    expect(spki(pfx.keys[0]!.key)).toBe(spki(createPrivateKey(made.keyPem)));
    // Node's OpenSSL has no RC2 in its default provider: the certificate part is reported skipped.
    if (pfx.certificates.length === 0) {
      expect(pfx.skipped.join()).toMatch(/rc2-40-cbc/);
      expect(pfx.keys[0]!.certificate).toBeNull();
    } else {
      expect(pfx.keys[0]!.certificate?.thumbprint).toBe(made.thumbprint);
    }
  });

  it('empty passwords (modern and 3DES), and non-ASCII passwords', () => {
    for (const args of [[], ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']]) {
      const made = opensslPfx('', args);
      expect(readPkcs12(made.pfx).keys[0]!.certificate?.thumbprint).toBe(made.thumbprint);
      expect(readPkcs12(made.pfx, '').keys).toHaveLength(1);
      expect(codeOf(() => readPkcs12(made.pfx, 'x'))).toBe('ERR_BDE_BAD_PFX_PASSWORD');
    }
    const unicode = 'pässwörd-€-😀';
    for (const args of [[], ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES']]) {
      const made = opensslPfx(unicode, args);
      expect(readPkcs12(made.pfx, unicode).keys[0]!.certificate?.thumbprint).toBe(made.thumbprint);
    }
  });

  it('a wrong or missing password is ERR_BDE_BAD_PFX_PASSWORD, with a MAC and without one', () => {
    const modern = opensslPfx('right');
    expect(codeOf(() => readPkcs12(modern.pfx, 'wrong'))).toBe('ERR_BDE_BAD_PFX_PASSWORD');
    expect(codeOf(() => readPkcs12(modern.pfx))).toBe('ERR_BDE_BAD_PFX_PASSWORD');
    // -nomac: the only password check left is the decryption itself.
    for (const args of [['-nomac'], ['-nomac', '-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES']]) {
      const made = opensslPfx('right', args);
      const pfx = readPkcs12(made.pfx, 'right');
      expect(pfx.macVerified).toBe(false);
      expect(pfx.keys[0]!.certificate?.thumbprint).toBe(made.thumbprint);
      expect(
        codeOf(() => readPkcs12(made.pfx, 'wrong')),
        args.join(' '),
      ).toBe('ERR_BDE_BAD_PFX_PASSWORD');
    }
  });

  it('several keys in one file: each paired with its own certificate', () => {
    const a = opensslPfx('pw');
    const b = opensslPfx('pw', ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES']);
    const pfx = readPkcs12(combinePfx([a.pfx, b.pfx], 'pw'), 'pw');
    expect(pfx.keys.map((k) => k.certificate?.thumbprint)).toEqual([a.thumbprint, b.thumbprint]);
    expect(spki(pfx.keys[1]!.key)).toBe(spki(createPrivateKey(b.keyPem)));
    expect(codeOf(() => readPkcs12(combinePfx([a.pfx], 'pw'), 'nope'))).toBe('ERR_BDE_BAD_PFX_PASSWORD');
  });

  it('shape detection tells PFX from PKCS#8, PKCS#1 and PEM', () => {
    const made = opensslPfx('pw');
    const key = createPrivateKey(made.keyPem);
    expect(looksLikePkcs12(key.export({ format: 'der', type: 'pkcs8' }))).toBe(false);
    expect(looksLikePkcs12(key.export({ format: 'der', type: 'pkcs1' }))).toBe(false);
    expect(looksLikePkcs12(Buffer.from(made.keyPem))).toBe(false);
    expect(looksLikePkcs12(made.certDer)).toBe(false);
    expect(looksLikePkcs12(new Uint8Array(0))).toBe(false);
    expect(looksLikePkcs12(made.pfx.subarray(0, 100))).toBe(false);
  });

  it('malformed and truncated files only ever throw BdeError (fuzz)', () => {
    const withMac = opensslPfx('pw').pfx;
    // Without a MAC, mutations reach the bag parsers and the decryption instead of stopping at the MAC.
    const noMac = opensslPfx('pw', ['-nomac', '-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES']).pfx;
    const noMacModern = opensslPfx('pw', ['-nomac']).pfx;
    const codes = new Map<string, number>();
    const tally = (code: string | null) => codes.set(String(code), (codes.get(String(code)) ?? 0) + 1);
    const seeds = [withMac, noMac, noMacModern];
    for (let round = 0; round < 1500; round++) {
      const seed = seeds[round % seeds.length]!;
      const bytes = Buffer.from(seed);
      const r = randomBytes(8);
      let input: Buffer;
      switch (round % 5) {
        case 0:
          input = bytes.subarray(0, r.readUInt32LE(0) % bytes.length);
          break;
        case 1:
          for (let i = 0; i < 1 + (r[4]! % 4); i++) {
            const at = randomBytes(4).readUInt32LE(0) % bytes.length;
            bytes[at] = bytes[at]! ^ (1 << (r[i]! % 8));
          }
          input = bytes;
          break;
        case 2: {
          // Clobber a byte in the first 200 (lengths and tags live there).
          bytes[r.readUInt16LE(0) % Math.min(200, bytes.length)] = r[2]!;
          input = bytes;
          break;
        }
        case 3: {
          const at = r.readUInt32LE(0) % bytes.length;
          input = Buffer.concat([bytes.subarray(0, at), randomBytes(1 + (r[4]! % 8)), bytes.subarray(at)]);
          break;
        }
        default:
          input = randomBytes(r[0]! + 1);
          if (round % 2) input[0] = 0x30;
      }
      tally(codeOf(() => readPkcs12(input, 'pw')));
      expect(typeof looksLikePkcs12(input)).toBe('boolean');
    }
    // Hand-made oddities: version 2, signedData authSafe, empty bags, an envelopedData part.
    const odd = [
      tlv(0x30, tlv(0x02, Buffer.of(2))),
      tlv(0x30, tlv(0x02, Buffer.of(3)), tlv(0x30, Buffer.from('06092a864886f70d010702', 'hex'))),
      tlv(
        0x30,
        tlv(0x02, Buffer.of(3)),
        tlv(0x30, Buffer.from('06092a864886f70d010701', 'hex'), tlv(0xa0, tlv(0x04))),
      ),
      tlv(
        0x30,
        tlv(0x02, Buffer.of(3)),
        tlv(0x30, Buffer.from('06092a864886f70d010701', 'hex'), tlv(0xa0, tlv(0x04, tlv(0x30, tlv(0x30))))),
      ),
    ];
    for (const input of odd) expect(codeOf(() => readPkcs12(input, 'pw'))).toMatch(/^ERR_BDE_BAD_PFX/);
    expect(codes.get('null') ?? 0).toBeLessThan(1500);
    expect(isBdeError(new BdeError('ERR_BDE_BAD_PFX', 'x'), 'ERR_BDE_BAD_PFX')).toBe(true);
  }, 120_000);
});
