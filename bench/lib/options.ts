// Shared command-line parsing for the benchmark scripts.

/** The integer value of `flag`, at least `min`; a clear error otherwise. */
export function intOption(flag: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} needs an integer >= ${min}`);
  return n;
}

/** Usage text of the flags `autovacuumFlag` reads. */
export const AUTOVACUUM_USAGE = '[--autovacuum-naptime S | --server-autovacuum]';

/**
 * The autovacuum flags of every PostgreSQL benchmark (lib/bench-autovacuum.ts): the naptime in
 * seconds to run with (`--autovacuum-naptime S`), undefined for the server's own settings
 * (`--server-autovacuum`), or null when `flag` is neither.
 */
export function autovacuumFlag(flag: string, value: () => string | undefined): number | undefined | null {
  if (flag === '--autovacuum-naptime') return intOption(flag, value(), 1);
  if (flag === '--server-autovacuum') return undefined;
  return null;
}

/** The naptime benchmarks run autovacuum with unless told otherwise (lib/bench-autovacuum.ts). */
export const BENCH_AUTOVACUUM_NAPTIME = 5;
