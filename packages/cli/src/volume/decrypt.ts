/** `bdevault volume decrypt` and `repair`: the whole plaintext of a volume into a file, written safely. */
import type { Command } from 'commander';
import type { UnlockedVolume } from '@bdevault/bde';
import { addCredentialOptions, checkCredentialFlags, type CredentialFlags } from './credentials.js';
import { protectorJson } from './info.js';
import { protectorLabel, unlockWithFlags, withVolume } from './open.js';
import { createProgress, formatBytes } from './progress.js';
import { checkOutput, writeSafely } from './safe-write.js';
import { checkDecryptable, writePlaintext } from './write-plaintext.js';

interface DecryptFlags extends CredentialFlags {
  force?: boolean;
  json?: boolean;
  sha256?: boolean;
  metadata?: string;
}

async function decryptTo(unlocked: UnlockedVolume, output: string, flags: DecryptFlags): Promise<void> {
  await checkDecryptable(unlocked);
  const progress = createProgress('Decrypting', unlocked.info.volumeSize, !flags.json);
  let summary;
  try {
    summary = await writeSafely(output, { force: flags.force ?? false }, (handle, control) =>
      writePlaintext(unlocked, handle, control, { sha256: flags.sha256 ?? false, progress }),
    );
  } finally {
    progress.stop();
  }
  if (flags.json) {
    const result = {
      output,
      volumeGuid: unlocked.info.volumeGuid,
      protector: unlocked.protector ? protectorJson(unlocked.protector) : null,
      credential: unlocked.credentialKind,
      ...summary,
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const rate = summary.seconds > 0 ? ` (${formatBytes(summary.bytes / summary.seconds)}/s)` : '';
  const lines = [
    `Decrypted ${formatBytes(summary.bytes)} to ${output} in ${summary.seconds.toFixed(1)} s${rate}`,
    `Unlocked with ${protectorLabel(unlocked.protector, unlocked.credentialKind)}`,
  ];
  if (summary.sha256) lines.push(`SHA-256: ${summary.sha256}`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Checks usage and the output before the volume is unlocked: refusals should come before a prompt. */
async function run(image: string, output: string, flags: DecryptFlags): Promise<void> {
  checkCredentialFlags(flags);
  await checkOutput(output, flags.force);
  await withVolume(
    image,
    async (volume) => decryptTo(await unlockWithFlags(volume, flags), output, flags),
    flags.metadata !== undefined ? { metadataPackage: flags.metadata } : {},
  );
}

function addOutputOptions(command: Command): Command {
  return command
    .option('--force', 'overwrite an existing output file')
    .option('--sha256', 'compute the SHA-256 of the plaintext while writing it')
    .option('--json', 'print a JSON summary and no progress bar');
}

export function registerDecrypt(volume: Command): void {
  addOutputOptions(
    addCredentialOptions(
      volume
        .command('decrypt')
        .summary('decrypt the whole volume into a plaintext image')
        .description(
          'Decrypt a whole volume into a plaintext image (as dislocker or cryptsetup would). The output is ' +
            'written to a temporary file beside it and renamed when complete; all-zero regions are left sparse.',
        )
        .argument('<image>', 'BitLocker image file or block device')
        .argument('<output>', 'the plaintext image to create'),
    ),
  ).action((image: string, output: string, flags: DecryptFlags) => run(image, output, flags));

  addOutputOptions(
    addCredentialOptions(
      volume
        .command('repair')
        .summary('decrypt a volume with damaged metadata, using a metadata package')
        .description(
          'Decrypt a volume whose BitLocker metadata is damaged, using a metadata package exported earlier ' +
            '(an off-device repair-bde). The damaged volume is only read.',
        )
        .argument('<damaged>', 'the damaged BitLocker image file or block device')
        .argument('<output>', 'the plaintext image to create')
        .requiredOption('--metadata <file>', 'metadata package from `bdevault volume export-metadata`'),
    ),
  ).action((damaged: string, output: string, flags: DecryptFlags) => run(damaged, output, flags));
}
