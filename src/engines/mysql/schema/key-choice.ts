import { UserError } from '../../../core/engine/errors.js';
import type { ColumnPair } from './column-map.js';
import type { MysqlIndex, TableShape } from './inspect.js';

// The key the copy walks and the applier identifies rows by: a unique key that both tables have.

/**
 * The table's unique keys whose columns are all NOT NULL (a prefix index's column never is, so those
 * are out), the PRIMARY KEY first, then the narrowest: the keys a keyset walk can use, best first.
 */
export function keyCandidates(table: TableShape): MysqlIndex[] {
  const notNull = new Set(table.columns.filter((c) => !c.nullable).map((c) => c.name.toLowerCase()));
  return table.indexes
    .filter((i) => i.unique && i.columns.every((c) => notNull.has(c.toLowerCase())))
    .sort((a, b) => Number(b.name === 'PRIMARY') - Number(a.name === 'PRIMARY') || a.columns.length - b.columns.length);
}

interface ChosenKey {
  index: string;
  columns: string[];
  shadowColumns: string[];
  /** The shadow's own index on the key, when the ALTER leaves none: see `helperKeyName`. */
  helper?: { name: string; columns: string[] };
}

/**
 * A plain index on the original's key for a shadow the ALTER leaves without one (a primary key replaced
 * or dropped): the applier finds rows by it, and the shadow holds at most one row per key whatever its
 * own constraints, being only written "delete these keys, insert them again". Not UNIQUE: InnoDB would
 * take a unique NOT NULL index of a table with no primary key as its clustered index, and dropping it at
 * the cut-over would then rebuild the table. The cut-over drops it.
 */
function helperKeyName(shadow: TableShape): string {
  const taken = new Set(shadow.indexes.map((i) => i.name.toLowerCase()));
  for (let n = 1; ; n++) {
    const name = n === 1 ? 'shadowcut_key' : `shadowcut_key_${n}`;
    if (!taken.has(name)) return name;
  }
}

/**
 * A unique key of the original whose columns are all NOT NULL and which the shadow keeps as a
 * unique key (after renames): rows are identified the same way on both sides.
 */
export function chooseKey(original: TableShape, shadow: TableShape, columns: ColumnPair[]): ChosenKey {
  const toTarget = new Map(columns.map((c) => [c.source.toLowerCase(), c.target]));
  const shadowUnique = shadow.indexes.filter((i) => i.unique).map((i) => i.columns.map((c) => c.toLowerCase()));
  const candidates = keyCandidates(original);
  for (const index of candidates) {
    const mapped = index.columns.map((c) => toTarget.get(c.toLowerCase()));
    if (mapped.some((c) => c === undefined)) continue;
    // A shadow unique key on these columns, or on more of them (e.g. PRIMARY KEY (id) becoming
    // (id, i)): the shadow is only ever written "delete these keys, insert them again", so it holds
    // at most one row per original key whatever its own constraint.
    // Leading the shadow's unique key: one that only holds them further in (tenant_id, id) finds no row by them.
    const set = new Set(mapped.map((c) => c!.toLowerCase()));
    if (shadowUnique.some((u) => [...set].every((c) => u.slice(0, set.size).includes(c)))) {
      return { index: index.name, columns: index.columns, shadowColumns: mapped as string[] };
    }
  }
  // No key the shadow shares: the first whose columns it still has, of the same types (the shadow's own
  // index is not unique: keys a conversion made equal would find each other's rows), found through it.
  const typeOf = (t: TableShape, c: string) => t.columns.find((x) => x.name.toLowerCase() === c.toLowerCase())?.type;
  for (const index of candidates) {
    const mapped = index.columns.map((c) => toTarget.get(c.toLowerCase()));
    if (mapped.some((c, i) => c === undefined || typeOf(shadow, c) !== typeOf(original, index.columns[i]))) continue;
    const shadowColumns = mapped as string[];
    return { index: index.name, columns: index.columns, shadowColumns, helper: { name: helperKeyName(shadow), columns: shadowColumns } };
  }
  if (candidates.length === 0) {
    throw new UserError('the table has no PRIMARY KEY or NOT NULL UNIQUE key; add one first, shadowcut needs it to copy and apply changes');
  }
  throw new UserError(
    'the ALTER drops or converts a column of every PRIMARY/NOT NULL UNIQUE key of the table; keep the columns of one unchanged in this migration (change them in a separate one)',
  );
}
