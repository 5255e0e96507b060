/** What the VMK alone reveals (§3.11): every recovery password, and the key of each `.BEK` file. */
import { ccmUnwrap } from '../crypto/aes-ccm.js';
import { BdeError } from '../errors.js';
import { recoveryPasswordFromKey } from '../recovery-password.js';
import { type Datum, VALUE, ccmValue, find } from './datum.js';
import type { BitLockerVolume } from './open-volume.js';
import { buildStartupKeyFile } from './startup-key-file.js';

/** KEY method of the 16-byte recovery key and of the BEK key once unwrapped. */
const KEY_METHOD_RECOVERY_KEY = 0x1000;
const KEY_METHOD_BEK = 0x2002;

/** A recovery password with the protector (recovery key id) that holds it. */
export interface RecoveredPassword {
  protectorId: string;
  recoveryPassword: string;
}

function unwrapAll(list: readonly Datum[], vmk: Uint8Array, entryType?: number) {
  const out = [];
  for (const d of list) {
    if (d.valueType !== VALUE.AES_CCM || (entryType !== undefined && d.entryType !== entryType)) continue;
    const { nonce, mac, ciphertext } = ccmValue(d);
    const got = ccmUnwrap(vmk, nonce, mac, ciphertext);
    if (got) out.push(got);
  }
  return out;
}

function needVmk(vmk: Uint8Array | null): Uint8Array {
  if (!vmk || vmk.length !== 32)
    throw new BdeError('ERR_BDE_LOCKED', 'This needs the VMK (unlock with a protector)');
  return vmk;
}

/**
 * Every recovery password of the volume, recovered with the VMK: the 16-byte key is stored under
 * the VMK inside each recovery protector's stretch-key entry.
 *
 * @example
 * const unlocked = await unlock(volume, { kind: 'password', password: 'anaconda' });
 * listRecoveryPasswords(volume, unlocked.vmk); // [{ protectorId: '64311DEA-…', recoveryPassword: '235818-…' }]
 */
export function listRecoveryPasswords(volume: BitLockerVolume, vmk: Uint8Array | null): RecoveredPassword[] {
  const key = needVmk(vmk);
  const out: RecoveredPassword[] = [];
  for (const p of volume.protectors) {
    if (p.info.type !== 'recovery-password') continue;
    const stretch = find(p.datum.nested, VALUE.STRETCH_KEY);
    if (!stretch) continue;
    // Windows 8+ tags it as entry 0x12; Windows 7 leaves the role 0, so check the method instead.
    const found = unwrapAll(stretch.nested, key).find(
      (k) => k.method === KEY_METHOD_RECOVERY_KEY && k.key.length === 16,
    );
    if (found) out.push({ protectorId: p.info.id, recoveryPassword: recoveryPasswordFromKey(found.key) });
  }
  return out;
}

/**
 * Rebuilds the `.BEK` file of an external-key protector from the VMK (Windows 11 form, naming the
 * volume). Without `protectorId`, the first external-key protector. Save as `{protectorId}.BEK`.
 */
export function rebuildStartupKeyFile(
  volume: BitLockerVolume,
  vmk: Uint8Array | null,
  protectorId?: string,
): { protectorId: string; fileName: string; bytes: Uint8Array } {
  const key = needVmk(vmk);
  const candidates = volume.protectors.filter(
    (p) =>
      p.info.type === 'startup-key' && (protectorId === undefined || p.info.id === protectorId.toUpperCase()),
  );
  for (const p of candidates) {
    const useKey = find(p.datum.nested, VALUE.USE_KEY);
    const bek =
      useKey && unwrapAll(useKey.nested, key).find((k) => k.method === KEY_METHOD_BEK && k.key.length === 32);
    if (!bek) continue;
    const bytes = buildStartupKeyFile({
      protectorId: p.info.id,
      key: bek.key,
      volumeGuid: volume.info.volumeGuid,
      createdAt: p.info.modified ?? new Date(0),
    });
    return { protectorId: p.info.id, fileName: `${p.info.id}.BEK`, bytes };
  }
  throw new BdeError('ERR_BDE_NO_PROTECTOR', 'No external-key protector whose key the VMK opens');
}
