import type { RowDataPacket } from 'mysql2/promise';
import type { TableShape } from '../schema/inspect.js';

/** A foreign key's columns, in order, and the parent's columns they reference, in the same order. */
interface KeyColumns {
  columns: string[];
  referencedColumns: string[];
}

/**
 * information_schema lists a foreign key one column a row (`c`, and `r` the parent's column it
 * references), in ORDINAL_POSITION order: one key for each `id`, made by `make` from its first row
 * with no columns yet, and given its columns in that order.
 */
export function groupKeyRows<K extends KeyColumns>(rows: RowDataPacket[], id: (r: RowDataPacket) => string, make: (r: RowDataPacket) => K): K[] {
  const keys = new Map<string, K>();
  for (const r of rows) {
    let key = keys.get(id(r));
    if (!key) {
      key = make(r);
      keys.set(id(r), key);
    }
    key.columns.push(String(r.c));
    key.referencedColumns.push(String(r.r));
  }
  return [...keys.values()];
}

/**
 * Why the shadow could not hold a key on the columns `names` as the original does, or null: each must
 * be there under its name, of the same type and collation, and an index must lead with them. `gone`
 * says what became of a column the shadow lacks.
 */
export function keyColumnsProblem(names: string[], original: TableShape, shadow: TableShape, gone: string): string | null {
  for (const name of names) {
    const before = original.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
    const after = shadow.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
    if (!after) return `column ${name} would be ${gone}`;
    if (before && (before.type !== after.type || before.collation !== after.collation)) {
      return `column ${name} would change from ${before.type} to ${after.type}${after.collation ? ` ${after.collation}` : ''}`;
    }
  }
  const wanted = names.map((c) => c.toLowerCase());
  const leads = shadow.indexes.some((i) => wanted.every((c, at) => i.columns[at]?.toLowerCase() === c));
  return leads ? null : `no index would lead with (${names.join(', ')})`;
}
