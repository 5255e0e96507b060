/** `bdevault volume export-fvek`: the full-volume encryption key for dislocker (`-K`) or raw, mode 0600. */
import type { Command } from 'commander';
import { fvekFile } from '@bdevault/bde';
import { CliError } from '../run-cli.js';
import { addCredentialOptions, checkCredentialFlags, type CredentialFlags } from './credentials.js';
import { protectorLabel, unlockWithFlags, withVolume } from './open.js';
import { checkOutput, writeSafely } from './safe-write.js';

interface ExportFvekFlags extends CredentialFlags {
  format: string;
  force?: boolean;
}

export function registerExportFvek(volume: Command): void {
  addCredentialOptions(
    volume
      .command('export-fvek')
      .summary('write the FVEK for dislocker (or raw)')
      .description(
        "Write the volume's FVEK to a file (mode 0600): dislocker's 66-byte format (`dislocker -K`) or the raw " +
          'key. Anyone with this file can decrypt the volume without any protector.',
      )
      .argument('<image>', 'BitLocker image file or block device')
      .argument('<file>', 'the key file to create')
      .option('--format <format>', 'dislocker (66 bytes: u16 method + key padded to 64) or raw', 'dislocker')
      .option('--force', 'overwrite an existing file'),
  ).action(async (image: string, file: string, flags: ExportFvekFlags) => {
    if (flags.format !== 'dislocker' && flags.format !== 'raw') {
      throw new CliError('--format is dislocker or raw');
    }
    checkCredentialFlags(flags);
    await checkOutput(file, flags.force);
    await withVolume(image, async (v) => {
      const unlocked = await unlockWithFlags(v, flags);
      const bytes = flags.format === 'raw' ? unlocked.fvek : fvekFile(unlocked.method, unlocked.fvek);
      await writeSafely(file, { force: flags.force ?? false, mode: 0o600 }, async (handle) => {
        await handle.writeFile(bytes);
      });
      process.stdout.write(
        `Wrote the FVEK (${unlocked.info.methodName}, ${flags.format} format, ${bytes.length} bytes) to ${file}\n` +
          `Unlocked with ${protectorLabel(unlocked.protector, unlocked.credentialKind)}\n`,
      );
    });
  });
}
