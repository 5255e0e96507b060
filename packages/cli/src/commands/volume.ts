/** `bdevault volume …`: the offline BitLocker toolkit; each subcommand lives in ../volume/. */
import type { Command } from 'commander';
import { registerDecrypt } from '../volume/decrypt.js';
import { registerExportFvek } from '../volume/export-fvek.js';
import { registerExportMetadata } from '../volume/export-metadata.js';
import { registerInfo } from '../volume/info.js';
import { registerRebuildBek } from '../volume/rebuild-bek.js';
import { registerRecoveryPasswords } from '../volume/recovery-passwords.js';
import { registerUnlock } from '../volume/unlock.js';

export function registerVolumeCommands(program: Command): void {
  const volume = program
    .command('volume')
    .description('Offline BitLocker toolkit: inspect, unlock, decrypt and repair images and block devices');
  registerInfo(volume);
  registerUnlock(volume);
  registerDecrypt(volume);
  registerRecoveryPasswords(volume);
  registerExportFvek(volume);
  registerRebuildBek(volume);
  registerExportMetadata(volume);
}
