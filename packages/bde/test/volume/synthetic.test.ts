// Cases the images do not show, built by editing a real image's metadata in memory (CRC and SHA-256 redone).
import {
  type KeyObject,
  constants,
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../src/crypto/crc32.js';
import { stretchKey } from '../../src/crypto/stretch-key.js';
import { isBdeError } from '../../src/errors.js';
import { generateRecoveryPassword, recoveryPasswordToKey } from '../../src/recovery-password.js';
import { type BitLockerVolume, openVolume } from '../../src/volume/open-volume.js';
import { overlaySource } from '../../src/volume/source.js';
import { type UnlockedVolume, unlock } from '../../src/volume/unlock.js';
import { listRecoveryPasswords } from '../../src/volume/vmk-secrets.js';
import {
  blockEntries,
  ccmDatum,
  closeAll,
  datum,
  fx,
  keyDatum,
  openImage,
  plaintextSha256,
  publicKeyEntry,
  randomGuid,
  rebuildBlock,
  skipMessage,
  stretchDatum,
  vmkEntry,
  withBlock,
} from './helpers.js';
import { combinePfx, opensslPfx, opensslVersion } from '../crypto/pkcs12-helpers.js';

async function codeOf(promise: Promise<unknown>): Promise<{ code: string; message: string } | null> {
  return promise.then(
    () => null,
    (e: unknown) => (isBdeError(e) ? { code: e.code, message: e.message } : { code: String(e), message: '' }),
  );
}

describe.skipIf(!fx)('synthetic metadata cases on aes-xts-128', () => {
  if (!fx) console.warn(skipMessage);
  let volume: BitLockerVolume;
  let reference: UnlockedVolume;
  let rp: string;
  let sha: string;
  beforeAll(async () => {
    const opened = await openImage('aes-xts-128');
    volume = opened.volume;
    rp = opened.image.rp!;
    sha = opened.image.sha256!;
    reference = await unlock(volume, { kind: 'recovery-password', recoveryPassword: rp });
  });
  afterAll(closeAll);
  const vmk = () => ({ kind: 'vmk' as const, vmk: reference.vmk! });

  it('a damaged first (and second) metadata block: the next block with a valid CRC is used', async () => {
    const [b1, b2] = volume.info.metadataOffsets as [number, number];
    const flip = (offset: number) => ({ offset: offset + 200, bytes: Uint8Array.of(0xff, 0xee) });
    const one = await openVolume(overlaySource(volume.source, [flip(b1)]));
    expect(one.info.metadataBlockUsed).toBe(1);
    const unlocked = await unlock(one, vmk());
    expect(unlocked.metadataVerified).toBe(true);
    expect(await plaintextSha256(unlocked)).toBe(sha);
    const two = await openVolume(overlaySource(volume.source, [flip(b1), flip(b2)]));
    expect(two.info.metadataBlockUsed).toBe(2);
    expect((await unlock(two, vmk())).protector).toBeNull();
  }, 60_000);

  it('protectors in any order (FVEK first, recovery VMK before password VMK)', async () => {
    const { raw, entries } = await blockEntries(volume);
    const block = rebuildBlock(raw, [...entries].reverse(), reference.vmk!);
    const reordered = await openVolume(withBlock(volume, block));
    expect(reordered.info.protectors.map((p) => p.type)).toEqual(['recovery-password', 'password']);
    const unlocked = await unlock(reordered, { kind: 'recovery-password', recoveryPassword: rp });
    expect(unlocked.metadataVerified).toBe(true);
    expect(await plaintextSha256(unlocked)).toBe(sha);
  }, 60_000);

  it('several recovery protectors and a Windows 11 clear key (entry version 3)', async () => {
    const { raw, entries } = await blockEntries(volume);
    const vmkKey = reference.vmk!;
    const extraRp = generateRecoveryPassword();
    const extraId = randomGuid();
    const salt = randomBytes(16);
    const rk = recoveryPasswordToKey(extraRp);
    const stretched = stretchKey(createHash('sha256').update(rk).digest(), salt);
    const extra = vmkEntry(extraId, 0x0800, [
      stretchDatum(0x1000, salt, [ccmDatum(0x12, vmkKey, 0x1000, rk)]),
      ccmDatum(0, stretched, 0x2003, vmkKey),
    ]);
    const clearKey = randomBytes(32);
    const clearId = randomGuid();
    const clear = vmkEntry(
      clearId,
      0x0000,
      [keyDatum(0, 0x2000, clearKey), ccmDatum(0, clearKey, 0x2003, vmkKey)],
      3,
    );
    const block = rebuildBlock(raw, [extra, ...entries, clear], vmkKey);
    const edited = await openVolume(withBlock(volume, block));
    expect(edited.info.protectors.map((p) => p.type)).toEqual([
      'recovery-password',
      'password',
      'recovery-password',
      'clear-key',
    ]);
    expect(edited.info.protectors[3]).toMatchObject({ id: clearId, entryVersion: 3, typeName: 'Clear Key' });
    expect(edited.info.protectionStatus).toBe('Off (suspended: clear key)');

    // Without a key id both recovery protectors are tried: a MAC failure means "next one".
    const byOriginal = await unlock(edited, { kind: 'recovery-password', recoveryPassword: rp });
    expect(byOriginal.protector?.id).toBe(fx!.image('aes-xts-128').rpVmkGuid!.toUpperCase());
    const byExtra = await unlock(edited, {
      kind: 'recovery-password',
      recoveryPassword: extraRp,
      keyId: extraId.slice(0, 8),
    });
    expect(byExtra.protector?.id).toBe(extraId);
    const byClear = await unlock(edited, { kind: 'clear-key' });
    expect(byClear.protector?.id).toBe(clearId);
    expect(byClear.protector?.entryVersion).toBe(3);
    expect(Buffer.from(byClear.fvek).equals(Buffer.from(reference.fvek))).toBe(true);
    expect(
      listRecoveryPasswords(edited, byClear.vmk)
        .map((r) => r.recoveryPassword)
        .sort(),
    ).toEqual([extraRp, rp].sort());
  }, 60_000);

  it('a public-key (DRA) protector opens with its RSA private key (OAEP)', async () => {
    const { raw, entries } = await blockEntries(volume);
    const vmkKey = reference.vmk!;
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const n = Buffer.from(jwk.n!, 'base64url');
    const e = Buffer.from(jwk.e!, 'base64url');
    const blob = Buffer.alloc(24 + e.length + n.length);
    blob.write('RSA1', 0, 'latin1');
    blob.writeUInt32LE(2048, 4);
    blob.writeUInt32LE(e.length, 8);
    blob.writeUInt32LE(n.length, 12);
    e.copy(blob, 24);
    n.copy(blob, 24 + e.length);
    const thumbprint = randomBytes(20);
    const gsin = Buffer.alloc(37);
    gsin.write('gsin', 0, 'latin1');
    gsin.writeUInt32LE(37, 4);
    gsin.writeUInt32LE(1, 8);
    gsin.writeUInt32LE(20, 12);
    thumbprint.copy(gsin, 16);
    const intermediate = randomBytes(32);
    const asym = publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
      intermediate,
    );
    const useKey = Buffer.concat([
      Buffer.from([0x06, 0x20, 0, 0]),
      ccmDatum(0, vmkKey, 0x2006, intermediate),
    ]);
    const draId = randomGuid();
    const dra = vmkEntry(draId, 0x1000, [
      datum(0, 0xc, asym),
      datum(0xc, 0xd, blob),
      datum(0, 0xe, gsin),
      datum(0, 0x4, useKey),
      ccmDatum(0, intermediate, 0x2003, vmkKey),
    ]);
    const edited = await openVolume(withBlock(volume, rebuildBlock(raw, [...entries, dra], vmkKey)));
    const info = edited.info.protectors.find((p) => p.id === draId);
    expect(info).toMatchObject({
      typeName: 'Data Recovery Agent (Certificate Based)',
      certificate: { thumbprint: thumbprint.toString('hex'), certType: 1 },
    });
    const pem = privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
    const unlocked = await unlock(edited, { kind: 'certificate', privateKey: pem });
    expect(unlocked.protector?.id).toBe(draId);
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
      format: 'pem',
      type: 'pkcs8',
    });
    expect((await codeOf(unlock(edited, { kind: 'certificate', privateKey: other as string })))?.code).toBe(
      'ERR_BDE_UNLOCK_FAILED',
    );
  });

  it.skipIf(!opensslVersion)(
    'public-key protectors wrapped with PKCS#1 v1.5 open with PEM, DER and PFX credentials',
    async () => {
      const { raw, entries } = await blockEntries(volume);
      const vmkKey = reference.vmk!;
      const a = opensslPfx('dra pass');
      const b = opensslPfx('', ['-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1']);
      const keyA = createPrivateKey(a.keyPem);
      const keyB = createPrivateKey(b.keyPem);
      // A: CNG order, raw 32-byte key, DRA. B: CryptoAPI (reversed) order, KEY datum plaintext, user cert.
      const intermediateA = randomBytes(32);
      const intermediateB = randomBytes(32);
      const keyDatumB = Buffer.alloc(44);
      keyDatumB.writeUInt16LE(44, 0);
      keyDatumB.writeUInt16LE(1, 4);
      keyDatumB.writeUInt16LE(1, 6);
      keyDatumB.writeUInt16LE(0x2006, 8);
      intermediateB.copy(keyDatumB, 12);
      const v15 = (key: KeyObject, plain: Uint8Array) =>
        publicEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, plain);
      const idA = randomGuid();
      const idB = randomGuid();
      const entryA = publicKeyEntry(idA, vmkKey, {
        publicKey: createPublicKey(keyA),
        asym: v15(createPublicKey(keyA), intermediateA),
        intermediate: intermediateA,
        thumbprint: Buffer.from(a.thumbprint, 'hex'),
        certType: 1,
      });
      const entryB = publicKeyEntry(idB, vmkKey, {
        publicKey: createPublicKey(keyB),
        asym: v15(createPublicKey(keyB), keyDatumB).reverse(),
        intermediate: intermediateB,
        thumbprint: Buffer.from(b.thumbprint, 'hex'),
        certType: 2,
      });
      const edited = await openVolume(
        withBlock(volume, rebuildBlock(raw, [...entries, entryA, entryB], vmkKey)),
      );
      expect(edited.info.protectors.find((p) => p.id === idB)?.certificate?.thumbprint).toBe(b.thumbprint);
      const opens = async (credential: Parameters<typeof unlock>[1]) => {
        const unlocked = await unlock(edited, credential);
        expect(unlocked.metadataVerified).toBe(true);
        expect(Buffer.from(unlocked.fvek).equals(Buffer.from(reference.fvek))).toBe(true);
        return unlocked.protector?.id;
      };
      // PKCS#1 v1.5 through our BigInt RSA: PEM, DER PKCS#1 (B), PFX (A, modern; B, 3DES, empty password).
      expect(await opens({ kind: 'certificate', privateKey: a.keyPem })).toBe(idA);
      expect(
        await opens({ kind: 'certificate', privateKey: keyB.export({ format: 'der', type: 'pkcs1' }) }),
      ).toBe(idB);
      expect(await opens({ kind: 'certificate', privateKey: a.pfx, passphrase: 'dra pass' })).toBe(idA);
      expect(await opens({ kind: 'certificate', privateKey: b.pfx })).toBe(idB);
      // A PFX with several keys: an unrelated one first, then A; the thumbprint match picks A's protector.
      const c = opensslPfx('dra pass');
      expect(
        await opens({
          kind: 'certificate',
          privateKey: combinePfx([c.pfx, a.pfx], 'dra pass'),
          passphrase: 'dra pass',
        }),
      ).toBe(idA);
      // Every part of one PFX shares its password: the decoy for B's file is made with B's (empty) one.
      const bFirst = combinePfx([opensslPfx('').pfx, b.pfx], '');
      expect(await opens({ kind: 'certificate', privateKey: bFirst })).toBe(idB);
      // Wrong PFX password: a clear, typed error; a PFX of another key: the generic failure.
      expect(
        (await codeOf(unlock(edited, { kind: 'certificate', privateKey: a.pfx, passphrase: 'nope' })))?.code,
      ).toBe('ERR_BDE_BAD_PFX_PASSWORD');
      expect((await codeOf(unlock(edited, { kind: 'certificate', privateKey: a.pfx })))?.code).toBe(
        'ERR_BDE_BAD_PFX_PASSWORD',
      );
      expect(
        (await codeOf(unlock(edited, { kind: 'certificate', privateKey: c.pfx, passphrase: 'dra pass' })))
          ?.code,
      ).toBe('ERR_BDE_UNLOCK_FAILED');
      expect(
        (
          await codeOf(
            unlock(edited, { kind: 'certificate', privateKey: a.pfx.subarray(0, 500), passphrase: 'x' }),
          )
        )?.code,
      ).toMatch(/^ERR_BDE_(BAD_PFX|INVALID_ARGUMENT)$/);
    },
    60_000,
  );

  it('metadata altered with a recomputed CRC fails the SHA-256 validation', async () => {
    const raw = Buffer.from(await volume.source.read(volume.block.offset, 0x10000));
    const fveSize = raw.readUInt16LE(8) * 16;
    // Change one character of the description (entries start at 112), then fix only the CRC.
    raw[112 + 8] = raw[112 + 8]! ^ 0x01;
    raw.writeUInt32LE(crc32(raw.subarray(0, fveSize)), fveSize + 4);
    const tampered = await openVolume(withBlock(volume, raw));
    expect(tampered.info.description).not.toBe(volume.info.description);
    expect((await codeOf(unlock(tampered, vmk())))?.code).toBe('ERR_BDE_CORRUPT_METADATA');
  });

  it('every wrong credential ends in the same generic ERR_BDE_UNLOCK_FAILED', async () => {
    const failures = [
      await codeOf(
        unlock(volume, { kind: 'recovery-password', recoveryPassword: generateRecoveryPassword() }),
      ),
      await codeOf(unlock(volume, { kind: 'password', password: 'not-anaconda' })),
      await codeOf(unlock(volume, { kind: 'vmk', vmk: randomBytes(32) })),
      await codeOf(unlock(volume, { kind: 'vmk', vmk: randomBytes(5) })),
      await codeOf(unlock(volume, { kind: 'fvek', fvek: randomBytes(32) })),
      await codeOf(unlock(volume, { kind: 'fvek', fvek: randomBytes(16) })),
    ];
    for (const f of failures) expect(f).toEqual(failures[0]);
    expect(failures[0]?.code).toBe('ERR_BDE_UNLOCK_FAILED');
    expect(failures[0]?.message).toBe('Unlock failed: the credential does not open this volume');
    // Not authentication failures: reported as such.
    expect((await codeOf(unlock(volume, { kind: 'clear-key' })))?.code).toBe('ERR_BDE_NO_PROTECTOR');
    expect(
      (await codeOf(unlock(volume, { kind: 'recovery-password', recoveryPassword: '1234' })))?.code,
    ).toBe('ERR_BDE_INVALID_PASSWORD_FORMAT');
  }, 60_000);

  it('a volume in conversion: bytes at and above the encrypted size are plaintext; busy conversions refused', async () => {
    const { raw, entries } = await blockEntries(volume);
    const half = 50 * 1024 * 1024;
    const withHeader = (current: number, next: number, convertSize: number) => {
      const edited = Buffer.from(raw);
      edited.writeUInt16LE(current, 12);
      edited.writeUInt16LE(next, 14);
      edited.writeBigUInt64LE(BigInt(half), 16);
      edited.writeUInt32LE(convertSize, 24);
      return rebuildBlock(edited, entries, reference.vmk!);
    };
    const paused = await openVolume(withBlock(volume, withHeader(5, 4, 0)));
    expect(paused.info).toMatchObject({ encryptedSize: half, conversionStatus: 'Encryption Paused' });
    const unlocked = await unlock(paused, vmk());
    const above = await unlocked.readPlaintext(half - 512, 1024);
    const raw512 = await volume.source.read(half, 512);
    expect(Buffer.from(above.subarray(512)).equals(Buffer.from(raw512))).toBe(true);
    const full = await unlock(volume, vmk());
    expect(
      Buffer.from(above.subarray(0, 512)).equals(Buffer.from(await full.readPlaintext(half - 512, 512))),
    ).toBe(true);
    const busy = await openVolume(withBlock(volume, withHeader(2, 4, 1 << 20)));
    expect(busy.info.conversionStatus).toBe('Encryption in Progress');
    const busyUnlocked = await unlock(busy, vmk());
    expect((await codeOf(busyUnlocked.readPlaintext(0, 512)))?.code).toBe('ERR_BDE_UNSUPPORTED_STATE');
  });

  it('a raw FVEK opens the plaintext view', async () => {
    const byFvek = await unlock(volume, { kind: 'fvek', fvek: reference.fvek });
    const vbr = await byFvek.readPlaintext(0, 512);
    expect(Buffer.from(vbr.subarray(3, 11)).toString('latin1')).toBe('NTFS    ');
    expect(Buffer.from(vbr.subarray(72, 80)).reverse().toString('hex').toUpperCase()).toBe(
      fx!.image('aes-xts-128').uuid,
    );
    // Metadata areas read as zeros; an unaligned read agrees with the aligned one.
    const at = volume.info.metadataOffsets[0]!;
    expect((await byFvek.readPlaintext(at - 100, 300)).subarray(100).every((b) => b === 0)).toBe(true);
    const aligned = await byFvek.readPlaintext(0x2155000, 4096);
    const unaligned = await byFvek.readPlaintext(0x2155000 + 7, 1000);
    expect(Buffer.from(unaligned).equals(Buffer.from(aligned.subarray(7, 1007)))).toBe(true);
    expect(Buffer.from(aligned.subarray(0, 4)).toString('latin1')).toBe('FILE');
  });
});
