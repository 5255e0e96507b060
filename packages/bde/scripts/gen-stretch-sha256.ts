/**
 * Generates src/crypto/stretch-sha256.ts: BitLocker's key-stretch loop as fully unrolled SHA-256
 * specialised for its fixed 88-byte message. Run `npx tsx packages/bde/scripts/gen-stretch-sha256.ts`
 * from the repository root; it rewrites the file and formats it with Prettier.
 *
 * Why generate: the stretch is 2^20 chained hashes, so per-call overhead of node:crypto dominates.
 * Straight-line int32 code with everything in locals lets V8 keep the state in registers, and a tiny
 * symbolic evaluator here folds everything that is constant:
 *  - LIT values are known now (SHA-256 constants, IV, padding, bit length) and become literals;
 *  - INV values depend only on the inputs (initial hash, salt) and are hoisted before the loop;
 *  - VAR values change every iteration and are computed in the loop.
 * So block 1 (last | initial) gets its initial-hash schedule terms and K+W sums precomputed, its
 * first rounds fold the IV, and block 2 (salt | counter | padding) computes only what depends on the
 * counter word.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IV, K } from './sha256-tables.js';

const LIT = 0;
const INV = 1;
const VAR = 2;
type Kind = typeof LIT | typeof INV | typeof VAR;

/** A 32-bit value being generated: a literal, a named local, an expression or a lazy sum. */
interface Val {
  kind: Kind;
  /** Literal value (int32) when kind is LIT. */
  lit: number;
  /** Source text; for names and literals it is atomic, otherwise parenthesised. */
  code: string;
  atomic: boolean;
  /** Set on lazy sums: the non-literal addends plus one literal (maybe 0). */
  addends?: Val[];
  /** Once materialised into a named local, reuse that name. */
  cached?: Val;
}

const prologue: string[] = [];
const body: string[] = [];

function fmtLit(n: number): string {
  const v = n | 0;
  return v < 0 ? `-0x${(-v).toString(16)}` : `0x${v.toString(16)}`;
}
function lit(n: number): Val {
  return { kind: LIT, lit: n | 0, code: fmtLit(n), atomic: true };
}
function named(name: string, kind: Kind): Val {
  return { kind, lit: 0, code: name, atomic: true };
}
function maxKind(vs: Val[]): Kind {
  return vs.reduce<Kind>((k, v) => (v.kind > k ? v.kind : k), LIT);
}

/** Emit `const name = v` in the prologue (INV) or the loop body (VAR); literals stay literals. */
function atom(v: Val, name: string): Val {
  if (v.atomic) return v;
  if (v.cached) return v.cached;
  const code = render(v);
  (v.kind === INV ? prologue : body).push(`const ${name} = ${code};`);
  v.cached = named(name, v.kind);
  return v.cached;
}

let hoisted = 0;
/** Source text of a value; sums hoist their loop-invariant part into one prologue constant. */
function render(v: Val): string {
  if (!v.addends) return v.code;
  let parts = v.addends.filter((a) => !(a.kind === LIT && a.lit === 0));
  if (v.kind === VAR) {
    const fixed = parts.filter((a) => a.kind !== VAR);
    if (fixed.length >= 2 || fixed.some((a) => a.kind === INV && !a.atomic)) {
      const k = fixed.length === 1 ? fixed[0]! : add(...fixed);
      parts = [...parts.filter((a) => a.kind === VAR), atom(k, `k${hoisted++}`)];
    }
  }
  // Everything here is int32, so the double-precision sum is exact and `| 0` wraps it mod 2^32.
  return `(${parts.map((a) => (a.kind === LIT ? fmtLit(a.lit) : render(a))).join(' + ')}) | 0`;
}

/** A lazy sum mod 2^32; literals fold now, and nested sums flatten unless already materialised. */
function add(...vs: Val[]): Val {
  let l = 0;
  const rest: Val[] = [];
  for (const v0 of vs) {
    const v = v0.cached ?? v0;
    if (v.kind === LIT) l = (l + v.lit) | 0;
    else if (v.addends) {
      for (const a of v.addends) {
        if (a.kind === LIT) l = (l + a.lit) | 0;
        else rest.push(a);
      }
    } else rest.push(v);
  }
  if (rest.length === 0) return lit(l);
  if (rest.length === 1 && l === 0) return rest[0]!;
  return { kind: maxKind(rest), lit: 0, code: '', atomic: false, addends: [...rest, lit(l)] };
}

/** A bitwise expression over atoms: folded if all literal, else source text. */
function op(args: Val[], f: (...n: number[]) => number, src: (...c: string[]) => string): Val {
  const kind = maxKind(args);
  if (kind === LIT) return lit(f(...args.map((a) => a.lit)));
  return {
    kind,
    lit: 0,
    code: `(${src(...args.map((a) => (a.kind === LIT ? fmtLit(a.lit) : a.code)))})`,
    atomic: false,
  };
}
const rotr = (x: number, n: number): number => (x >>> n) | (x << (32 - n));
// V8 compiles `(x >>> n) | (x << 32 - n)` to a single rotate instruction.
const rotrSrc = (x: string, n: number): string => `((${x} >>> ${n}) | (${x} << ${32 - n}))`;

let temps = 0;
/** `x ^ rotr(y, n)`, named, so rotations can be chained on it. */
function xorRot(x: Val, y: Val, n: number): Val {
  const v = op(
    [x, y],
    (p, q) => p ^ rotr(q, n),
    (p, q) => `${p} ^ ${rotrSrc(q, n)}`,
  );
  return atom(v, `x${temps++}`);
}
function rot(x: Val, n: number): Val {
  return op(
    [x],
    (p) => rotr(p, n),
    (p) => rotrSrc(p, n),
  );
}
// The sigmas are written as chained rotations (as OpenSSL does): rotr(x ^ rotr(x ^ rotr(x, c), b), a)
// equals rotr(x, a) ^ rotr(x, a + b) ^ rotr(x, a + b + c) and needs fewer register copies on x86,
// which is most of what the loop spends.
function bigSigma0(x: Val): Val {
  return rot(xorRot(x, xorRot(x, x, 9), 11), 2);
}
function bigSigma1(x: Val): Val {
  return rot(xorRot(x, xorRot(x, x, 14), 5), 6);
}
function smallSigma0(x: Val): Val {
  const r = rot(xorRot(x, x, 11), 7);
  return op(
    [r, x],
    (p, q) => p ^ (q >>> 3),
    (p, q) => `${p} ^ (${q} >>> 3)`,
  );
}
function smallSigma1(x: Val): Val {
  const r = rot(xorRot(x, x, 2), 17);
  return op(
    [r, x],
    (p, q) => p ^ (q >>> 10),
    (p, q) => `${p} ^ (${q} >>> 10)`,
  );
}
function xor(x: Val, y: Val): Val {
  return op(
    [x, y],
    (a, b) => a ^ b,
    (a, b) => `${a} ^ ${b}`,
  );
}
/** Ch(e, f, g) = g ^ (e & (f ^ g)): one operation fewer than the textbook form. */
function ch(e: Val, f: Val, g: Val, fg: Val): Val {
  return op(
    [e, f, g, fg],
    (a, _b, c, d) => c ^ (a & d),
    (a, _b, c, d) => `${c} ^ (${a} & ${d})`,
  );
}
/** Maj(a, b, c) = b ^ ((a ^ b) & (b ^ c)); a ^ b is reused as next round's b ^ c. */
function maj(b: Val, ab: Val, bc: Val): Val {
  return op(
    [b, ab, bc],
    (x, y, z) => x ^ (y & z),
    (x, y, z) => `${x} ^ (${y} & ${z})`,
  );
}

/**
 * One SHA-256 compression of `w` (16 values) from `state`, emitting code; returns the new state
 * before the feed-forward addition (the caller adds the chaining value, lazily).
 */
function compress(block: number, state: Val[], w0: Val[]): Val[] {
  const p = `b${block}`;
  const w = [...w0];
  let [a, b, c, d, e, f, g, h] = state as [Val, Val, Val, Val, Val, Val, Val, Val];
  a = atom(a, `${p}a`);
  b = atom(b, `${p}b`);
  c = atom(c, `${p}c`);
  e = atom(e, `${p}e`);
  f = atom(f, `${p}f`);
  g = atom(g, `${p}g`);
  let bc = atom(xor(b, c), `${p}bc`);
  for (let t = 0; t < 64; t++) {
    body.push(`// block ${block}, round ${t}`);
    if (t >= 16) {
      const s1 = smallSigma1(w[t - 2]!);
      const s0 = smallSigma0(w[t - 15]!);
      w[t] = atom(add(s1, w[t - 7]!, s0, w[t - 16]!), `${p}w${t}`);
    }
    const fg = atom(xor(f, g), `${p}fg${t}`);
    let t1 = add(h, lit(K[t]!), w[t]!, bigSigma1(e), ch(e, f, g, fg));
    if ((t1.addends?.filter((x) => x.kind === VAR).length ?? 0) >= 2) t1 = atom(t1, `${p}t${t}`);
    const ab = atom(xor(a, b), `${p}ab${t}`);
    const newA = atom(add(t1, bigSigma0(a), maj(b, ab, bc)), `${p}a${t}`);
    const newE = atom(add(d, t1), `${p}e${t}`);
    bc = ab;
    h = g;
    g = f;
    f = e;
    e = newE;
    d = c;
    c = b;
    b = a;
    a = newA;
  }
  return [a, b, c, d, e, f, g, h];
}

// Block 1: last (l0..l7, carried from the previous iteration) | initial hash (i0..i7).
const last = Array.from({ length: 8 }, (_, j) => named(`l${j}`, VAR));
const initial = Array.from({ length: 8 }, (_, j) => named(`i${j}`, INV));
const out1 = compress(1, IV.map(lit), [...last, ...initial]);
const h1 = out1.map((v, j) => add(v, lit(IV[j]!)));

// Block 2: salt (s0..s3) | u64 LE counter, read big-endian (ctr, then 0 below 2^32) | 0x80 | zeros | 704.
const salt = Array.from({ length: 4 }, (_, j) => named(`s${j}`, INV));
const counter = named('ctr', VAR);
const w2 = [
  ...salt,
  counter,
  lit(0),
  lit(0x80000000),
  ...Array.from({ length: 8 }, () => lit(0)),
  lit(88 * 8),
];
const out2 = compress(2, h1, w2);
body.push('// the new last = chaining value + block 2');
out2.forEach((v, j) => body.push(`l${j} = ${render(add(v, h1[j]!))};`));

/**
 * Map the loop body's single-assignment names onto a few reused `let` variables (a linear scan over
 * straight-line code). Why: V8's bytecode gives every `const` its own register, and with ~1,400 of
 * them the operands need wide encodings, so the function outgrows the bytecode size TurboFan will
 * optimise (60 KiB) and stays interpreted, ~50x slower. Reusing variables costs nothing once
 * optimised: TurboFan works on SSA values, not on variables. Names keep their role (a, e, w, t...).
 */
function allocate(lines: string[]): { lines: string[]; vars: string[] } {
  const defRe = /^const (\w+) = /;
  const ssa = new Set(lines.map((l) => defRe.exec(l)?.[1]).filter((n): n is string => n !== undefined));
  const idents = (l: string): string[] => l.match(/\b[A-Za-z_]\w*\b/g) ?? [];
  const lastUse = new Map<string, number>();
  lines.forEach((l, n) => {
    for (const id of idents(l.replace(defRe, ''))) if (ssa.has(id)) lastUse.set(id, n);
  });
  const free = new Map<string, string[]>();
  const count = new Map<string, number>();
  const assigned = new Map<string, string>();
  const out = lines.map((l, n) => {
    const def = defRe.exec(l)?.[1];
    // Values read for the last time here free their variable, which this line may then reuse.
    for (const id of new Set(idents(l.replace(defRe, '')))) {
      if (ssa.has(id) && lastUse.get(id) === n) {
        const v = assigned.get(id)!;
        const role = v.replace(/\d+$/, '');
        free.set(role, [...(free.get(role) ?? []), v]);
      }
    }
    let text = l;
    if (def !== undefined) {
      const role = /^(?:b\d)?([a-z]+)\d*$/.exec(def)![1]!;
      const pool = free.get(role) ?? [];
      let v = pool.pop();
      if (v === undefined) {
        v = `${role}${count.get(role) ?? 0}`;
        count.set(role, (count.get(role) ?? 0) + 1);
      }
      free.set(role, pool);
      assigned.set(def, v);
      text = l.replace(defRe, `${def} = `);
    }
    return text.replace(/\b[A-Za-z_]\w*\b/g, (id) => assigned.get(id) ?? id);
  });
  const vars = [...count].flatMap(([role, c]) => Array.from({ length: c }, (_, j) => `${role}${j}`));
  return { lines: out, vars };
}
const loop = allocate(body);

const header = `/**
 * GENERATED by packages/bde/scripts/gen-stretch-sha256.ts; do not edit, rerun the script.
 * BitLocker's key-stretch loop (bde-format.md §3.5) as unrolled SHA-256 specialised for its
 * 88-byte message, with loop-invariant terms hoisted (see the generator for why).
 */
`;
const src = `${header}
/**
 * Advance the stretch from counter \`start\` to \`end\` (exclusive, at most 2^32). \`words\` holds
 * big-endian words: [0, 8) \`last\`, updated in place, [8, 16) the initial hash, [16, 20) the salt.
 * Each step is \`last = SHA-256(last | initial | salt | u64le counter)\`.
 *
 * Callers run it in chunks, the first few tiny: V8 then optimises the whole function with type
 * feedback for every line, rather than on-stack replacing a first long call (that code runs this
 * loop ~1.7x slower and deoptimises on leaving it). Taking only an Int32Array keeps every access
 * monomorphic whatever byte arrays the caller has.
 */
export function stretchSha256Chunk(words: Int32Array, start: number, end: number): void {
  ${initial.map((v, j) => `const ${v.code} = words[${8 + j}]!;`).join('\n  ')}
  ${salt.map((v, j) => `const ${v.code} = words[${16 + j}]!;`).join('\n  ')}
  // Loop-invariant parts of both blocks, computed once per call.
  ${prologue.join('\n  ')}
  ${last.map((v, j) => `let ${v.code} = words[${j}]!;`).join('\n  ')}
  // Working variables, reused across rounds (see the generator).
  ${loop.vars.map((v) => `let ${v} = 0;`).join('\n  ')}
  for (let i = start; i < end; i++) {
    // The low half of the little-endian counter, as SHA-256 reads it (big-endian).
    const ctr = (i << 24) | ((i & 0xff00) << 8) | ((i >>> 8) & 0xff00) | (i >>> 24);
    ${loop.lines.join('\n    ')}
  }
  ${last.map((v, j) => `words[${j}] = ${v.code};`).join('\n  ')}
}
`;

const target = fileURLToPath(new URL('../src/crypto/stretch-sha256.ts', import.meta.url));
writeFileSync(target, src);
execFileSync('npx', ['prettier', '--write', target], { stdio: 'inherit' });
