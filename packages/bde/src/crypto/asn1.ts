/** A small bounded DER/BER reader for PKCS#12 and PKCS#8: every failure is a BdeError. */
import { BdeError, type BdeErrorCode } from '../errors.js';

/** Deeper nesting than this is refused: no structure we read needs it, and it bounds recursion. */
export const MAX_DEPTH = 32;
/** Element count ceiling per constructed value, so a hostile file cannot make us build huge arrays. */
const MAX_CHILDREN = 100_000;

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  BMP_STRING: 0x1e,
  /** [0] EXPLICIT or constructed IMPLICIT. */
  CONTEXT_0: 0xa0,
  /** [0] IMPLICIT primitive (e.g. encryptedContent as a plain OCTET STRING). */
  CONTEXT_0_PRIMITIVE: 0x80,
} as const;

/** One decoded element. `content` and `raw` are views into the input, never copies. */
export interface DerNode {
  /** The identifier octet (class, constructed bit and tag number < 31). */
  readonly tag: number;
  readonly constructed: boolean;
  /** The content octets (for an indefinite length: up to, not including, the end-of-contents). */
  readonly content: Uint8Array;
  /** The whole encoding: identifier, length and content (and end-of-contents if indefinite). */
  readonly raw: Uint8Array;
  /** Nesting depth from the outermost element (0). */
  readonly depth: number;
  /** The error code a malformed element is reported with. */
  readonly code: BdeErrorCode;
}

function fail(code: BdeErrorCode, what: string): never {
  throw new BdeError(code, `Malformed ASN.1: ${what}`);
}

/**
 * Decodes the element at `offset`. BER indefinite lengths are accepted on constructed values
 * because some PKCS#12 writers (older Java, Netscape) still emit them; the end is found by
 * walking the children, which the depth limit bounds.
 */
function decodeAt(
  buf: Uint8Array,
  offset: number,
  depth: number,
  code: BdeErrorCode,
): { node: DerNode; end: number } {
  if (depth > MAX_DEPTH) fail(code, 'nested too deeply');
  if (offset + 2 > buf.length) fail(code, 'truncated header');
  const tag = buf[offset]!;
  // High tag numbers (low five bits all set) appear nowhere in PKCS#12: refuse rather than guess.
  if ((tag & 0x1f) === 0x1f) fail(code, 'high tag number form');
  const constructed = (tag & 0x20) !== 0;
  let at = offset + 1;
  const first = buf[at++]!;
  if (first === 0x80) {
    if (!constructed) fail(code, 'indefinite length on a primitive value');
    const start = at;
    let count = 0;
    for (;;) {
      if (at + 2 > buf.length) fail(code, 'missing end-of-contents');
      if (buf[at] === 0 && buf[at + 1] === 0) break;
      if (++count > MAX_CHILDREN) fail(code, 'too many elements');
      at = decodeAt(buf, at, depth + 1, code).end;
    }
    const node = {
      tag,
      constructed,
      content: buf.subarray(start, at),
      raw: buf.subarray(offset, at + 2),
      depth,
      code,
    };
    return { node, end: at + 2 };
  }
  let length: number;
  if (first < 0x80) {
    length = first;
  } else {
    const octets = first & 0x7f;
    // Four length octets already allow 4 GiB, far beyond any buffer we are handed.
    if (octets > 4) fail(code, 'length too large');
    if (at + octets > buf.length) fail(code, 'truncated length');
    length = 0;
    for (let i = 0; i < octets; i++) length = length * 256 + buf[at++]!;
  }
  if (length > buf.length - at) fail(code, 'length beyond the end of the data');
  const end = at + length;
  return {
    node: { tag, constructed, content: buf.subarray(at, end), raw: buf.subarray(offset, end), depth, code },
    end,
  };
}

/** Decodes exactly one element spanning all of `bytes` (trailing bytes are an error). */
export function decodeDer(bytes: Uint8Array, code: BdeErrorCode, depth = 0): DerNode {
  const { node, end } = decodeAt(bytes, 0, depth, code);
  if (end !== bytes.length) fail(code, 'trailing bytes');
  return node;
}

/** The elements inside a constructed value. */
export function childrenOf(node: DerNode): DerNode[] {
  if (!node.constructed) fail(node.code, `tag 0x${node.tag.toString(16)} is not constructed`);
  const out: DerNode[] = [];
  let at = 0;
  while (at < node.content.length) {
    if (out.length >= MAX_CHILDREN) fail(node.code, 'too many elements');
    const { node: child, end } = decodeAt(node.content, at, node.depth + 1, node.code);
    out.push(child);
    at = end;
  }
  return out;
}

/** Checks the tag and returns the node, so navigation reads as one expression. */
export function expectTag(
  node: DerNode | undefined,
  tag: number,
  what: string,
  code?: BdeErrorCode,
): DerNode {
  if (!node) fail(code ?? 'ERR_BDE_INVALID_ARGUMENT', `${what} missing`);
  if (node.tag !== tag)
    fail(node.code, `${what}: expected tag 0x${tag.toString(16)}, got 0x${node.tag.toString(16)}`);
  return node;
}

/** The children of a SEQUENCE, at least `min` of them. */
export function sequence(node: DerNode | undefined, what: string, min = 0, code?: BdeErrorCode): DerNode[] {
  const seq = expectTag(node, TAG.SEQUENCE, what, code);
  const items = childrenOf(seq);
  if (items.length < min) fail(seq.code, `${what}: too few elements`);
  return items;
}

/**
 * The bytes of an OCTET STRING under any tag given: primitive, or BER constructed (segments
 * concatenated, recursively, within the depth limit).
 */
export function octets(node: DerNode): Uint8Array {
  if (!node.constructed) return node.content;
  const parts = childrenOf(node).map((child) => {
    if ((child.tag & 0xdf) !== TAG.OCTET_STRING)
      fail(node.code, 'constructed string segment is not an OCTET STRING');
    return octets(child);
  });
  return parts.length === 1 ? parts[0]! : Uint8Array.from(Buffer.concat(parts));
}

/** An OBJECT IDENTIFIER in dotted form. */
export function oid(node: DerNode | undefined, what = 'OBJECT IDENTIFIER', code?: BdeErrorCode): string {
  const { content, code: c } = expectTag(node, TAG.OID, what, code);
  if (content.length === 0 || content.length > 64) fail(c, `${what}: bad length`);
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < content.length; i++) {
    const byte = content[i]!;
    // A leading 0x80 is a non-minimal encoding; large arcs would lose precision in a number.
    if (value === 0 && byte === 0x80) fail(c, `${what}: non-minimal arc`);
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) fail(c, `${what}: arc too large`);
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
    } else if (i === content.length - 1) {
      fail(c, `${what}: truncated arc`);
    }
  }
  const head = arcs[0]!;
  const firstArc = head < 40 ? 0 : head < 80 ? 1 : 2;
  return [firstArc, head - firstArc * 40, ...arcs.slice(1)].join('.');
}

/** A non-negative INTEGER that fits a safe JS number (iteration counts, versions, key lengths). */
export function smallInteger(node: DerNode | undefined, what: string, code?: BdeErrorCode): number {
  const { content, code: c } = expectTag(node, TAG.INTEGER, what, code);
  if (content.length === 0) fail(c, `${what}: empty INTEGER`);
  if ((content[0]! & 0x80) !== 0) fail(c, `${what}: negative INTEGER`);
  let value = 0;
  for (const byte of content) {
    value = value * 256 + byte;
    if (value > Number.MAX_SAFE_INTEGER) fail(c, `${what}: INTEGER too large`);
  }
  return value;
}

/** Decodes an element without throwing: null when `bytes` is not one well-formed element. */
export function tryDecodeDer(bytes: Uint8Array, code: BdeErrorCode): DerNode | null {
  try {
    return decodeDer(bytes, code);
  } catch {
    return null;
  }
}
