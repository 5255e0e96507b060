/** Opening and unlocking a volume for a command: the source is always closed, failures map to exit codes. */
import { readFile } from 'node:fs/promises';
import {
  openFileSource,
  openVolume,
  openVolumeWithPackage,
  unlock,
  type BitLockerVolume,
  type ProtectorInfo,
  type UnlockedVolume,
} from '@bdevault/bde';
import { CliError } from '../run-cli.js';
import { EXIT, toCliError } from './errors.js';
import { resolveCredential, type CredentialFlags } from './credentials.js';

/**
 * Opens the image or device, optionally through a metadata package (repair), runs `fn` and
 * closes the source whatever happens.
 */
export async function withVolume<T>(
  path: string,
  fn: (volume: BitLockerVolume) => Promise<T>,
  options: { metadataPackage?: string } = {},
): Promise<T> {
  let packageBytes: Uint8Array | undefined;
  if (options.metadataPackage !== undefined) {
    try {
      packageBytes = await readFile(options.metadataPackage);
    } catch (err) {
      const reason = (err as { code?: string }).code ?? 'error';
      throw new CliError(
        `Cannot read the metadata package ${options.metadataPackage} (${reason})`,
        EXIT.VOLUME,
      );
    }
  }
  try {
    const source = await openFileSource(path);
    try {
      const volume = packageBytes
        ? await openVolumeWithPackage(source, packageBytes)
        : await openVolume(source);
      return await fn(volume);
    } finally {
      await source.close();
    }
  } catch (err) {
    throw toCliError(err);
  }
}

/** Resolves the credential flags (prompting if asked) and unlocks. */
export async function unlockWithFlags(
  volume: BitLockerVolume,
  flags: CredentialFlags,
): Promise<UnlockedVolume> {
  const credential = await resolveCredential(flags, volume.info.method);
  return unlock(volume, credential);
}

/** Unlocks and insists on the VMK (listing recovery passwords, rebuilding a .BEK need it). */
export async function unlockForVmk(volume: BitLockerVolume, flags: CredentialFlags): Promise<UnlockedVolume> {
  if (flags.fvekFile !== undefined) {
    throw new CliError('This needs the volume master key: unlock with a protector, not --fvek-file');
  }
  return unlockWithFlags(volume, flags);
}

/** "Numerical Password {64311DEA-…}" as the one-line name of a protector. */
export function protectorLabel(protector: ProtectorInfo | null, credentialKind: string): string {
  if (!protector) return credentialKind === 'fvek' ? 'the FVEK (no protector)' : 'the VMK (no protector)';
  return `${protector.typeName} protector {${protector.id}}`;
}
