/** `bdevault volume export-metadata`: saves the metadata package that `repair` needs if the metadata is destroyed. */
import type { Command } from 'commander';
import { exportMetadataPackage } from '@bdevault/bde';
import { withVolume } from './open.js';
import { formatBytes } from './progress.js';
import { writeSafely } from './safe-write.js';

export function registerExportMetadata(volume: Command): void {
  volume
    .command('export-metadata')
    .summary('save a metadata package for a later repair')
    .description(
      'Export the FVE metadata blocks, the relocated boot sectors and the first sector to one small file. ' +
        'It holds only wrapped keys (as on the disk); a credential is still needed to use it with `repair`.',
    )
    .argument('<image>', 'BitLocker image file or block device')
    .argument('<file>', 'the metadata package to create')
    .option('--force', 'overwrite an existing file')
    .option('--json', 'print a JSON summary')
    .action(async (image: string, file: string, flags: { force?: boolean; json?: boolean }) => {
      const { bytes, volumeGuid } = await withVolume(image, async (v) => ({
        bytes: await exportMetadataPackage(v),
        volumeGuid: v.info.volumeGuid,
      }));
      // Not secret by itself, but it identifies the volume: keep it private like the rest.
      await writeSafely(file, { force: flags.force ?? false, mode: 0o600 }, async (handle) => {
        await handle.writeFile(bytes);
      });
      process.stdout.write(
        flags.json
          ? `${JSON.stringify({ file, volumeGuid, bytes: bytes.length }, null, 2)}\n`
          : `Wrote the metadata package of volume {${volumeGuid}} to ${file} (${formatBytes(bytes.length)})\n`,
      );
    });
}
