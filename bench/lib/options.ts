// Shared command-line parsing for the benchmark scripts.

/** The integer value of `flag`, at least `min`; a clear error otherwise. */
export function intOption(flag: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag} needs an integer >= ${min}`);
  return n;
}
