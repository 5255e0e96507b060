/** BitLocker's key stretch (bde-format.md §3.5): 2^20 chained SHA-256 over an 88-byte state. */
import { STRETCH_SHA256_WASM_BASE64 } from './stretch-sha256-wasm.js';
import { stretchSha256Chunk } from './stretch-sha256.js';

export const STRETCH_ITERATIONS = 0x100000;

/** The stretch with a chosen iteration count: (initial hash, salt, iterations) → 32-byte key. */
export type StretchFunction = (initialHash: Uint8Array, salt: Uint8Array, iterations: number) => Uint8Array;

/** A stretch implementation and which one it is. */
export interface KeyStretcher {
  readonly kind: 'wasm' | 'js';
  readonly stretch: StretchFunction;
}

/** The part of the `WebAssembly` namespace the stretch needs; injectable so tests can take it away. */
export interface WasmApi {
  Module: new (bytes: Uint8Array<ArrayBuffer>) => object;
  Instance: new (module: object) => { exports: object };
}

function checkArguments(initialHash: Uint8Array, salt: Uint8Array, iterations: number): void {
  if (initialHash.length !== 32 || salt.length !== 16) {
    throw new RangeError('stretchKey needs a 32-byte hash and a 16-byte salt');
  }
  // The counter is a u64 but both loops only carry its low 32 bits.
  if (!Number.isSafeInteger(iterations) || iterations < 0 || iterations > 2 ** 32) {
    throw new RangeError('stretch iterations must be an integer in [0, 2^32]');
  }
}

// The first WARM_UP calls into the unrolled loop run one iteration each: V8 allocates a function's
// type-feedback vector only after a few calls, and optimising before every line has feedback gives
// code that deoptimises on each return (see stretchSha256Chunk). Then CHUNK iterations per call:
// small enough that V8 optimises the whole function after a few calls, large enough that the
// per-call prologue is noise.
const WARM_UP = 16;
const CHUNK = 2048;

/** The stretch in JavaScript (stretch-sha256.ts): the fallback when WebAssembly is unavailable. */
export function stretchKeyIterationsJs(
  initialHash: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Uint8Array {
  checkArguments(initialHash, salt, iterations);
  // [0, 8) last (starts at zero), [8, 16) initial hash, [16, 20) salt, as big-endian words.
  const words = new Int32Array(20);
  const initialView = new DataView(initialHash.buffer, initialHash.byteOffset, 32);
  const saltView = new DataView(salt.buffer, salt.byteOffset, 16);
  for (let j = 0; j < 8; j++) words[8 + j] = initialView.getInt32(j * 4);
  for (let j = 0; j < 4; j++) words[16 + j] = saltView.getInt32(j * 4);
  for (let start = 0, size = 1; start < iterations; start += size, size = start < WARM_UP ? 1 : CHUNK) {
    stretchSha256Chunk(words, start, Math.min(iterations, start + size));
  }
  const out = new Uint8Array(32);
  const view = new DataView(out.buffer);
  for (let j = 0; j < 8; j++) view.setInt32(j * 4, words[j]!);
  return out;
}

// Iterations per call into the wasm loop. V8 runs a new module's code from its baseline compiler
// (Liftoff, ~10x slower here) while it optimises the function in the background, and a running call
// does not switch over (no on-stack replacement for wasm): short calls pick up the optimised code
// within ~1,000 iterations of it being ready, and cost ~0.1 µs each.
const WASM_CHUNK = 1024;

/** Compile and instantiate the stretch module; undefined if this engine cannot. */
function instantiateWasm(wasm: WasmApi): StretchFunction | undefined {
  let memory: Uint8Array;
  let run: (start: number, end: number) => void;
  try {
    const bytes = Buffer.from(STRETCH_SHA256_WASM_BASE64, 'base64');
    const exports = new wasm.Instance(new wasm.Module(bytes)).exports as {
      memory?: unknown;
      stretch?: unknown;
    };
    const buffer = (exports.memory as { buffer?: unknown } | undefined)?.buffer;
    if (typeof exports.stretch !== 'function' || !(buffer instanceof ArrayBuffer) || buffer.byteLength < 80) {
      return undefined;
    }
    // One page, never grown, so the view stays valid.
    memory = new Uint8Array(buffer, 0, 80);
    run = exports.stretch as (start: number, end: number) => void;
  } catch {
    return undefined;
  }
  return (initialHash, salt, iterations) => {
    checkArguments(initialHash, salt, iterations);
    // The module reads the state's first 80 bytes as laid out in the spec: last | initial | salt.
    memory.fill(0, 0, 32);
    memory.set(initialHash, 32);
    memory.set(salt, 64);
    // Counters are passed mod 2^32 (`| 0`): an end of 2^32 arrives as 0, which the loop reaches.
    for (let start = 0; start < iterations; start += WASM_CHUNK) {
      run(start | 0, Math.min(iterations, start + WASM_CHUNK) | 0);
    }
    const out = memory.slice(0, 32);
    // The module's memory lives as long as the process: leave no key material in it.
    memory.fill(0);
    return out;
  };
}

/**
 * The stretch on WebAssembly when `wasm` can compile and instantiate the module, else the
 * JavaScript loop. `stretchKey` uses `createStretcher(globalThis.WebAssembly)`, made once per
 * process (per thread) on first use; tests pass their own namespace, or none.
 */
export function createStretcher(wasm: WasmApi | undefined): KeyStretcher {
  const stretch = wasm ? instantiateWasm(wasm) : undefined;
  return stretch ? { kind: 'wasm', stretch } : { kind: 'js', stretch: stretchKeyIterationsJs };
}

let defaultStretcher: KeyStretcher | undefined;
/** The implementation `stretchKey` uses in this process: WebAssembly unless unavailable (`node --jitless`). */
export function keyStretcher(): KeyStretcher {
  defaultStretcher ??= createStretcher((globalThis as { WebAssembly?: WasmApi }).WebAssembly);
  return defaultStretcher;
}

/**
 * The stretch with a chosen iteration count, so tests can cross-check short runs against a plain
 * node:crypto loop. Not exported from the package index.
 */
export function stretchKeyIterations(
  initialHash: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Uint8Array {
  return keyStretcher().stretch(initialHash, salt, iterations);
}

/**
 * Stretch a 32-byte initial hash with a 16-byte salt into a 32-byte AES-256 key.
 * Generated code (WebAssembly, or JavaScript where wasm is unavailable): node:crypto's per-call
 * overhead costs more than the hashing itself here.
 */
export function stretchKey(initialHash: Uint8Array, salt: Uint8Array): Uint8Array {
  return stretchKeyIterations(initialHash, salt, STRETCH_ITERATIONS);
}
