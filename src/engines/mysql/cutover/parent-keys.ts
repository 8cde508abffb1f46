import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { TableShape } from '../schema/inspect.js';
import { cascadeSources, type Cascade, type SetKey } from '../schema/foreign-keys.js';
import { groupKeyRows, keyColumnsProblem } from './key-columns.js';

/**
 * The table's own foreign keys to tables outside its set (in any database, and to itself), which
 * CREATE TABLE ... LIKE leaves off the shadow. Each moves to the shadow under the cut-over's lock,
 * under its own name, as a set's keys between its tables do (`moveSetKeys`): the drop from the
 * original and the add to the shadow are metadata only, with foreign_key_checks off for that session,
 * since the shadow holds the original's rows, which were checked. The parent is locked READ with
 * them, so that no row of it goes while the key is between the two tables: enforced at every moment.
 * pt-online-schema-change keeps such keys under a new name (`_fk`); gh-ost and Spirit refuse them.
 */
export async function readParentKeys(pool: Pool, database: string, table: string, shadow: string): Promise<SetKey[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT k.CONSTRAINT_NAME n, k.COLUMN_NAME c, k.REFERENCED_TABLE_SCHEMA ps, k.REFERENCED_TABLE_NAME p, k.REFERENCED_COLUMN_NAME r,
            rc.DELETE_RULE d, rc.UPDATE_RULE u
       FROM information_schema.KEY_COLUMN_USAGE k
       JOIN information_schema.REFERENTIAL_CONSTRAINTS rc ON rc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND rc.CONSTRAINT_NAME = k.CONSTRAINT_NAME
      WHERE k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL
      ORDER BY k.CONSTRAINT_NAME, k.ORDINAL_POSITION`,
    [database, table],
  );
  return groupKeyRows(
    rows,
    (r) => String(r.n),
    (r): SetKey => {
      const [parentDatabase, parent] = [String(r.ps), String(r.p)];
      const self = parentDatabase === database && parent === table;
      return {
        database,
        table,
        name: String(r.n),
        columns: [],
        referencedColumns: [],
        onDelete: String(r.d),
        onUpdate: String(r.u),
        parent,
        // A key to the table itself references the shadow, which the RENAME makes the table.
        parentShadow: self ? shadow : parent,
        ...(parentDatabase === database ? {} : { parentDatabase }),
      };
    },
  );
}

/**
 * Why the shadow could not take the key, or null: the native ALTER keeps a key only on columns it
 * leaves as they are (it refuses to retype or drop one a key uses), and InnoDB needs an index leading
 * with them. Judged on the ALTER's probe, before anything is made.
 */
export function parentKeyProblem(key: SetKey, original: TableShape, shadow: TableShape): string | null {
  return keyColumnsProblem(key.columns, original, shadow, 'gone or renamed');
}

/**
 * The parents to lock READ with the cut-over's tables: those of the keys that move, outside the set
 * (a key to itself needs none), and those whose changes cascade into the table, which would change
 * its rows under the lock with nothing in the binlog to say so.
 */
export function parentTables(plan: { database: string; table: string; parentKeys?: SetKey[]; cascades?: Cascade[] }): { database: string; table: string }[] {
  const moving = (plan.parentKeys ?? []).filter((k) => k.parentShadow === k.parent).map((k) => ({ database: k.parentDatabase ?? k.database, table: k.parent }));
  // With the parents, the tables whose cascades reach them (cascade-chains.ts); the table itself is the lock's already.
  const others = cascadeSources(plan).filter((t) => !(t.database === plan.database && t.table === plan.table));
  return [...moving, ...others];
}
