/** CSV output shared by exports and reports: RFC 4180 quoting, and no cell a spreadsheet would run as a formula. */

export function csvField(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  // A leading =,+,-,@ would run as a formula in a spreadsheet; quote-and-prefix neutralises it.
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n']/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** A whole CSV document: a header row, then one row per record, CRLF line ends as RFC 4180 has them. */
export function toCsv<K extends string>(
  columns: readonly K[],
  rows: readonly Record<K, string | number | boolean | null | undefined>[],
): string {
  return [columns.join(','), ...rows.map((r) => columns.map((c) => csvField(r[c])).join(','))]
    .map((line) => `${line}\r\n`)
    .join('');
}
