/** `bdevault volume unlock`: checks a credential against a volume (the off-device `manage-bde -unlock`). */
import type { Command } from 'commander';
import { addCredentialOptions, checkCredentialFlags, type CredentialFlags } from './credentials.js';
import { protectorJson } from './info.js';
import { protectorLabel, unlockWithFlags, withVolume } from './open.js';

export function registerUnlock(volume: Command): void {
  addCredentialOptions(
    volume
      .command('unlock')
      .summary('check that a credential opens the volume')
      .description(
        'Check that a credential opens the volume and name the protector it opened ' +
          '(exit 0 opened, 1 the credential does not open it, 2 the volume cannot be read)',
      )
      .argument('<image>', 'BitLocker image file or block device')
      .option('--json', 'print the result as JSON'),
  ).action(async (image: string, flags: CredentialFlags & { json?: boolean }) => {
    checkCredentialFlags(flags);
    await withVolume(image, async (volume) => {
      const unlocked = await unlockWithFlags(volume, flags);
      // Keys stay in memory: only which protector opened the volume is reported.
      if (flags.json) {
        const result = {
          unlocked: true,
          volumeGuid: unlocked.info.volumeGuid,
          credential: unlocked.credentialKind,
          protector: unlocked.protector ? protectorJson(unlocked.protector) : null,
          metadataVerified: unlocked.metadataVerified,
        };
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const lines = [
        `Unlocked volume {${unlocked.info.volumeGuid}} with ${protectorLabel(unlocked.protector, unlocked.credentialKind)}`,
        unlocked.metadataVerified
          ? 'Metadata integrity: verified (SHA-256 validation)'
          : 'Metadata integrity: not verified (no VMK)',
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
    });
  });
}
