/** `bdevault volume rebuild-bek`: recreates a lost startup key (.BEK) file from the VMK. */
import { join } from 'node:path';
import type { Command } from 'commander';
import { parseKeyId, rebuildStartupKeyFile } from '@bdevault/bde';
import { addCredentialOptions, checkCredentialFlags, type CredentialFlags } from './credentials.js';
import { unlockForVmk, withVolume } from './open.js';
import { writeSafely } from './safe-write.js';

interface RebuildBekFlags extends CredentialFlags {
  protector?: string;
  force?: boolean;
}

export function registerRebuildBek(volume: Command): void {
  addCredentialOptions(
    volume
      .command('rebuild-bek')
      .summary('recreate a startup key (.BEK) file')
      .description(
        'Unlock with another protector and write the startup key file {GUID}.BEK of an External Key ' +
          'protector into a folder (mode 0600), as `manage-bde -protectors -get -sek` would save it.',
      )
      .argument('<image>', 'BitLocker image file or block device')
      .argument('<dir>', 'the folder to write {GUID}.BEK into (a USB stick for preboot use)')
      .option('--protector <id>', 'which External Key protector, when there are several')
      .option('--force', 'overwrite an existing .BEK file'),
  ).action(async (image: string, dir: string, flags: RebuildBekFlags) => {
    checkCredentialFlags(flags);
    await withVolume(image, async (v) => {
      const protectorId = flags.protector === undefined ? undefined : parseKeyId(flags.protector);
      const unlocked = await unlockForVmk(v, flags);
      const bek = rebuildStartupKeyFile(v, unlocked.vmk, protectorId);
      const path = join(dir, bek.fileName);
      await writeSafely(path, { force: flags.force ?? false, mode: 0o600 }, async (handle) => {
        await handle.writeFile(bek.bytes);
      });
      process.stdout.write(
        `Wrote the startup key of External Key protector {${bek.protectorId}} to ${path}\n`,
      );
    });
  });
}
