/** @bdevault/bde: recovery passwords, key ids and BitLocker volumes, on node:crypto only. */
export { BdeError, isBdeError, type BdeErrorCode } from './errors.js';
export { stretchKey } from './crypto/stretch-key.js';
// recovery passwords and key ids
export {
  checkRecoveryPassword,
  describeProblems,
  generateRecoveryPassword,
  GROUP_LIMIT,
  InvalidRecoveryPasswordError,
  isValidGroup,
  normalizeRecoveryPassword,
  RECOVERY_PASSWORD_GROUPS,
  recoveryPasswordFromKey,
  recoveryPasswordToKey,
  suggestGroups,
  type GroupProblem,
  type GroupProblemReason,
  type RecoveryPasswordCheck,
} from './recovery-password.js';
export {
  formatKeyId,
  guidFromBytes,
  guidToBytes,
  isKeyId,
  keyIdMatchesPrefix,
  parseKeyId,
  parseKeyIdPrefix,
} from './key-id.js';
// volumes
export {
  openFileSource,
  memorySource,
  overlaySource,
  fileSourceFromHandle,
  type ByteSource,
  type FileSource,
  type SourcePatch,
} from './volume/source.js';
export { openVolume, type BitLockerVolume, type VolumeInfo } from './volume/open-volume.js';
export { BITLOCKER_GUID, BITLOCKER_EOW_GUID, type VolumeKind } from './volume/boot-sector.js';
export {
  PROTECTION,
  type ProtectorInfo,
  type ProtectorType,
  type ProtectorCertificate,
} from './volume/protectors.js';
export type { Credential, CredentialKind } from './volume/credentials.js';
export { unlock, type UnlockedVolume } from './volume/unlock.js';
export {
  listRecoveryPasswords,
  rebuildStartupKeyFile,
  type RecoveredPassword,
} from './volume/vmk-secrets.js';
export { parseStartupKeyFile, buildStartupKeyFile, type StartupKeyFile } from './volume/startup-key-file.js';
export { METHOD, FVEK_LENGTH, decryptSectors, type SectorKeys } from './crypto/sector-cipher.js';
export {
  exportMetadataPackage,
  openVolumeWithPackage,
  parseMetadataPackage,
  serializeMetadataPackage,
  type MetadataPackage,
} from './volume/metadata-package.js';
export { fvekFile, parseFvekFile, FVEK_FILE_SIZE } from './volume/fvek-file.js';
export { decryptSectorsInPlace, decryptSectorsInto } from './crypto/sector-cipher.js';
export {
  createDecryptPool,
  decryptVolumeStream,
  defaultWorkerCount,
  type DecryptPool,
  type DecryptPoolOptions,
  type DecryptStreamOptions,
} from './volume/decrypt-workers.js';
export {
  readPkcs12,
  looksLikePkcs12,
  type Pkcs12Contents,
  type Pkcs12Key,
  type Pkcs12Certificate,
} from './crypto/pkcs12.js';
