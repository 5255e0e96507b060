// Startup-key, smart-card and encrypt-on-write images: the protectors they really carry.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isBdeError } from '../../src/errors.js';
import { parseStartupKeyFile } from '../../src/volume/startup-key-file.js';
import { unlock } from '../../src/volume/unlock.js';
import { listRecoveryPasswords, rebuildStartupKeyFile } from '../../src/volume/vmk-secrets.js';
import { closeAll, fx, openImage, plaintextSha256, skipMessage } from './helpers.js';

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(isBdeError(err) ? err.code : err).toBe(code);
}

describe.skipIf(!fx)('startup-key images', () => {
  if (!fx) console.warn(skipMessage);
  afterAll(closeAll);
  for (const [name, bekName, volumeGuidInBek] of [
    ['aes-xts-128-startup-key', '4381F759-C4F8-4DE0-BB61-FC33A831BDA5.BEK', false],
    ['aes-xts-128-startup-key-win11', 'AA80A52B-9B66-47AE-B097-33F536FFBB07.BEK', true],
  ] as const) {
    it(`${name}: opens with the .BEK, the recovery password and the password "anaconda"`, async () => {
      const { image, volume } = await openImage(name);
      const bekBytes = readFileSync(join(fx!.dir, bekName));
      const bek = parseStartupKeyFile(bekBytes);
      expect(bek.protectorId).toBe(image.SK_VMK_GUID!.toUpperCase());
      expect(bek.volumeGuid).toBe(volumeGuidInBek ? image.guid!.toUpperCase() : null);
      const external = volume.info.protectors.find((p) => p.type === 'startup-key');
      expect(external?.typeName).toBe('External Key');
      expect(external?.id).toBe(bek.protectorId);

      const byBek = await unlock(volume, { kind: 'startup-key', bek: bekBytes });
      expect(byBek.protector?.id).toBe(bek.protectorId);
      expect(await plaintextSha256(byBek)).toBe(image.sha256);

      const byRp = await unlock(volume, { kind: 'recovery-password', recoveryPassword: image.rp! });
      expect(Buffer.from(byRp.fvek).equals(Buffer.from(byBek.fvek))).toBe(true);

      // images.conf leaves PW empty, but the images do carry a password protector for "anaconda".
      const byPw = await unlock(volume, { kind: 'password', password: 'anaconda' });
      expect(byPw.protector?.type).toBe('password');
      expect(Buffer.from(byPw.vmk!).equals(Buffer.from(byBek.vmk!))).toBe(true);

      const rebuilt = rebuildStartupKeyFile(volume, byPw.vmk);
      expect(rebuilt.fileName).toBe(bekName);
      expect(Buffer.from(parseStartupKeyFile(rebuilt.bytes).key).equals(Buffer.from(bek.key))).toBe(true);
      expect(rebuilt.bytes.length).toBe(180);
      const byRebuilt = await unlock(volume, { kind: 'startup-key', bek: rebuilt.bytes });
      expect(byRebuilt.protector?.id).toBe(bek.protectorId);
    }, 60_000);
  }

  it('a .BEK of another volume fails with the generic error', async () => {
    const { volume } = await openImage('aes-xts-128-startup-key');
    const other = readFileSync(join(fx!.dir, 'AA80A52B-9B66-47AE-B097-33F536FFBB07.BEK'));
    await expectCode(unlock(volume, { kind: 'startup-key', bek: other }), 'ERR_BDE_UNLOCK_FAILED');
  });
});

describe.skipIf(!fx)('smart-card image', () => {
  afterAll(closeAll);
  it('lists the public-key protector with its thumbprint and opens with the recovery password', async () => {
    const { image, volume } = await openImage('aes-xts-128-smart-card');
    const pk = volume.info.protectors.find((p) => p.type === 'public-key');
    expect(pk).toMatchObject({
      id: image.SC_VMK_GUID!.toUpperCase(),
      typeName: 'Public Key',
      certificate: { thumbprint: 'fb23e268a833a7f330d1b427cf2ef6c8dbe14e0f', certType: 2 },
    });
    const unlocked = await unlock(volume, { kind: 'recovery-password', recoveryPassword: image.rp! });
    expect(await plaintextSha256(unlocked)).toBe(image.sha256);
    expect(listRecoveryPasswords(volume, unlocked.vmk)).toEqual([
      {
        protectorId: image.rpVmkGuid!.toUpperCase(),
        recoveryPassword: '538329-080597-399190-348700-323345-161062-279807-230978',
      },
    ]);
  }, 60_000);
});

describe.skipIf(!fx)('encrypt-on-write images', () => {
  afterAll(closeAll);
  it('aes-xts-128-eow: info and unlock work, decryption refuses', async () => {
    const { image, volume } = await openImage('aes-xts-128-eow');
    expect(volume.info.encryptOnWrite).toBe(true);
    expect(volume.info.conversionStatus).toBe('Used Space Only Encrypted');
    const unlocked = await unlock(volume, { kind: 'recovery-password', recoveryPassword: image.rp! });
    expect(unlocked.protector?.id).toBe(image.rpVmkGuid!.toUpperCase());
    expect(unlocked.fvek.length).toBe(32);
    await expectCode(unlocked.readPlaintext(0, 512), 'ERR_BDE_UNSUPPORTED_EOW');
    await expectCode(unlocked.plaintextChunks().next(), 'ERR_BDE_UNSUPPORTED_EOW');
    const byPw = await unlock(volume, { kind: 'password', password: image.pw! });
    expect(listRecoveryPasswords(volume, byPw.vmk)[0]?.recoveryPassword).toBe(image.rp);
  }, 60_000);

  it('clearkey-aes-cbc-128: opens without a secret, reports protection off, refuses decryption', async () => {
    const { image, volume } = await openImage('clearkey-aes-cbc-128');
    expect(volume.info.encryptOnWrite).toBe(true);
    expect(volume.info.protectionStatus).toBe('Off (suspended: clear key)');
    const unlocked = await unlock(volume, { kind: 'clear-key' });
    expect(unlocked.protector?.typeName).toBe('Clear Key');
    expect(listRecoveryPasswords(volume, unlocked.vmk)[0]?.recoveryPassword).toBe(image.rp);
    await expectCode(unlocked.readPlaintext(0, 512), 'ERR_BDE_UNSUPPORTED_EOW');
    // The encrypted header copy decrypts to the NTFS boot sector with the serial from images.conf.
    const { decryptSectors } = await import('../../src/crypto/sector-cipher.js');
    const at = volume.info.volumeHeader.offset;
    const vbr = decryptSectors(
      { method: unlocked.method, fvek: unlocked.fvek, sectorSize: 512 },
      await volume.source.read(at, 512),
      at,
    );
    expect(Buffer.from(vbr.subarray(3, 11)).toString('latin1')).toBe('NTFS    ');
    expect(Buffer.from(vbr.subarray(72, 80)).reverse().toString('hex').toUpperCase()).toBe(image.uuid);
  }, 60_000);
});
