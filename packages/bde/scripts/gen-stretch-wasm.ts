/**
 * Generates src/crypto/stretch-sha256-wasm.ts: the same specialised key-stretch loop as
 * gen-stretch-sha256.ts, as a WebAssembly module whose bytes this script writes itself (no
 * toolchain: a small binary encoder is below). Run `npx tsx packages/bde/scripts/gen-stretch-wasm.ts`
 * from the repository root; it rewrites the file, formats it with Prettier, and first checks the
 * module against node:crypto.
 *
 * Why WebAssembly: the JS loop's steady state is fine (TurboFan turns `(x >>> n) | (x << 32 - n)`
 * into one rotate; this module's optimised code has about as many instructions per iteration), but
 * the JS loop only gets there after type feedback, warm-up calls and a long optimisation, while a
 * wasm function is compiled at instantiation (Liftoff, at once) and optimised in the background
 * (TurboFan, ~20 ms on a quiet machine here), with no type feedback and nothing to deoptimise.
 * That is what a CLI process, which derives one key, pays for; see bench/RESULTS.md.
 *
 * The folding is the JS generator's: values are LIT (known now: constants, padding, bit length),
 * INV (depend only on the initial hash and salt: computed once per call, before the loop) or VAR
 * (change every iteration). Block 1 (last | initial) gets its initial-hash schedule terms and K+W
 * sums precomputed and its first rounds fold the IV; block 2 (salt | counter | padding) computes
 * only what depends on the counter word. Round formulas are the JS generator's too, measured again
 * for wasm: the textbook Σ (three independent rotations) ran 2.8x slower under V8's register
 * allocator, and computing T1 once beats folding it into both sums.
 *
 * The module (no imports) exports `memory` (one 64 KiB page) and
 * `stretch(start: i32, end: i32)`. Memory bytes [0, 80) hold the first 80 bytes of the 88-byte
 * state exactly as the specification lays them out: [0, 32) last, [32, 64) initial hash, [64, 80)
 * salt. `stretch` runs iterations start, start+1, ... up to end - 1 (mod 2^32, so end 2^32 is passed
 * as 0; start == end does nothing) and leaves the new `last` in [0, 32). Bytes are byte-swapped in
 * wasm, so the caller only copies bytes, whatever the host's endianness.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IV, K } from './sha256-tables.js';

// ---------------------------------------------------------------------------------------------
// 1. Symbolic SHA-256: a DAG of int32 operations, folded where constant.

const LIT = 0;
const INV = 1;
const VAR = 2;
type Kind = typeof LIT | typeof INV | typeof VAR;
type Op = 'lit' | 'local' | 'add' | 'xor' | 'and' | 'shr_u' | 'rotr';

interface Node {
  id: number;
  op: Op;
  kind: Kind;
  args: Node[];
  /** The value of a literal; the shift count of shifts and rotations. */
  n: number;
  /** A named local (inputs, the loop-carried `last` words, the counter). */
  name?: string;
  /** Materialised into a local where it is defined: in the loop body (VAR) or before the loop (INV). */
  stmt?: boolean;
}

let ids = 0;
function node(op: Op, kind: Kind, args: Node[], n = 0, name?: string): Node {
  return { id: ids++, op, kind, args, n: n | 0, name };
}
const lit = (n: number): Node => node('lit', LIT, [], n);
const local = (name: string, kind: Kind): Node => node('local', kind, [], 0, name);
const maxKind = (vs: Node[]): Kind => vs.reduce<Kind>((k, v) => (v.kind > k ? v.kind : k), LIT);

const rotr32 = (x: number, n: number): number => (x >>> n) | (x << (32 - n)) | 0;
const fold: Record<'xor' | 'and', (a: number, b: number) => number> = {
  xor: (a, b) => a ^ b,
  and: (a, b) => a & b,
};
function bin(op: 'xor' | 'and', a: Node, b: Node): Node {
  if (a.kind === LIT && b.kind === LIT) return lit(fold[op](a.n, b.n));
  return node(op, maxKind([a, b]), [a, b]);
}
const xor = (a: Node, b: Node): Node => bin('xor', a, b);
const and = (a: Node, b: Node): Node => bin('and', a, b);
function shift(op: 'shr_u' | 'rotr', x: Node, n: number): Node {
  if (x.kind === LIT) return lit(op === 'rotr' ? rotr32(x.n, n) : x.n >>> n);
  return node(op, x.kind, [x], n);
}
const rotr = (x: Node, n: number): Node => shift('rotr', x, n);
const shr = (x: Node, n: number): Node => shift('shr_u', x, n);

/** A lazy sum mod 2^32: literals fold now, nested sums flatten unless materialised. */
function add(...vs: Node[]): Node {
  let l = 0;
  const rest: Node[] = [];
  for (const v of vs) {
    if (v.kind === LIT) l = (l + v.n) | 0;
    else if (v.op === 'add' && !v.stmt) {
      for (const a of v.args) {
        if (a.kind === LIT) l = (l + a.n) | 0;
        else rest.push(a);
      }
    } else rest.push(v);
  }
  if (rest.length === 0) return lit(l);
  if (rest.length === 1 && l === 0) return rest[0]!;
  return node('add', maxKind(rest), l === 0 ? rest : [...rest, lit(l)]);
}

const prologueStmts: Node[] = [];
const bodyStmts: Node[] = [];
/** Compute `v` into a local at this point (before the loop if it is loop-invariant). */
function atom(v: Node): Node {
  if (v.op === 'lit' || v.op === 'local' || v.stmt) return v;
  v.stmt = true;
  (v.kind === INV ? prologueStmts : bodyStmts).push(v);
  return v;
}

// Σ and σ as chained rotations (as OpenSSL and the JS generator do):
// rotr(x ^ rotr(x ^ rotr(x, c), b), a) = rotr(x, a) ^ rotr(x, a + b) ^ rotr(x, a + b + c). x86's
// rotate overwrites its operand, so three independent rotations of x cost three register copies
// (or three reloads of a spilled x); the chain needs one.
const xorRot = (x: Node, y: Node, n: number): Node => xor(x, rotr(y, n));
const bigSigma0 = (x: Node): Node => rotr(xorRot(x, xorRot(x, x, 9), 11), 2);
const bigSigma1 = (x: Node): Node => rotr(xorRot(x, xorRot(x, x, 14), 5), 6);
const smallSigma0 = (x: Node): Node => xor(rotr(xorRot(x, x, 11), 7), shr(x, 3));
const smallSigma1 = (x: Node): Node => xor(rotr(xorRot(x, x, 2), 17), shr(x, 10));

/** One compression from `state` (8 values) over `w0` (16 words); returns the state before feed-forward. */
function compress(state: Node[], w0: Node[]): Node[] {
  const w = [...w0];
  let [a, b, c, d, e, f, g, h] = state.map(atom) as [Node, Node, Node, Node, Node, Node, Node, Node];
  let bc = xor(b, c);
  for (let t = 0; t < 64; t++) {
    if (t >= 16) w[t] = atom(add(smallSigma1(w[t - 2]!), w[t - 7]!, smallSigma0(w[t - 15]!), w[t - 16]!));
    // Ch(e, f, g) = g ^ (e & (f ^ g)); Maj(a, b, c) = b ^ ((a ^ b) & (b ^ c)), a ^ b reused next round.
    const chv = xor(g, and(e, xor(f, g)));
    let t1 = add(h, lit(K[t]!), w[t]!, bigSigma1(e), chv);
    // A sum with two or more changing terms is computed once; otherwise it is cheaper to fold it
    // into both users (its constant part joins theirs).
    if (t1.op === 'add' && t1.args.filter((x) => x.kind === VAR).length >= 2) t1 = atom(t1);
    const ab = xor(a, b);
    const newA = atom(add(t1, bigSigma0(a), xor(b, and(ab, bc))));
    const newE = atom(add(d, t1));
    bc = ab;
    [a, b, c, d, e, f, g, h] = [newA, a, b, c, newE, e, f, g];
  }
  return [a, b, c, d, e, f, g, h];
}

// Block 1: last (carried from the previous iteration) | initial hash.
const last = Array.from({ length: 8 }, (_, j) => local(`l${j}`, VAR));
const initial = Array.from({ length: 8 }, (_, j) => local(`i${j}`, INV));
const out1 = compress(IV.map(lit), [...last, ...initial]);
const h1 = out1.map((v, j) => atom(add(v, lit(IV[j]!))));
// Block 2: salt | u64 LE counter, read big-endian (ctr, then 0 below 2^32) | 0x80 | zeros | 704.
const salt = Array.from({ length: 4 }, (_, j) => local(`s${j}`, INV));
const ctr = local('ctr', VAR);
const w2 = [...salt, ctr, lit(0), lit(0x80000000), ...Array.from({ length: 8 }, () => lit(0)), lit(88 * 8)];
const out2 = compress(h1, w2);
const newLast = out2.map((v, j) => add(v, h1[j]!));

// ---------------------------------------------------------------------------------------------
// 2. Hoisting: in a changing sum, the invariant and literal terms become one precomputed local;
//    any other invariant expression a changing one reads is computed before the loop.

const normalised = new Set<Node>();
function hoist(v: Node): void {
  if (v.kind !== VAR || normalised.has(v)) return;
  normalised.add(v);
  if (v.op === 'add') {
    const fixed = v.args.filter((a) => a.kind !== VAR);
    if (fixed.length >= 2 || fixed.some((a) => a.kind === INV && a.op !== 'local' && !a.stmt)) {
      const k = add(...fixed);
      v.args = [...v.args.filter((a) => a.kind === VAR), k];
    }
  }
  for (const a of v.args) {
    if (a.kind === INV) atom(a);
    else hoist(a);
  }
}
for (const s of bodyStmts) hoist(s);
newLast.forEach(hoist);
// Prologue statements in creation order, which is a topological order.
prologueStmts.sort((x, y) => x.id - y.id);

/** Estimated cycle, within an iteration, at which a value is ready (unit latency): sums add their
 * latest terms last, so the long dependency chains (Σ1(e) into the next e) end with one addition. */
const ready = new Map<Node, number>();
function readyAt(v: Node): number {
  if (v.kind !== VAR || v.op === 'local') return 0;
  let r = ready.get(v);
  if (r === undefined) {
    r = Math.max(...v.args.map(readyAt)) + (v.op === 'add' ? v.args.length - 1 : 1);
    ready.set(v, r);
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// 3. Code generation: expression trees on the operand stack; statements and values used twice go
//    through locals (virtual here, packed into few real locals below).

type Ins = { op: string; imm?: number; v?: string };
const code: Ins[] = [];
const emit = (op: string, imm?: number): void => void code.push({ op, imm });
const get = (v: string): void => void code.push({ op: 'local.get', v });
const set = (v: string, tee = false): void => void code.push({ op: tee ? 'local.tee' : 'local.set', v });

/** Where a node's value lives once computed. */
const home = new Map<Node, string>();
const vname = (v: Node): string => v.name ?? `v${v.id}`;

/** Count tree references, to know which non-statement values need a local. */
const uses = new Map<Node, number>();
function count(v: Node, root: boolean): void {
  if (!root && (v.stmt || v.op === 'local' || v.op === 'lit')) return;
  const n = uses.get(v) ?? 0;
  uses.set(v, n + 1);
  if (n > 0) return;
  for (const a of v.args) count(a, false);
}

function expr(v: Node): void {
  const at = home.get(v);
  if (at !== undefined) return get(at);
  switch (v.op) {
    case 'lit':
      return emit('i32.const', v.n);
    case 'local':
      throw new Error(`local ${v.name} read before it is set`);
    case 'add': {
      const [first, ...rest] = [...v.args].sort((x, y) => readyAt(x) - readyAt(y) || x.id - y.id);
      expr(first!);
      for (const a of rest) {
        expr(a);
        emit('i32.add');
      }
      break;
    }
    case 'xor':
    case 'and':
      expr(v.args[0]!);
      expr(v.args[1]!);
      emit(`i32.${v.op}`);
      break;
    default:
      expr(v.args[0]!);
      emit('i32.const', v.n);
      emit(`i32.${v.op}`);
  }
  if ((uses.get(v) ?? 0) > 1) {
    home.set(v, vname(v));
    set(vname(v), true);
  }
}
function statement(v: Node): void {
  expr(v);
  home.set(v, vname(v));
  set(vname(v));
}

/** bswap32 of the value on the stack, which is also in local `tmp`. */
function bswapFrom(tmp: string): void {
  // (rotr(x, 8) & 0xff00ff00) | (rotl(x, 8) & 0x00ff00ff)
  emit('i32.const', 8);
  emit('i32.rotr');
  emit('i32.const', 0xff00ff00);
  emit('i32.and');
  get(tmp);
  emit('i32.const', 8);
  emit('i32.rotl');
  emit('i32.const', 0x00ff00ff);
  emit('i32.and');
  emit('i32.or');
}
/** Load the big-endian word at `offset` into local `name`. */
function loadWord(name: string, offset: number): void {
  emit('i32.const', 0);
  code.push({ op: 'i32.load', imm: offset });
  set(name, true);
  bswapFrom(name);
  set(name);
}

for (const s of prologueStmts) count(s, true);
for (const s of bodyStmts) count(s, true);
for (const v of newLast) count(v, true);
for (const v of [...initial, ...salt, ...last, ctr]) home.set(v, v.name!);

// Parameters: start (the counter, `i`) and end.
initial.forEach((v, j) => loadWord(v.name!, 32 + 4 * j));
salt.forEach((v, j) => loadWord(v.name!, 64 + 4 * j));
prologueStmts.forEach(statement);
last.forEach((v, j) => loadWord(v.name!, 4 * j));
const loopStart = code.length;
emit('block');
get('i');
get('end');
emit('i32.eq');
emit('br_if', 0);
emit('loop');
// The counter's low 32 bits, as SHA-256 reads them (big-endian); the high word is 0 below 2^32.
get('i');
set('ctr', true);
bswapFrom('ctr');
set('ctr');
bodyStmts.forEach(statement);
// All eight new words on the stack before any `last` is overwritten.
newLast.forEach(expr);
for (let j = 7; j >= 0; j--) set(`l${j}`);
get('i');
emit('i32.const', 1);
emit('i32.add');
set('i', true);
get('end');
emit('i32.ne');
emit('br_if', 0);
emit('end');
emit('end');
const loopEnd = code.length;
for (let j = 0; j < 8; j++) {
  emit('i32.const', 0);
  get(`l${j}`);
  set('tmp', true);
  bswapFrom('tmp');
  code.push({ op: 'i32.store', imm: 4 * j });
}

// Pack virtual locals: the parameters, the `last` words and every value computed before the loop
// and read in it keep their own local; the rest share locals once their last read has passed
// (the body is straight-line, and nothing but `last` and `i` crosses iterations).
const firstAt = new Map<string, number>();
const lastAt = new Map<string, number>();
code.forEach((ins, k) => {
  if (ins.v === undefined) return;
  if (!firstAt.has(ins.v)) firstAt.set(ins.v, k);
  lastAt.set(ins.v, k);
});
const pinned = new Set(['i', 'end', ...last.map((v) => v.name!)]);
for (const [v, first] of firstAt) if (first < loopStart && lastAt.get(v)! > loopStart) pinned.add(v);
// Loop-carried and pinned values live until the end of the loop at least.
for (const v of pinned) lastAt.set(v, Math.max(lastAt.get(v)!, loopEnd));
const index = new Map<string, number>([
  ['i', 0],
  ['end', 1],
]);
let locals = 2;
for (const v of pinned) if (!index.has(v)) index.set(v, locals++);
const free: number[] = [];
code.forEach((ins, k) => {
  if (ins.v === undefined) return;
  if (!index.has(ins.v)) index.set(ins.v, free.pop() ?? locals++);
  if (lastAt.get(ins.v) === k && !pinned.has(ins.v)) free.push(index.get(ins.v)!);
});

// ---------------------------------------------------------------------------------------------
// 4. The binary encoder (WebAssembly core spec §5).

const OPCODES: Record<string, number> = {
  block: 0x02,
  loop: 0x03,
  end: 0x0b,
  br_if: 0x0d,
  'local.get': 0x20,
  'local.set': 0x21,
  'local.tee': 0x22,
  'i32.load': 0x28,
  'i32.store': 0x36,
  'i32.const': 0x41,
  'i32.eq': 0x46,
  'i32.ne': 0x47,
  'i32.add': 0x6a,
  'i32.and': 0x71,
  'i32.or': 0x72,
  'i32.xor': 0x73,
  'i32.shr_u': 0x76,
  'i32.rotl': 0x77,
  'i32.rotr': 0x78,
};
const I32 = 0x7f;
const EMPTY_BLOCK = 0x40;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
function sleb(n: number): number[] {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (b & 0x40) === 0) || (v === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
}
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const name = (s: string): number[] => vec([...Buffer.from(s, 'utf8')].map((b) => [b]));
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

const fn: number[] = [...vec([[...uleb(locals - 2), I32]])];
for (const ins of code) {
  const opcode = OPCODES[ins.op];
  if (opcode === undefined) throw new Error(`no opcode for ${ins.op}`);
  fn.push(opcode);
  if (ins.v !== undefined) fn.push(...uleb(index.get(ins.v)!));
  else if (ins.op === 'i32.const') fn.push(...sleb(ins.imm!));
  else if (ins.op === 'block' || ins.op === 'loop') fn.push(EMPTY_BLOCK);
  else if (ins.op === 'br_if') fn.push(...uleb(ins.imm!));
  // memarg: alignment 2^2, then the offset
  else if (ins.op === 'i32.load' || ins.op === 'i32.store') fn.push(2, ...uleb(ins.imm!));
}
fn.push(OPCODES.end!);

const wasm = Uint8Array.from([
  ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
  ...section(1, vec([[0x60, ...vec([[I32], [I32]]), ...vec([])]])), // type 0: (i32, i32) -> ()
  ...section(3, vec([uleb(0)])), // function 0 has type 0
  ...section(5, vec([[0x01, ...uleb(1), ...uleb(1)]])), // memory 0: exactly 1 page
  ...section(
    7,
    vec([
      [...name('memory'), 0x02, ...uleb(0)],
      [...name('stretch'), 0x00, ...uleb(0)],
    ]),
  ),
  ...section(10, vec([[...uleb(fn.length), ...fn]])),
]);

// ---------------------------------------------------------------------------------------------
// 5. Check against the specification on node:crypto, then write the module.

function reference(initialHash: Buffer, saltBytes: Buffer, from: number, to: number, start: Buffer): Buffer {
  const state = Buffer.alloc(88);
  start.copy(state, 0);
  initialHash.copy(state, 32);
  saltBytes.copy(state, 64);
  for (let i = from; i !== to; i = (i + 1) % 2 ** 32) {
    state.writeUInt32LE(i, 80);
    createHash('sha256').update(state).digest().copy(state, 0);
  }
  return state.subarray(0, 32);
}
{
  const instance = new WebAssembly.Instance(new WebAssembly.Module(wasm));
  const memory = new Uint8Array((instance.exports.memory as WebAssembly.Memory).buffer);
  const stretch = instance.exports.stretch as (start: number, end: number) => void;
  const initialHash = createHash('sha256').update('initial').digest();
  const saltBytes = createHash('sha256').update('salt').digest().subarray(0, 16);
  // Counters around the byte boundaries and the wrap at 2^32.
  for (const [from, to] of [
    [0, 0],
    [0, 1],
    [0, 300],
    [65530, 65540],
    [0xfffffff0, 0],
  ] as const) {
    const start = createHash('sha256').update(`${from}`).digest();
    memory.set(start, 0);
    memory.set(initialHash, 32);
    memory.set(saltBytes, 64);
    stretch(from | 0, to | 0);
    const want = reference(initialHash, saltBytes, from, to, start);
    const got = Buffer.from(memory.subarray(0, 32));
    if (!got.equals(want))
      throw new Error(`wasm stretch ${from}..${to}: ${got.toString('hex')} != ${want.toString('hex')}`);
  }
}

const b64 = Buffer.from(wasm).toString('base64');
const lines = b64.match(/.{1,100}/g)!;
const src = `/**
 * GENERATED by packages/bde/scripts/gen-stretch-wasm.ts; do not edit, rerun the script.
 * BitLocker's key-stretch loop (bde-format.md §3.5) as a WebAssembly module (${wasm.length} bytes):
 * unrolled SHA-256 specialised for the 88-byte message, loop-invariant terms hoisted.
 *
 * Exports \`memory\` (1 page) and \`stretch(start, end)\`: memory [0, 32) is \`last\`, [32, 64) the
 * initial hash, [64, 80) the salt (the state's bytes as the specification lays them out); it runs
 * counters start .. end - 1 (mod 2^32; start == end does nothing) and leaves the new \`last\` in
 * [0, 32).
 */
export const STRETCH_SHA256_WASM_BASE64 = [
${lines.map((l) => `  '${l}',`).join('\n')}
].join('');
`;
const target = fileURLToPath(new URL('../src/crypto/stretch-sha256-wasm.ts', import.meta.url));
writeFileSync(target, src);
execFileSync('npx', ['prettier', '--write', target], { stdio: 'inherit' });
console.log(`${wasm.length} bytes, ${locals} locals, ${code.length} instructions`);
