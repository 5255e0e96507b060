// Real XTS-AES images (512 and 4K sectors, To Go, newer entries): unlock with RP and password, hash the whole plaintext.
import { afterAll, describe, expect, it } from 'vitest';
import { unlock } from '../../src/volume/unlock.js';
import { listRecoveryPasswords } from '../../src/volume/vmk-secrets.js';
import { closeAll, fx, openImage, plaintextSha256, skipMessage } from './helpers.js';

const names = ['aes-xts-128', 'aes-xts-256', 'aes-xts-128-4k', 'togo-aes-xts-128', 'aes-xts-128-new-entry'];

describe.skipIf(!fx)('real XTS images decrypt to the reference SHA-256', () => {
  if (!fx) console.warn(skipMessage);
  afterAll(closeAll);
  for (const name of names) {
    it(`${name}: recovery password and password`, async () => {
      const { image, volume } = await openImage(name);
      expect(volume.info.volumeGuid).toBe(image.guid!.toUpperCase());
      const byRp = await unlock(volume, {
        kind: 'recovery-password',
        recoveryPassword: image.rp!,
        keyId: image.rpVmkGuid,
      });
      expect(byRp.protector?.id).toBe(image.rpVmkGuid!.toUpperCase());
      expect(byRp.metadataVerified).toBe(true);
      expect(await plaintextSha256(byRp)).toBe(image.sha256);
      const byPw = await unlock(volume, { kind: 'password', password: image.pw! });
      expect(byPw.protector?.id).toBe(image.pwVmkGuid!.toUpperCase());
      expect(await plaintextSha256(byPw)).toBe(image.sha256);
      expect(listRecoveryPasswords(volume, byPw.vmk)).toEqual([
        { protectorId: image.rpVmkGuid!.toUpperCase(), recoveryPassword: image.rp },
      ]);
    }, 60_000);
  }
});
