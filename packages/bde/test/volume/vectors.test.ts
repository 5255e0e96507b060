// Published vectors from bde-format.md and independent oracles (OpenSSL's own XTS and CBC).
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crypto/crc32.js';
import { METHOD, decryptSectors } from '../../src/crypto/sector-cipher.js';
import { stretchKey } from '../../src/crypto/stretch-key.js';
import { isBdeError } from '../../src/errors.js';
import { recoveryPasswordToKey } from '../../src/recovery-password.js';
import { passwordInitialHash, recoveryPasswordInitialHash } from '../../src/volume/derive-key.js';
import { fvekFile, parseFvekFile } from '../../src/volume/fvek-file.js';
import { buildStartupKeyFile, parseStartupKeyFile } from '../../src/volume/startup-key-file.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();

describe('key derivation vectors (§3.5)', () => {
  it('recovery password → key → SHA-256 → stretched', () => {
    const rp = '235818-357951-253979-013365-241120-245575-342914-591910';
    expect(hex(recoveryPasswordToKey(rp))).toBe('be531d7f315abf04a0553557c67932d2');
    const initial = recoveryPasswordInitialHash(rp);
    expect(hex(initial)).toBe('fdd303817e456f7a4b64a7063ae00be752a46841e57da98caf8522f136cb3411');
    const salt = Buffer.from('2ba080989af9b50c203aaebd0b40d498', 'hex');
    expect(hex(stretchKey(initial, salt))).toBe(
      '1a39f926dab83e947fa85125b91e556e9ecc2bc5968924e03de234878d1fd4bd',
    );
  });

  it('password "anaconda" → double SHA-256 of UTF-16LE → stretched', () => {
    const initial = passwordInitialHash('anaconda');
    expect(hex(initial)).toBe('0d6cbf9e5d75af220d7ac3e9f35d05f56952608dd1dacb31774452c489eadc51');
    const salt = Buffer.from('8d7637cc5d885d5ff4f748dbc8440d2e', 'hex');
    expect(hex(stretchKey(initial, salt))).toBe(
      '37554410c6e0df5b4fe096259f4a21b847338d3e8d8d8d8c30012d1447cca957',
    );
  });

  it('non-ASCII passwords use real UTF-16LE: "£" is a3 00, "𝄞" a surrogate pair', () => {
    const poundBytes = Buffer.from('61006e00610063006f006e0064006100a300', 'hex');
    expect(hex(passwordInitialHash('anaconda£'))).toBe(hex(sha256(sha256(poundBytes))));
    const clef = Buffer.from([0x34, 0xd8, 0x1e, 0xdd]);
    expect(hex(passwordInitialHash('𝄞'))).toBe(hex(sha256(sha256(clef))));
    expect(hex(passwordInitialHash('anaconda£'))).not.toBe(hex(passwordInitialHash('anaconda')));
  });

  it('a malformed recovery password is a format error, not an unlock failure', () => {
    let err: unknown;
    try {
      recoveryPasswordInitialHash('235818-357951-253979-013365-241120-245575-342914-591911');
    } catch (e) {
      err = e;
    }
    expect(isBdeError(err, 'ERR_BDE_INVALID_PASSWORD_FORMAT')).toBe(true);
  });
});

describe('CRC-32', () => {
  it('is the IEEE/zlib CRC', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });
});

/** One sector at a time with OpenSSL's own modes: the oracle for the batched implementation. */
function oracle(method: number, key: Buffer, data: Buffer, first: number, ss: number): Buffer {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += ss) {
    const pos = first + off;
    const sector = data.subarray(off, off + ss);
    const le = Buffer.alloc(16);
    if (method === METHOD.XTS_AES_128 || method === METHOD.XTS_AES_256) {
      le.writeBigUInt64LE(BigInt(pos / ss));
      const d = createDecipheriv(method === METHOD.XTS_AES_128 ? 'aes-128-xts' : 'aes-256-xts', key, le);
      out.push(Buffer.concat([d.update(sector), d.final()]));
    } else {
      le.writeBigUInt64LE(BigInt(pos));
      const name = key.length === 16 ? '128' : '256';
      const e = createCipheriv(`aes-${name}-ecb`, key, null).setAutoPadding(false);
      const iv = e.update(le);
      const d = createDecipheriv(`aes-${name}-cbc`, key, iv).setAutoPadding(false);
      out.push(Buffer.concat([d.update(sector), d.final()]));
    }
  }
  return Buffer.concat(out);
}

describe('batched sector decryption matches OpenSSL sector by sector', () => {
  const cases: [string, number, number][] = [
    ['XTS-AES 128', METHOD.XTS_AES_128, 32],
    ['XTS-AES 256', METHOD.XTS_AES_256, 64],
    ['AES-CBC 128', METHOD.AES_128_CBC, 16],
    ['AES-CBC 256', METHOD.AES_256_CBC, 32],
  ];
  for (const [name, method, keyLength] of cases) {
    for (const ss of [512, 4096]) {
      it(`${name}, ${ss}-byte sectors, offsets above 2^32`, () => {
        const key = randomBytes(keyLength);
        const data = randomBytes(ss * 9);
        const first = 0x1_2345_6000 * (ss / 512);
        const got = decryptSectors({ method, fvek: key, sectorSize: ss }, data, first);
        expect(hex(got)).toBe(hex(oracle(method, key, data, first, ss)));
        // An unaligned input buffer gives the same result.
        const shifted = Buffer.alloc(data.length + 1).subarray(1);
        data.copy(shifted);
        expect(hex(decryptSectors({ method, fvek: key, sectorSize: ss }, shifted, first))).toBe(hex(got));
      });
    }
  }

  it('Elephant decryption differs from plain CBC (the diffuser and sector key are applied)', () => {
    const key = randomBytes(64);
    const data = randomBytes(1024);
    const elephant = decryptSectors(
      { method: METHOD.AES_128_CBC_ELEPHANT, fvek: key, sectorSize: 512 },
      data,
      0,
    );
    const cbc = decryptSectors(
      { method: METHOD.AES_128_CBC, fvek: key.subarray(0, 16), sectorSize: 512 },
      data,
      0,
    );
    expect(elephant.length).toBe(1024);
    expect(hex(elephant)).not.toBe(hex(cbc));
  });
});

describe('key files', () => {
  it('dislocker FVEK file: u16 LE method then the key padded to 64 bytes', () => {
    const key = randomBytes(32);
    const file = fvekFile(METHOD.XTS_AES_128, key);
    expect(file.length).toBe(66);
    expect(hex(file.subarray(0, 2))).toBe('0480');
    expect(hex(file.subarray(2, 34))).toBe(hex(key));
    expect(hex(file.subarray(34))).toBe('00'.repeat(32));
    expect(parseFvekFile(file)).toEqual({ method: METHOD.XTS_AES_128, fvek: new Uint8Array(key) });
  });

  it('.BEK build/parse round trip, Windows 10 and 11 forms', () => {
    const key = randomBytes(32);
    const protectorId = '4381F759-C4F8-4DE0-BB61-FC33A831BDA5';
    const win10 = buildStartupKeyFile({ protectorId, key });
    expect(win10.length).toBe(156);
    expect(parseStartupKeyFile(win10)).toEqual({ protectorId, key: new Uint8Array(key), volumeGuid: null });
    const volumeGuid = 'E8EA9756-9CC1-4CA2-B99D-FAE884F56150';
    const win11 = buildStartupKeyFile({ protectorId, key, volumeGuid });
    expect(win11.length).toBe(180);
    expect(parseStartupKeyFile(win11).volumeGuid).toBe(volumeGuid);
    for (const bad of [
      win10.subarray(0, 100),
      new Uint8Array(156),
      Buffer.concat([win10, Buffer.alloc(1)]),
    ]) {
      let err: unknown;
      try {
        parseStartupKeyFile(bad);
      } catch (e) {
        err = e;
      }
      expect(isBdeError(err, 'ERR_BDE_INVALID_ARGUMENT')).toBe(true);
    }
  });
});
