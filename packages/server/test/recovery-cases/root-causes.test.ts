// The root-cause catalog: the seven checklist questions, the class their answers point to (malware first), and each class's resolution steps.
import { describe, expect, it } from 'vitest';
import {
  classifyRootCause,
  ROOT_CAUSE_CATALOG,
  ROOT_CAUSE_CLASSES,
  rootCauseAnswers,
  type RootCauseAnswers,
  type RootCauseClass,
} from '../../src/modules/recovery-cases/root-causes.js';

/** Answers that point nowhere: a TPM+PIN volume, nothing lost, nothing changed, nothing suspicious. */
const NOTHING: RootCauseAnswers = {
  protectionMode: 'tpm-pin',
  bootFileChange: 'no',
  pcrProfile: '0,2,4,11',
  forgottenPinOrLostKey: 'no',
  changeCause: 'none',
  lastSuccessfulStart: { at: '2026-01-05T08:00:00.000Z', whatHappenedSince: 'Nothing special' },
  unattendedOrExposed: 'no',
};

const answers = (changes: Partial<RootCauseAnswers>): RootCauseAnswers => ({ ...NOTHING, ...changes });

/** For each class, answers that lead to it (and only it) on their own. */
const TYPICAL: Record<RootCauseClass, RootCauseAnswers[]> = {
  'unknown-pin': [
    answers({ forgottenPinOrLostKey: 'forgot-pin' }),
    answers({ protectionMode: 'unknown', forgottenPinOrLostKey: 'forgot-pin' }),
  ],
  'lost-startup-key': [
    answers({ protectionMode: 'tpm-startup-key', forgottenPinOrLostKey: 'lost-startup-key' }),
    answers({ protectionMode: 'startup-key', forgottenPinOrLostKey: 'lost-startup-key' }),
    answers({ protectionMode: 'unknown', forgottenPinOrLostKey: 'lost-startup-key' }),
  ],
  'boot-or-firmware-change': [
    answers({ bootFileChange: 'yes' }),
    answers({ changeCause: 'bios-firmware-update' }),
    answers({ protectionMode: 'tpm', bootFileChange: 'yes', changeCause: 'bios-firmware-update' }),
  ],
  'tpm-change': [
    answers({ changeCause: 'tpm-cleared-or-replaced' }),
    answers({ protectionMode: 'tpm', changeCause: 'tpm-cleared-or-replaced', pcrProfile: 'default' }),
  ],
  'malware-suspected': [
    answers({ changeCause: 'malicious-software' }),
    answers({ unattendedOrExposed: 'yes' }),
  ],
  unknown: [
    NOTHING,
    answers({ changeCause: 'other-intended-change' }),
    answers({
      protectionMode: 'unknown',
      bootFileChange: 'unknown',
      pcrProfile: 'unknown',
      forgottenPinOrLostKey: 'unknown',
      changeCause: 'unknown',
      lastSuccessfulStart: { whatHappenedSince: '' },
      // "Does not know" is not a sign of malware.
      unattendedOrExposed: 'unknown',
    }),
  ],
};

describe('the seven questions', () => {
  it('are seven fields, each accepting "unknown", and the schema refuses anything else', () => {
    expect(Object.keys(rootCauseAnswers.shape)).toEqual([
      'protectionMode',
      'bootFileChange',
      'pcrProfile',
      'forgottenPinOrLostKey',
      'changeCause',
      'lastSuccessfulStart',
      'unattendedOrExposed',
    ]);
    for (const answer of TYPICAL.unknown) expect(rootCauseAnswers.parse(answer)).toEqual(answer);
    expect(rootCauseAnswers.safeParse({ ...NOTHING, pcrProfile: '0;2;4' }).success).toBe(false);
    expect(rootCauseAnswers.safeParse({ ...NOTHING, changeCause: 'cosmic-ray' }).success).toBe(false);
    expect(rootCauseAnswers.safeParse({ ...NOTHING, extra: 'x' }).success).toBe(false);
    const { unattendedOrExposed: _missing, ...six } = NOTHING;
    expect(rootCauseAnswers.safeParse(six).success).toBe(false);
  });
});

describe('classification', () => {
  for (const cls of ROOT_CAUSE_CLASSES) {
    it(`classifies answers typical of ${cls} as ${cls}`, () => {
      expect(TYPICAL[cls].length).toBeGreaterThan(0);
      for (const a of TYPICAL[cls]) expect(classifyRootCause(a), JSON.stringify(a)).toBe(cls);
    });
  }

  it('malware suspected wins over every other class, from either question', () => {
    for (const cls of ROOT_CAUSE_CLASSES) {
      for (const a of TYPICAL[cls]) {
        // Question 7: left unattended or exposed.
        expect(classifyRootCause({ ...a, unattendedOrExposed: 'yes' }), `${cls} + exposed`).toBe(
          'malware-suspected',
        );
        // Question 5: malicious software, beside a forgotten PIN, a lost key or a boot file change.
        expect(classifyRootCause({ ...a, changeCause: 'malicious-software' }), `${cls} + malware`).toBe(
          'malware-suspected',
        );
      }
    }
    expect(
      classifyRootCause(
        answers({
          forgottenPinOrLostKey: 'forgot-pin',
          bootFileChange: 'yes',
          changeCause: 'tpm-cleared-or-replaced',
          unattendedOrExposed: 'yes',
        }),
      ),
    ).toBe('malware-suspected');
  });

  it('then a lost PIN or startup key, then a TPM change, then a boot or firmware change', () => {
    const pin = { forgottenPinOrLostKey: 'forgot-pin' } as const;
    const key = { protectionMode: 'tpm-startup-key', forgottenPinOrLostKey: 'lost-startup-key' } as const;
    expect(classifyRootCause(answers({ ...pin, changeCause: 'tpm-cleared-or-replaced' }))).toBe(
      'unknown-pin',
    );
    expect(
      classifyRootCause(answers({ ...pin, changeCause: 'bios-firmware-update', bootFileChange: 'yes' })),
    ).toBe('unknown-pin');
    expect(classifyRootCause(answers({ ...key, changeCause: 'tpm-cleared-or-replaced' }))).toBe(
      'lost-startup-key',
    );
    expect(classifyRootCause(answers({ ...key, bootFileChange: 'yes' }))).toBe('lost-startup-key');
    expect(
      classifyRootCause(answers({ changeCause: 'tpm-cleared-or-replaced', bootFileChange: 'yes' })),
    ).toBe('tpm-change');
  });

  it('a PIN or startup key the protection mode does not have is not the cause; the other answers decide', () => {
    // TPM only: no preboot PIN to forget (the user means the Windows sign-in PIN).
    for (const protectionMode of ['tpm', 'tpm-startup-key', 'startup-key'] as const) {
      expect(classifyRootCause(answers({ protectionMode, forgottenPinOrLostKey: 'forgot-pin' }))).toBe(
        'unknown',
      );
      expect(
        classifyRootCause(
          answers({
            protectionMode,
            forgottenPinOrLostKey: 'forgot-pin',
            changeCause: 'bios-firmware-update',
          }),
        ),
      ).toBe('boot-or-firmware-change');
    }
    for (const protectionMode of ['tpm', 'tpm-pin'] as const) {
      expect(classifyRootCause(answers({ protectionMode, forgottenPinOrLostKey: 'lost-startup-key' }))).toBe(
        'unknown',
      );
      expect(
        classifyRootCause(
          answers({
            protectionMode,
            forgottenPinOrLostKey: 'lost-startup-key',
            changeCause: 'tpm-cleared-or-replaced',
          }),
        ),
      ).toBe('tpm-change');
    }
  });

  it('the other questions (PCR profile, last start) never change the class', () => {
    for (const cls of ROOT_CAUSE_CLASSES) {
      for (const a of TYPICAL[cls]) {
        for (const pcrProfile of ['unknown', 'default', '7,11', '0,2,4,11']) {
          expect(
            classifyRootCause({
              ...a,
              pcrProfile,
              lastSuccessfulStart: { whatHappenedSince: 'Installed a BIOS update and malware scan' },
            }),
          ).toBe(cls);
        }
      }
    }
  });
});

describe('resolution steps', () => {
  it('has one entry per class, named after it, with a title and steps', () => {
    expect(Object.keys(ROOT_CAUSE_CATALOG).sort()).toEqual([...ROOT_CAUSE_CLASSES].sort());
    for (const cls of ROOT_CAUSE_CLASSES) {
      const entry = ROOT_CAUSE_CATALOG[cls];
      expect(entry.class).toBe(cls);
      expect(entry.title.length).toBeGreaterThan(0);
      expect(entry.steps.length).toBeGreaterThanOrEqual(3);
      expect(new Set(entry.steps).size).toBe(entry.steps.length);
    }
  });

  it('unknown PIN: unlock, then reset the PIN once signed in, then rotate', () => {
    const { steps, title } = ROOT_CAUSE_CATALOG['unknown-pin'];
    expect(title).toBe('Forgotten PIN');
    expect(steps[0]).toMatch(/^Unlock the drive with the recovery password/);
    expect(steps[1]).toMatch(/signed in, reset the PIN/);
    expect(steps[1]).toMatch(/manage-bde -changepin/);
    expect(steps.at(-1)).toMatch(/rotated/);
  });

  it('lost startup key: unlock, then create a new startup key and remove the lost one', () => {
    const { steps, title } = ROOT_CAUSE_CATALOG['lost-startup-key'];
    expect(title).toBe('Lost startup key');
    expect(steps[0]).toMatch(/^Unlock the drive with the recovery password/);
    expect(steps[1]).toMatch(/create a new startup key/);
    expect(steps[1]).toMatch(/-startupkey/);
    expect(steps[1]).toMatch(/remove the lost one/);
    expect(steps.at(-1)).toMatch(/rotated/);
  });

  it('boot or firmware change: unlocking refreshes the validation profile; suspend before updates, resume after', () => {
    const { steps, title } = ROOT_CAUSE_CATALOG['boot-or-firmware-change'];
    expect(title).toBe('Changes to boot files or firmware');
    expect(steps[0]).toMatch(/^Unlock the drive/);
    expect(steps[0]).toMatch(/refreshes the TPM validation profile/);
    expect(steps[1]).toMatch(/^Before future BIOS, firmware or boot-file updates, suspend BitLocker/);
    expect(steps[1]).toMatch(/Suspend-BitLocker/);
    expect(steps[2]).toMatch(/^Resume protection after the update/);
    expect(steps[2]).toMatch(/Resume-BitLocker/);
  });

  it('TPM change: unlock, make the TPM ready, re-seal to the current TPM, record why it changed', () => {
    const { steps, title } = ROOT_CAUSE_CATALOG['tpm-change'];
    expect(title).toMatch(/TPM cleared, reset or replaced/);
    expect(steps[0]).toMatch(/^Unlock the drive with the recovery password/);
    expect(steps[1]).toMatch(/TPM is on, owned and ready/);
    expect(steps[2]).toMatch(/Re-create the TPM protector/);
    expect(steps[2]).toMatch(/-tpm/);
    expect(steps[3]).toMatch(/why the TPM changed/);
  });

  it('malware suspected: the incident policy comes first, and unlocking is not the first step', () => {
    const { steps, title } = ROOT_CAUSE_CATALOG['malware-suspected'];
    expect(title).toMatch(/Malware or tampering suspected/);
    expect(steps[0]).toMatch(/^Apply the organization's security incident policy before anything else/);
    expect(steps[1]).toMatch(/offline/);
    expect(steps[2]).toMatch(/only as the incident process allows/);
    expect(steps.some((s) => s.startsWith('Unlock'))).toBe(false);
  });

  it('unknown: unlock, read the timeline and the recovery-cause events the agent reports, flag a repeat', () => {
    const { steps, title } = ROOT_CAUSE_CATALOG.unknown;
    expect(title).toBe('Cause unknown');
    expect(steps[0]).toMatch(/^Unlock the drive with the recovery password/);
    expect(steps[1]).toMatch(/device timeline/);
    expect(steps[1]).toMatch(/521–531 and 823\/824/);
    expect(steps[2]).toMatch(/post-recovery analysis/);
  });
});
