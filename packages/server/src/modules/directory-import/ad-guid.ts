/** GUID attributes of Active Directory (16 bytes, Windows mixed-endian) to and from canonical text. */
import { guidFromBytes, guidToBytes, parseKeyId } from '@bdevault/bde';
import { EqualityFilter } from 'ldapts';

/** The canonical upper-case GUID of a 16-byte AD attribute value, or undefined when it is not 16 bytes. */
export function adGuidFromBytes(bytes: Uint8Array | undefined): string | undefined {
  if (bytes === undefined || bytes.length !== 16) return undefined;
  return guidFromBytes(bytes);
}

/** The canonical upper-case GUID of text in any common spelling, or undefined when it is not a GUID. */
export function adGuidFromText(text: string): string | undefined {
  try {
    return parseKeyId(text);
  } catch {
    return undefined;
  }
}

/**
 * An equality filter on a binary GUID attribute. It carries the raw bytes: string filters with
 * `\xx` escapes do not reach the server intact through ldapts, so they match nothing.
 */
export function adGuidFilter(attribute: string, guid: string): EqualityFilter {
  return new EqualityFilter({ attribute, value: Buffer.from(guidToBytes(guid)) });
}
