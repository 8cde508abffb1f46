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

/**
 * `read` with every part's renamed columns named as on its new table (all before any is read, so a
 * key or view between two tables of a set reads both new names), then the names put back; the
 * transaction's failure puts them back too. `read` gets each detail with its column mapping's sources
 * named as they are meanwhile (the sequences are found by them).
 */
export async function withColumnsRenamed<T>(client: Client, ds: PgDetail[], read: (renamed: PgDetail[]) => Promise<T>): Promise<T> {
  const each = ds.map((d) => ({ d, renames: renamesToCarry(d), table: qualified(d.schema, d.name) }));
  for (const { renames, table } of each) for (const r of renames) await client.query(`ALTER TABLE ${table} RENAME COLUMN ${ident(r.from)} TO ${ident(r.to)}`);
  const value = await read(each.map(({ d, renames }) => sourcesRenamed(d, renames)));
  for (const { renames, table } of each) {
    for (const r of [...renames].reverse()) await client.query(`ALTER TABLE ${table} RENAME COLUMN ${ident(r.to)} TO ${ident(r.from)}`);
  }
  return value;
}

function sourcesRenamed(d: PgDetail, renames: { from: string; to: string }[]): PgDetail {
  if (renames.length === 0) return d;
  const to = new Map(renames.map((r) => [ident(r.from), ident(r.to)]));
  return { ...d, columns: d.columns.map((c) => ({ ...c, source: to.get(c.source) ?? c.source })) };
}
