import type { PgDetail } from '../schema/plan.js';
import { ident, qualified } from '../server/sql.js';
import type { Client } from '../server/connect.js';

// Views, rules, triggers, policies and foreign keys move to the new table from definitions the server
// prints with the table's column names as they are at that moment. For a column the ALTER only renames,
// those are read with the original's column renamed as the new table has it (under the cut-over's lock,
// in its transaction) and the name is put back before the swap: a view then reads `t.a2 AS a`, keeping
// its own output names, as after the native ALTER, which follows a rename in every definition.

/** The renames that can be made on the original for the reading: none whose new name another of its columns has (a swap of two names). */
export function renamesToCarry(d: Pick<PgDetail, 'renamedColumns' | 'streamColumns'>): { from: string; to: string }[] {
  const renames = d.renamedColumns ?? [];
  const names = new Set(d.streamColumns.map((c) => c.name));
  return renames.some((r) => names.has(r.to)) ? [] : renames;
}

/** `read` with the original's renamed columns named as on the new table; the transaction's failure puts them back too. */
export async function withColumnsRenamed<T>(client: Client, d: PgDetail, read: () => Promise<T>): Promise<T> {
  const renames = renamesToCarry(d);
  const table = qualified(d.schema, d.name);
  for (const r of renames) await client.query(`ALTER TABLE ${table} RENAME COLUMN ${ident(r.from)} TO ${ident(r.to)}`);
  const value = await read();
  for (const r of [...renames].reverse()) await client.query(`ALTER TABLE ${table} RENAME COLUMN ${ident(r.to)} TO ${ident(r.from)}`);
  return value;
}
