import { describe, expect, it } from 'vitest';
import {
  formatKeyId,
  guidFromBytes,
  guidToBytes,
  isKeyId,
  keyIdMatchesPrefix,
  parseKeyId,
  parseKeyIdPrefix,
} from '../src/key-id.js';

const WINDOWS = '{4290B6C0-B17A-497A-8552-272CC30E80D4}';

describe('key ids', () => {
  it.each([
    WINDOWS,
    '4290B6C0-B17A-497A-8552-272CC30E80D4',
    '{4290b6c0-b17a-497a-8552-272cc30e80d4}',
    '  4290b6c0-B17A-497a-8552-272CC30E80D4 ',
    '4290B6C0B17A497A8552272CC30E80D4',
  ])('parses %s', (input) => {
    expect(parseKeyId(input)).toBe('4290B6C0-B17A-497A-8552-272CC30E80D4');
    expect(formatKeyId(input)).toBe(WINDOWS);
  });

  it.each([
    '',
    '{4290B6C0-B17A-497A-8552-272CC30E80D4',
    '4290B6C0-B17A-497A-8552-272CC30E80D',
    '4290B6C0-B17A-497A-8552-272CC30E80DG',
    '4290B6C0-B17A-497A-8552-272CC30E80D4-00',
    '{{4290B6C0-B17A-497A-8552-272CC30E80D4}}',
  ])('refuses %j with a stable code', (input) => {
    expect(isKeyId(input)).toBe(false);
    expect(() => parseKeyId(input)).toThrow(expect.objectContaining({ code: 'ERR_BDE_INVALID_KEY_ID' }));
  });

  it('matches on the first 8 hex digits shown at the preboot screen', () => {
    expect(parseKeyIdPrefix('4290b6c0')).toBe('4290B6C0');
    expect(parseKeyIdPrefix('{4290B6C0')).toBe('4290B6C0');
    expect(parseKeyIdPrefix(WINDOWS)).toBe('4290B6C0');
    expect(keyIdMatchesPrefix(WINDOWS, '4290b6c0')).toBe(true);
    expect(keyIdMatchesPrefix(WINDOWS, '4290B6C1')).toBe(false);
    expect(() => parseKeyIdPrefix('4290B6C')).toThrow(
      expect.objectContaining({ code: 'ERR_BDE_INVALID_KEY_ID' }),
    );
  });

  it('converts GUIDs to and from Microsoft mixed-endian bytes (bde-format.md example)', () => {
    const bytes = Uint8Array.from(Buffer.from('3bd66749292ed84a8399f6a339e3d001', 'hex'));
    const before = Buffer.from(bytes).toString('hex');
    expect(guidFromBytes(bytes)).toBe('4967D63B-2E29-4AD8-8399-F6A339E3D001');
    expect(Buffer.from(bytes).toString('hex')).toBe(before);
    expect(Buffer.from(guidToBytes('4967d63b-2e29-4ad8-8399-f6a339e3d001')).toString('hex')).toBe(before);
  });
});
