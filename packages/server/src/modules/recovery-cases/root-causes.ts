/**
 * The root-cause catalog of the helpdesk checklist: the seven questions asked of a locked-out user,
 * how their answers map to a class, and the resolution steps for each class (Microsoft's BitLocker
 * recovery guidance, in the order a helpdesk follows it).
 */
import { z } from 'zod';
import { boundedString } from '../../lib/schemas.js';

export const ROOT_CAUSE_CLASSES = [
  'unknown-pin',
  'lost-startup-key',
  'boot-or-firmware-change',
  'tpm-change',
  'malware-suspected',
  'unknown',
] as const;

export type RootCauseClass = (typeof ROOT_CAUSE_CLASSES)[number];

const yesNoUnknown = z.enum(['yes', 'no', 'unknown']);

/** The seven questions, one field each; every answer allows "unknown" because users often do not know. */
export const rootCauseAnswers = z.strictObject({
  /** 1. Which protectors the volume uses. */
  protectionMode: z.enum(['tpm', 'tpm-pin', 'tpm-startup-key', 'startup-key', 'unknown']),
  /** 2. Was recovery caused by a change to the boot files (boot manager, BCD)? */
  bootFileChange: yesNoUnknown,
  /** 3. The TPM validation (PCR) profile in use, as `manage-bde -protectors -get` prints it. */
  pcrProfile: z.union([
    z.literal('unknown'),
    z.literal('default'),
    z
      .string()
      .max(80)
      .regex(/^\d{1,2}(,\s?\d{1,2})*$/, 'a comma-separated list of PCR indices such as 0,2,4,11'),
  ]),
  /** 4. Did the user forget the PIN or lose the startup key? */
  forgottenPinOrLostKey: z.enum(['forgot-pin', 'lost-startup-key', 'no', 'unknown']),
  /** 5. Was there an intended change (BIOS / firmware update, TPM cleared) or malicious software? */
  changeCause: z.enum([
    'bios-firmware-update',
    'tpm-cleared-or-replaced',
    'other-intended-change',
    'malicious-software',
    'none',
    'unknown',
  ]),
  /** 6. When the computer last started normally, and what happened since. */
  lastSuccessfulStart: z.strictObject({
    at: z.iso.datetime().optional(),
    whatHappenedSince: boundedString(1000, 0),
  }),
  /** 7. Was the computer left unattended, or exposed to malware? */
  unattendedOrExposed: yesNoUnknown,
});

export type RootCauseAnswers = z.infer<typeof rootCauseAnswers>;

/** Protection modes with a preboot PIN, and with a startup key ("unknown": the user may have one). */
const PIN_MODES: readonly RootCauseAnswers['protectionMode'][] = ['tpm-pin', 'unknown'];
const STARTUP_KEY_MODES: readonly RootCauseAnswers['protectionMode'][] = [
  'tpm-startup-key',
  'startup-key',
  'unknown',
];

/**
 * The class the answers point to. Security first: any sign of tampering or malware wins over a
 * benign explanation, because the benign resolution (unlock and carry on) would hide an incident.
 * Then what the user lost, but only when the volume's protection mode has that protector: a user
 * of a TPM-only volume who "forgot the PIN" means another one (the Windows sign-in PIN), which
 * cannot cause BitLocker recovery, so the other answers decide. Then a TPM change, then a boot or
 * firmware change.
 */
export function classifyRootCause(answers: RootCauseAnswers): RootCauseClass {
  if (answers.changeCause === 'malicious-software' || answers.unattendedOrExposed === 'yes') {
    return 'malware-suspected';
  }
  const mode = answers.protectionMode;
  if (answers.forgottenPinOrLostKey === 'forgot-pin' && PIN_MODES.includes(mode)) return 'unknown-pin';
  if (answers.forgottenPinOrLostKey === 'lost-startup-key' && STARTUP_KEY_MODES.includes(mode)) {
    return 'lost-startup-key';
  }
  if (answers.changeCause === 'tpm-cleared-or-replaced') return 'tpm-change';
  if (answers.bootFileChange === 'yes' || answers.changeCause === 'bios-firmware-update') {
    return 'boot-or-firmware-change';
  }
  return 'unknown';
}

export interface RootCauseResolution {
  class: RootCauseClass;
  title: string;
  steps: readonly string[];
}

export const ROOT_CAUSE_CATALOG: Record<RootCauseClass, RootCauseResolution> = {
  'unknown-pin': {
    class: 'unknown-pin',
    title: 'Forgotten PIN',
    steps: [
      'Unlock the drive with the recovery password.',
      'Once signed in, reset the PIN (manage-bde -changepin C: or the BitLocker control panel).',
      'Let the recovery password be rotated: it has been disclosed and is now single-use.',
    ],
  },
  'lost-startup-key': {
    class: 'lost-startup-key',
    title: 'Lost startup key',
    steps: [
      'Unlock the drive with the recovery password.',
      'Once signed in, create a new startup key (manage-bde -protectors -add C: -startupkey <drive>) and remove the lost one.',
      'Let the recovery password be rotated: it has been disclosed and is now single-use.',
    ],
  },
  'boot-or-firmware-change': {
    class: 'boot-or-firmware-change',
    title: 'Changes to boot files or firmware',
    steps: [
      'Unlock the drive with the recovery password; unlocking refreshes the TPM validation profile, so the next start should not ask again.',
      'Before future BIOS, firmware or boot-file updates, suspend BitLocker (Suspend-BitLocker / manage-bde -protectors -disable C:).',
      'Resume protection after the update (Resume-BitLocker / manage-bde -protectors -enable C:).',
      'If recovery repeats, check the PCR profile and the firmware settings that changed.',
    ],
  },
  'tpm-change': {
    class: 'tpm-change',
    title: 'TPM cleared, reset or replaced',
    steps: [
      'Unlock the drive with the recovery password.',
      'Check that the TPM is on, owned and ready (Get-Tpm, tpm.msc); initialise it if it was cleared.',
      'Re-create the TPM protector so the volume is sealed to the current TPM (manage-bde -protectors -add C: -tpm).',
      'Find out why the TPM changed (motherboard replaced, TPM cleared in firmware) and record it.',
    ],
  },
  'malware-suspected': {
    class: 'malware-suspected',
    title: 'Malware or tampering suspected',
    steps: [
      "Apply the organization's security incident policy before anything else; involve the security team.",
      'Consider keeping the device offline and preserving it for analysis instead of unlocking it.',
      'If it is unlocked, do so only as the incident process allows, then rotate every protector.',
    ],
  },
  unknown: {
    class: 'unknown',
    title: 'Cause unknown',
    steps: [
      'Unlock the drive with the recovery password.',
      'Review the device timeline for what changed: the BitLocker-API events 521–531 and 823/824 the agent reports say why the start needed recovery.',
      'If recovery repeats, flag the device for post-recovery analysis.',
    ],
  },
};
