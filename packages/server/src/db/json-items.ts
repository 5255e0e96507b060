/**
 * The items of a batched statement (PostgreSQL only): `select * from json_to_recordset(<items>)
 * as i(<columns>) limit <count>`, the items travelling as one JSON parameter whatever their number.
 *
 * Why the limit: PostgreSQL guesses 100 rows for `json_to_recordset`, whatever the JSON holds. A
 * batch is a few items; planned for 100, the statements joining them hash-joined seq scans of all
 * of `devices` or `recovery_keys` on fleets of up to tens of thousands, where a few index probes
 * do (bench/RESULTS.md, 2026-12-05). The limit is the exact count, so it drops nothing, and the
 * planner takes it as the number of rows (in a prepared statement's generic plan it guesses 10).
 */
import { sql, type RawBuilder } from 'kysely';

/** `columns` is the column definition list, e.g. `n int, organization_id text`: SQL, not data. */
export function jsonItems(items: readonly object[], columns: string): RawBuilder<unknown> {
  return sql`select * from json_to_recordset(${JSON.stringify(items)}::json) as i(${sql.raw(columns)})
    limit ${items.length}`;
}
