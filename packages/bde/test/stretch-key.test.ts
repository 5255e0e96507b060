// The key stretch against bde-format.md §3.5's vectors and against a plain node:crypto loop, on
// WebAssembly (what stretchKey uses) and on the JavaScript fallback.
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  createStretcher,
  keyStretcher,
  STRETCH_ITERATIONS,
  stretchKey,
  stretchKeyIterations,
  stretchKeyIterationsJs,
  type WasmApi,
} from '../src/crypto/stretch-key.js';
import { STRETCH_SHA256_WASM_BASE64 } from '../src/crypto/stretch-sha256-wasm.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

/**
 * The specification read literally: the slow reference the unrolled code must match. Counters
 * `from` to `to` - 1, starting from `last` (zero by default).
 */
function stretchKeyReference(
  initialHash: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  from = 0,
  last: Uint8Array = new Uint8Array(32),
): Uint8Array {
  const state = Buffer.alloc(88);
  state.set(last, 0);
  state.set(initialHash, 32);
  state.set(salt, 64);
  for (let i = from; i < from + iterations; i++) {
    state.writeUInt32LE(i % 2 ** 32, 80);
    state.writeUInt32LE(Math.floor(i / 2 ** 32), 84);
    createHash('sha256').update(state).digest().copy(state, 0);
  }
  return new Uint8Array(state.subarray(0, 32));
}

const VECTORS = [
  {
    name: 'recovery password (aes-xts-128)',
    initial: 'fdd303817e456f7a4b64a7063ae00be752a46841e57da98caf8522f136cb3411',
    salt: '2ba080989af9b50c203aaebd0b40d498',
    key: '1a39f926dab83e947fa85125b91e556e9ecc2bc5968924e03de234878d1fd4bd',
  },
  {
    name: 'user password (anaconda)',
    initial: '0d6cbf9e5d75af220d7ac3e9f35d05f56952608dd1dacb31774452c489eadc51',
    salt: '8d7637cc5d885d5ff4f748dbc8440d2e',
    key: '37554410c6e0df5b4fe096259f4a21b847338d3e8d8d8d8c30012d1447cca957',
  },
];

describe('stretchKey', () => {
  it('matches the recovery-password vector (aes-xts-128)', () => {
    const key = unhex('be531d7f315abf04a0553557c67932d2');
    const initial = createHash('sha256').update(key).digest();
    expect(hex(initial)).toBe('fdd303817e456f7a4b64a7063ae00be752a46841e57da98caf8522f136cb3411');
    expect(hex(stretchKey(initial, unhex('2ba080989af9b50c203aaebd0b40d498')))).toBe(
      '1a39f926dab83e947fa85125b91e556e9ecc2bc5968924e03de234878d1fd4bd',
    );
  });

  it('matches the user-password vector (anaconda)', () => {
    const initial = unhex('0d6cbf9e5d75af220d7ac3e9f35d05f56952608dd1dacb31774452c489eadc51');
    expect(hex(stretchKey(initial, unhex('8d7637cc5d885d5ff4f748dbc8440d2e')))).toBe(
      '37554410c6e0df5b4fe096259f4a21b847338d3e8d8d8d8c30012d1447cca957',
    );
  });

  it('uses the full iteration count', () => {
    expect(STRETCH_ITERATIONS).toBe(2 ** 20);
  });

  it('matches the node:crypto reference on random inputs', () => {
    // Counts around the chunk sizes (wasm 1024, JS 2048) and byte boundaries of the counter.
    for (const iterations of [0, 1, 2, 3, 17, 255, 256, 257, 1023, 1024, 1025, 2047, 2048, 2049, 5000]) {
      const initial = randomBytes(32);
      const salt = randomBytes(16);
      expect(hex(stretchKeyIterations(initial, salt, iterations)), `${iterations} iterations`).toBe(
        hex(stretchKeyReference(initial, salt, iterations)),
      );
    }
  });

  it('matches the reference across the counter byte that changes at 65536', () => {
    const initial = randomBytes(32);
    const salt = randomBytes(16);
    expect(hex(stretchKeyIterations(initial, salt, 70_000))).toBe(
      hex(stretchKeyReference(initial, salt, 70_000)),
    );
  });

  it('matches the full reference on one random input', () => {
    const initial = randomBytes(32);
    const salt = randomBytes(16);
    expect(hex(stretchKey(initial, salt))).toBe(hex(stretchKeyReference(initial, salt, STRETCH_ITERATIONS)));
  });

  it('rejects wrong sizes and counts', () => {
    expect(() => stretchKey(new Uint8Array(31), new Uint8Array(16))).toThrow(RangeError);
    expect(() => stretchKey(new Uint8Array(32), new Uint8Array(15))).toThrow(RangeError);
    expect(() => stretchKeyIterations(new Uint8Array(32), new Uint8Array(16), -1)).toThrow(RangeError);
    expect(() => stretchKeyIterations(new Uint8Array(32), new Uint8Array(16), 1.5)).toThrow(RangeError);
  });
});

const wasmStretcher = createStretcher(WebAssembly);
const jsStretcher = createStretcher(undefined);

describe('stretch implementations: WebAssembly and the JavaScript fallback', () => {
  it('stretchKey runs on WebAssembly in Node', () => {
    expect(keyStretcher().kind).toBe('wasm');
    expect(wasmStretcher.kind).toBe('wasm');
    expect(jsStretcher.kind).toBe('js');
  });

  it('agree with each other and the reference on random inputs', () => {
    for (const iterations of [0, 1, 5, 1023, 1024, 1025, 3000]) {
      const initial = randomBytes(32);
      const salt = randomBytes(16);
      const want = hex(stretchKeyReference(initial, salt, iterations));
      expect(hex(wasmStretcher.stretch(initial, salt, iterations)), `wasm, ${iterations}`).toBe(want);
      expect(hex(jsStretcher.stretch(initial, salt, iterations)), `js, ${iterations}`).toBe(want);
    }
  });

  it('accept byte arrays at any offset', () => {
    const backing = randomBytes(32 + 16 + 3);
    const initial = new Uint8Array(backing.buffer, backing.byteOffset + 1, 32);
    const salt = new Uint8Array(backing.buffer, backing.byteOffset + 34, 16);
    const want = hex(stretchKeyReference(initial, salt, 100));
    expect(hex(wasmStretcher.stretch(initial, salt, 100))).toBe(want);
    expect(hex(jsStretcher.stretch(initial, salt, 100))).toBe(want);
  });

  for (const v of VECTORS) {
    it(`both give the ${v.name} vector (full 2^20)`, () => {
      for (const s of [wasmStretcher, jsStretcher]) {
        expect(hex(s.stretch(unhex(v.initial), unhex(v.salt), STRETCH_ITERATIONS)), s.kind).toBe(v.key);
      }
    });
  }

  it('the wasm module carries the counter through 2^32 (mod 2^32, an end of 2^32 passed as 0)', () => {
    const exports = new WebAssembly.Instance(
      new WebAssembly.Module(Buffer.from(STRETCH_SHA256_WASM_BASE64, 'base64')),
    ).exports as { memory: WebAssembly.Memory; stretch: (start: number, end: number) => void };
    const memory = new Uint8Array(exports.memory.buffer);
    const [last, initial, salt] = [randomBytes(32), randomBytes(32), randomBytes(16)];
    memory.set(last, 0);
    memory.set(initial, 32);
    memory.set(salt, 64);
    exports.stretch(0xfffffff0 | 0, 0);
    expect(hex(memory.subarray(0, 32))).toBe(hex(stretchKeyReference(initial, salt, 16, 0xfffffff0, last)));
    exports.stretch(5, 5); // start == end: nothing
    expect(hex(memory.subarray(0, 32))).toBe(hex(stretchKeyReference(initial, salt, 16, 0xfffffff0, last)));
  });

  it('falls back to JavaScript when WebAssembly is missing or fails', () => {
    const fails = (part: 'Module' | 'Instance'): WasmApi => ({
      Module:
        part === 'Module'
          ? class {
              constructor() {
                throw new Error('WebAssembly.Module(): Wasm code generation disallowed by embedder');
              }
            }
          : WebAssembly.Module,
      Instance:
        part === 'Instance'
          ? class {
              exports = {};
              constructor() {
                throw new RangeError('WebAssembly.Instance(): Out of memory');
              }
            }
          : WebAssembly.Instance,
    });
    // Instantiates, but without the exports the stretch needs.
    const empty: WasmApi = {
      Module: WebAssembly.Module,
      Instance: class {
        exports = {};
      },
    };
    const initial = randomBytes(32);
    const salt = randomBytes(16);
    const want = hex(stretchKeyReference(initial, salt, 40));
    for (const api of [undefined, fails('Module'), fails('Instance'), empty]) {
      const s = createStretcher(api);
      expect(s.kind).toBe('js');
      expect(s.stretch).toBe(stretchKeyIterationsJs);
      expect(hex(s.stretch(initial, salt, 40))).toBe(want);
    }
  });

  it('both reject wrong sizes and counts', () => {
    for (const s of [wasmStretcher, jsStretcher]) {
      expect(() => s.stretch(new Uint8Array(31), new Uint8Array(16), 1)).toThrow(RangeError);
      expect(() => s.stretch(new Uint8Array(32), new Uint8Array(16), 2 ** 32 + 1)).toThrow(RangeError);
    }
  });

  it('node --jitless (no WebAssembly) uses the JavaScript loop', () => {
    const source = fileURLToPath(new URL('../src/crypto/stretch-key.ts', import.meta.url));
    const script = `const m = await import(${JSON.stringify(source)});
const s = m.keyStretcher();
console.log(s.kind, Buffer.from(s.stretch(new Uint8Array(32), new Uint8Array(16), 3)).toString('hex'));`;
    const r = spawnSync(
      process.execPath,
      ['--jitless', '--import', 'tsx', '--input-type=module', '-e', script],
      {
        encoding: 'utf8',
        cwd: fileURLToPath(new URL('../../..', import.meta.url)),
      },
    );
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.stdout.trim()).toBe(`js ${hex(stretchKeyReference(new Uint8Array(32), new Uint8Array(16), 3))}`);
  });
});
