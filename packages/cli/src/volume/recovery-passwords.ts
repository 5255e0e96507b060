/** `bdevault volume recovery-passwords`: every recovery password of a volume, recovered with the VMK. */
import type { Command } from 'commander';
import { listRecoveryPasswords } from '@bdevault/bde';
import { addCredentialOptions, checkCredentialFlags, type CredentialFlags } from './credentials.js';
import { unlockForVmk, withVolume } from './open.js';

export function registerRecoveryPasswords(volume: Command): void {
  addCredentialOptions(
    volume
      .command('recovery-passwords')
      .summary('print every recovery password of the volume')
      .description(
        'Unlock with any protector and print every recovery password of the volume with its protector id ' +
          '(manage-bde -protectors -get -Type RecoveryPassword). The passwords go to stdout only.',
      )
      .argument('<image>', 'BitLocker image file or block device')
      .option('--json', 'print JSON: { volumeGuid, recoveryPasswords: [{ protectorId, recoveryPassword }] }'),
  ).action(async (image: string, flags: CredentialFlags & { json?: boolean }) => {
    checkCredentialFlags(flags);
    await withVolume(image, async (volume) => {
      const unlocked = await unlockForVmk(volume, flags);
      const list = listRecoveryPasswords(volume, unlocked.vmk);
      if (flags.json) {
        const result = { volumeGuid: volume.info.volumeGuid, recoveryPasswords: list };
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      if (list.length === 0) {
        process.stdout.write('No recovery password protector on this volume.\n');
        return;
      }
      const lines = [`Volume {${volume.info.volumeGuid}}`, 'Numerical Password protectors', ''];
      for (const p of list) {
        lines.push(
          '    Numerical Password:',
          `      ID: {${p.protectorId}}`,
          '      Password:',
          `        ${p.recoveryPassword}`,
          '',
        );
      }
      process.stdout.write(lines.join('\n'));
    });
  });
}
