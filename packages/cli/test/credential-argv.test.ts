import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { normalizeSecretOptions } from '../src/volume/credential-argv.js';

const dir = mkdtempSync(join(tmpdir(), 'bdevault-argv-'));
const image = join(dir, 'disk.img');
writeFileSync(image, '');
const base = ['node', 'bdevault', 'volume', 'unlock'];

describe('normalizeSecretOptions', () => {
  it('keeps a recovery password given as the value', () => {
    const rp = '235818-357951-253979-013365-241120-245575-342914-591910';
    expect(normalizeSecretOptions([...base, image, '--recovery-password', rp])).toEqual([
      ...base,
      image,
      '--recovery-password',
      rp,
    ]);
  });

  it('does not let --recovery-password swallow the image path', () => {
    expect(normalizeSecretOptions([...base, '--recovery-password', image])).toEqual([
      ...base,
      '--recovery-password',
      '-',
      image,
    ]);
  });

  it('does not let --password swallow an existing file, but takes any other word', () => {
    expect(normalizeSecretOptions([...base, '--password', image])).toEqual([
      ...base,
      '--password',
      '-',
      image,
    ]);
    expect(normalizeSecretOptions([...base, image, '--password', 'anaconda'])).toEqual([
      ...base,
      image,
      '--password',
      'anaconda',
    ]);
  });

  it('adds "-" before another option or at the end, and leaves arguments after -- alone', () => {
    expect(normalizeSecretOptions([...base, '--password', '--json', image])).toEqual([
      ...base,
      '--password',
      '-',
      '--json',
      image,
    ]);
    expect(normalizeSecretOptions([...base, image, '--password'])).toEqual([
      ...base,
      image,
      '--password',
      '-',
    ]);
    expect(normalizeSecretOptions([...base, '--', '--password', image])).toEqual([
      ...base,
      '--',
      '--password',
      image,
    ]);
  });
});
