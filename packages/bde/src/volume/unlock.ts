/** unlock: derive or accept a key, find the protector it opens, unwrap VMK → FVEK, verify metadata. */
import { createHash } from 'node:crypto';
import { ccmUnwrap } from '../crypto/aes-ccm.js';
import { FVEK_LENGTH, type SectorKeys, checkSectorKeys, decryptSectors } from '../crypto/sector-cipher.js';
import { stretchKey } from '../crypto/stretch-key.js';
import { BdeError } from '../errors.js';
import { parseKeyIdPrefix } from '../key-id.js';
import type { Credential, CredentialKind } from './credentials.js';
import { type Datum, ENTRY, VALUE, ccmValue, find, keyValue, stretchValue } from './datum.js';
import { passwordInitialHash, recoveryPasswordInitialHash } from './derive-key.js';
import type { BitLockerVolume, VolumeInfo } from './open-volume.js';
import { PlaintextReader, checkDecryptable } from './plaintext-view.js';
import type { Protector, ProtectorInfo, ProtectorType } from './protectors.js';
import {
  intermediateKeyOf,
  loadPrivateKeys,
  matchingProtectors,
  rsaDecryptCandidates,
} from './public-key.js';
import { parseStartupKeyFile } from './startup-key-file.js';

/** Method of the VMK's KEY datum once unwrapped. */
const KEY_METHOD_VMK = 0x2003;
/** Method of the validation KEY datum (SHA-256 of the block). */
const KEY_METHOD_VALIDATION = 0x2005;

/** An unlocked volume: keys, the protector that opened it, and its plaintext. */
export interface UnlockedVolume {
  readonly volume: BitLockerVolume;
  readonly info: VolumeInfo;
  /** The protector that opened the volume; null for a raw VMK or FVEK credential. */
  readonly protector: ProtectorInfo | null;
  readonly credentialKind: CredentialKind;
  /** The volume master key (null when unlocked with a raw FVEK). Secret. */
  readonly vmk: Uint8Array | null;
  /** The full-volume encryption key as stored (16–64 bytes) and its method. Secret. */
  readonly fvek: Uint8Array;
  readonly method: number;
  /** True when the metadata SHA-256 validation was checked with the VMK. */
  readonly metadataVerified: boolean;
  /**
   * Plaintext bytes at `offset` (§3.9 view). Throws ERR_BDE_UNSUPPORTED_EOW on used-space-only
   * volumes and ERR_BDE_UNSUPPORTED_STATE for conversions it cannot represent.
   */
  readPlaintext(offset: number, length: number): Promise<Uint8Array>;
  /** The whole plaintext (or [start, end)) in chunks of `chunkSize` bytes (default 4 MiB). */
  plaintextChunks(options?: { chunkSize?: number; start?: number; end?: number }): AsyncGenerator<Uint8Array>;
}

/** The one error for every authentication failure: same code and message whatever the cause. */
export function unlockFailed(): BdeError {
  return new BdeError('ERR_BDE_UNLOCK_FAILED', 'Unlock failed: the credential does not open this volume');
}

function ofType(volume: BitLockerVolume, ...types: ProtectorType[]): Protector[] {
  const found = volume.protectors.filter((p) => types.includes(p.info.type));
  if (found.length === 0) {
    throw new BdeError('ERR_BDE_NO_PROTECTOR', `The volume has no ${types.join(' or ')} protector`);
  }
  return found;
}

/** Tries every direct AES_CCM child of the VMK entry with `key`; returns the VMK or null. */
function unwrapVmk(protector: Protector, key: Uint8Array): Uint8Array | null {
  for (const d of protector.datum.nested) {
    if (d.valueType !== VALUE.AES_CCM) continue;
    const { nonce, mac, ciphertext } = ccmValue(d);
    const got = ccmUnwrap(key, nonce, mac, ciphertext);
    if (got && got.method === KEY_METHOD_VMK && got.key.length === 32) return got.key;
  }
  return null;
}

function unwrapDatum(d: Datum | undefined, key: Uint8Array) {
  if (!d || d.valueType !== VALUE.AES_CCM) return null;
  const { nonce, mac, ciphertext } = ccmValue(d);
  return ccmUnwrap(key, nonce, mac, ciphertext);
}

/** Stretched-key protectors (recovery password, password): one KDF per candidate, at most. */
function tryStretched(candidates: readonly Protector[], initial: Uint8Array) {
  for (const protector of candidates) {
    const stretch = find(protector.datum.nested, VALUE.STRETCH_KEY);
    if (!stretch) continue;
    const vmk = unwrapVmk(protector, stretchKey(initial, stretchValue(stretch).salt));
    if (vmk) return { vmk, protector };
  }
  return null;
}

/** Puts the protectors whose id matches `keyId` (full or 8-digit prefix) first. */
function preferKeyId(candidates: Protector[], keyId: string | undefined): Protector[] {
  if (keyId === undefined) return candidates;
  const prefix = parseKeyIdPrefix(keyId);
  const first = candidates.filter((p) => p.info.id.startsWith(prefix));
  return [...first, ...candidates.filter((p) => !first.includes(p))];
}

function findVmk(
  volume: BitLockerVolume,
  credential: Credential,
): { vmk: Uint8Array; protector: Protector | null } | null {
  switch (credential.kind) {
    case 'recovery-password': {
      const initial = recoveryPasswordInitialHash(credential.recoveryPassword);
      const candidates = preferKeyId(ofType(volume, 'recovery-password'), credential.keyId);
      return tryStretched(candidates, initial);
    }
    case 'password':
      return tryStretched(ofType(volume, 'password'), passwordInitialHash(credential.password));
    case 'startup-key': {
      const bek = parseStartupKeyFile(credential.bek);
      if (bek.volumeGuid !== null && bek.volumeGuid !== volume.info.volumeGuid) return null;
      // No KDF here, so every external-key protector may be tried; the named one first.
      const candidates = preferKeyId(ofType(volume, 'startup-key'), bek.protectorId);
      for (const protector of candidates) {
        const vmk = unwrapVmk(protector, bek.key);
        if (vmk) return { vmk, protector };
      }
      return null;
    }
    case 'clear-key': {
      for (const protector of ofType(volume, 'clear-key')) {
        const clear = find(protector.datum.nested, VALUE.KEY);
        if (!clear) continue;
        const vmk = unwrapVmk(protector, keyValue(clear).key);
        if (vmk) return { vmk, protector };
      }
      return null;
    }
    case 'certificate': {
      const keys = loadPrivateKeys(credential.privateKey, credential.passphrase);
      for (const protector of matchingProtectors(ofType(volume, 'public-key'), keys)) {
        for (const plain of rsaDecryptCandidates(protector, keys)) {
          const intermediate = intermediateKeyOf(plain);
          const vmk = intermediate && unwrapVmk(protector, intermediate);
          if (vmk) return { vmk, protector };
        }
      }
      return null;
    }
    case 'vmk':
      if (credential.vmk.length !== 32) throw unlockFailed();
      return { vmk: Uint8Array.from(credential.vmk), protector: null };
    case 'fvek':
      return null;
  }
}

/**
 * SHA-256 over the covered block bytes must equal the validation datum's key (§3.2). A mismatch
 * after an authenticated VMK means the metadata was altered.
 */
function verifyMetadata(volume: BitLockerVolume, vmk: Uint8Array): boolean {
  const { block, bootSector } = volume;
  if (!block.validation) {
    if (bootSector.kind === 'vista') return false;
    throw new BdeError('ERR_BDE_CORRUPT_METADATA', 'Metadata validation entry missing');
  }
  const got = unwrapDatum(block.validation, vmk);
  const digest = createHash('sha256').update(block.covered).digest();
  if (!got || got.method !== KEY_METHOD_VALIDATION || !digest.equals(got.key)) {
    throw new BdeError('ERR_BDE_CORRUPT_METADATA', 'Metadata validation (SHA-256) failed');
  }
  return true;
}

/** A raw FVEK is checked by decrypting the relocated boot sector and looking for 55 AA. */
function fvekOpensBootSector(volume: BitLockerVolume, keys: SectorKeys, sector: Uint8Array): boolean {
  const plain = decryptSectors(keys, sector, volume.info.volumeHeader.offset);
  return plain[510] === 0x55 && plain[511] === 0xaa;
}

function makeUnlocked(
  volume: BitLockerVolume,
  credentialKind: CredentialKind,
  protector: ProtectorInfo | null,
  vmk: Uint8Array | null,
  keys: SectorKeys,
  metadataVerified: boolean,
): UnlockedVolume {
  let reader: PlaintextReader | undefined;
  const readerOf = () => {
    checkDecryptable(volume);
    reader ??= new PlaintextReader(volume, keys);
    return reader;
  };
  return {
    volume,
    info: volume.info,
    protector,
    credentialKind,
    vmk,
    fvek: keys.fvek,
    method: keys.method,
    metadataVerified,
    readPlaintext: async (offset, length) => readerOf().read(offset, length),
    async *plaintextChunks(options = {}) {
      const r = readerOf();
      const chunkSize = options.chunkSize ?? 4 * 1024 * 1024;
      const end = options.end ?? volume.info.volumeSize;
      if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
        throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'chunkSize must be a positive integer');
      }
      for (let at = options.start ?? 0; at < end; at += chunkSize) {
        yield await r.read(at, Math.min(chunkSize, end - at));
      }
    },
  };
}

/**
 * Unlocks a volume. A wrong credential costs at most one key derivation per candidate protector
 * and always ends in ERR_BDE_UNLOCK_FAILED with the same message. Other errors:
 * ERR_BDE_NO_PROTECTOR (no protector of that kind), ERR_BDE_INVALID_PASSWORD_FORMAT,
 * ERR_BDE_CORRUPT_METADATA (SHA-256 validation failed), ERR_BDE_UNSUPPORTED_METHOD.
 *
 * @example
 * const unlocked = await unlock(volume, { kind: 'recovery-password', recoveryPassword: '235818-…' });
 * for await (const chunk of unlocked.plaintextChunks()) out.write(chunk);
 */
export async function unlock(volume: BitLockerVolume, credential: Credential): Promise<UnlockedVolume> {
  const sectorSize = volume.info.sectorSize;
  if (credential.kind === 'fvek') {
    const keys: SectorKeys = {
      method: volume.info.method,
      fvek: Uint8Array.from(credential.fvek),
      sectorSize,
    };
    if (FVEK_LENGTH[keys.method] !== undefined && keys.fvek.length !== FVEK_LENGTH[keys.method])
      throw unlockFailed();
    checkSectorKeys(keys);
    if (volume.bootSector.kind !== 'vista') {
      const at = volume.info.volumeHeader.offset;
      if (at + sectorSize > volume.source.size) throw unlockFailed();
      if (!fvekOpensBootSector(volume, keys, await volume.source.read(at, sectorSize))) throw unlockFailed();
    }
    return makeUnlocked(volume, 'fvek', null, null, keys, false);
  }
  const found = findVmk(volume, credential);
  if (!found) throw unlockFailed();
  const fvek = unwrapDatum(find(volume.block.entries, VALUE.AES_CCM, ENTRY.FVEK), found.vmk);
  if (!fvek) {
    // An authenticated VMK that cannot open the FVEK means damaged metadata, except for a raw VMK.
    if (credential.kind === 'vmk') throw unlockFailed();
    throw new BdeError('ERR_BDE_CORRUPT_METADATA', 'The FVEK entry is missing or does not open with the VMK');
  }
  const keys: SectorKeys = { method: fvek.method, fvek: fvek.key, sectorSize };
  checkSectorKeys(keys);
  const verified = verifyMetadata(volume, found.vmk);
  return makeUnlocked(volume, credential.kind, found.protector?.info ?? null, found.vmk, keys, verified);
}
