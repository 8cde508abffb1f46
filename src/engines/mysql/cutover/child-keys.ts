import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { movedKeys, type ChildKey, type SetKey } from '../schema/foreign-keys.js';
import type { TableShape } from '../schema/inspect.js';
import { ident, qualified } from '../server/sql.js';
import { groupKeyRows, keyColumnsProblem } from './key-columns.js';
import { SESSION_RESET, ignoreFailure } from '../../../core/engine/errors.js';

type Queryable = Pool | PoolConnection | Connection;

export function childKeyName(key: ChildKey): string {
  return `${key.table}.${key.name}`;
}

export function describeChildKey(key: ChildKey): string {
  return `${childKeyName(key)} (${key.columns.join(', ')}) -> (${key.referencedColumns.join(', ')}) ON DELETE ${key.onDelete} ON UPDATE ${key.onUpdate}`;
}

/** The keys of other tables (and other databases) that reference database.table; a table's keys to itself are its own. */
export async function readChildKeys(db: Queryable, database: string, table: string): Promise<ChildKey[]> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT k.TABLE_SCHEMA s, k.TABLE_NAME t, k.CONSTRAINT_NAME n, k.COLUMN_NAME c, k.REFERENCED_COLUMN_NAME r, rc.DELETE_RULE d, rc.UPDATE_RULE u
       FROM information_schema.KEY_COLUMN_USAGE k
       JOIN information_schema.REFERENTIAL_CONSTRAINTS rc ON rc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND rc.CONSTRAINT_NAME = k.CONSTRAINT_NAME
      WHERE k.REFERENCED_TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME = ? AND NOT (k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ?)
      ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION`,
    [database, table, database, table],
  );
  return groupKeyRows(
    rows,
    (r) => `${r.s}.${r.n}`,
    (r): ChildKey => ({
      database: String(r.s),
      table: String(r.t),
      name: String(r.n),
      columns: [],
      referencedColumns: [],
      onDelete: String(r.d),
      onUpdate: String(r.u),
    }),
  );
}

/**
 * Why the new table could not be referenced by a child key, or null: InnoDB needs the referenced
 * columns under the same names, of the same type and collation, leading an index. Judged on the
 * ALTER's probe, before anything is created.
 */
export function childKeyProblem(key: ChildKey, original: TableShape, shadow: TableShape): string | null {
  return keyColumnsProblem(key.referencedColumns, original, shadow, 'gone');
}

/**
 * Makes each child key reference `to` instead of `from` (same name, columns and actions), leaving a
 * key that already references `to` alone, so that a run killed halfway can do it again. A key found
 * missing was dropped by a run killed between the two statements: it is added. The server cannot
 * drop and add a key of one name in one statement, hence two, both metadata only with
 * foreign_key_checks off for this session: the rows were checked against the original, and the
 * shadow holds the same rows when this runs (under the cut-over lock), or did when it was pointed
 * there (going back).
 */
export async function pointChildKeys(conn: Connection | PoolConnection, keys: ChildKey[], database: string, from: string, to: string): Promise<void> {
  if (keys.length === 0) return;
  const [[{ checks }]] = await conn.query<RowDataPacket[]>('SELECT @@SESSION.foreign_key_checks AS checks');
  await conn.query('SET SESSION foreign_key_checks = 0');
  try {
    for (const key of keys) {
      const now = await referencedTable(conn, key);
      if (now !== null && now.database === database && now.table === to) continue;
      if (now !== null && !(now.database === database && now.table === from)) {
        throw new Error(`foreign key ${childKeyName(key)} references ${now.database}.${now.table}, neither ${from} nor ${to}`);
      }
      const [drop, add] = statementHeads(key);
      if (now !== null) await conn.query(`${drop}, ALGORITHM=INPLACE, LOCK=NONE`);
      await conn.query(
        `${add} (${key.columns.map(ident).join(', ')}) ` +
          `REFERENCES ${qualified(database, to)} (${key.referencedColumns.map(ident).join(', ')})${actions(key)}, ALGORITHM=INPLACE, LOCK=NONE`,
      );
    }
  } finally {
    await conn.query('SET SESSION foreign_key_checks = ?', [Number(checks)]);
  }
}

/**
 * Before the RENAME the original is the one serving: child keys a run killed in its cut-over left on
 * the shadow (or without their key) reference it again. Until then an insert into a child is checked
 * against the shadow and a delete from the original is checked against no child: the first thing a
 * resumed run, or cleanup, does.
 */
export async function childKeysBack(pool: Pool, plan: { children: ChildKey[]; database: string; table: string; shadow: string }): Promise<string[]> {
  const stray = await strayChildKeys(pool, plan.children, plan.database, plan.table);
  if (stray.length === 0) return [];
  const conn = await pool.getConnection();
  try {
    // Bounded: a child held by someone else must not hang the run (the server's default is a day or more).
    await conn.query('SET SESSION lock_wait_timeout = 30');
    await pointChildKeys(conn, stray, plan.database, plan.shadow, plan.table);
  } finally {
    await conn.query('SET SESSION lock_wait_timeout = DEFAULT').catch(ignoreFailure(SESSION_RESET));
    conn.release();
  }
  return stray.map(childKeyName);
}

/** How this module's two statements on a child key begin. */
function statementHeads(key: ChildKey): [string, string] {
  const child = `ALTER TABLE ${qualified(key.database, key.table)}`;
  return [`${child} DROP FOREIGN KEY ${ident(key.name)}`, `${child} ADD CONSTRAINT ${ident(key.name)} FOREIGN KEY`];
}

/**
 * One of our own moves of a planned child key, as the binlog shows it: it names the table in its
 * REFERENCES but changes neither its rows nor its definition. A resumed run reads the killed cut-over's.
 */
export function isChildKeyMove(query: string, keys: ChildKey[]): boolean {
  return keys.some((key) => statementHeads(key).some((head) => query.startsWith(head)));
}

/** Keys that reference the table now and are not in the plan: made during the run, they would follow the original at the RENAME. */
export async function unplannedChildKeys(db: Queryable, planned: ChildKey[], database: string, table: string): Promise<string[]> {
  const known = new Set(planned.map((k) => `${k.database}.${k.name}`));
  return (await readChildKeys(db, database, table)).filter((k) => !known.has(`${k.database}.${k.name}`)).map(childKeyName);
}

/** RESTRICT is the default the server reports for a key made without the clause: left unsaid, the key reads as it did. */
function actions(key: ChildKey): string {
  const said = (on: string, rule: string) => (rule === 'RESTRICT' ? '' : ` ON ${on} ${rule}`);
  return said('DELETE', key.onDelete) + said('UPDATE', key.onUpdate);
}

/** Child keys that do not reference `table` (a run killed in its cut-over left them on the shadow, or without their key). */
export async function strayChildKeys(db: Queryable, keys: ChildKey[], database: string, table: string): Promise<ChildKey[]> {
  const stray: ChildKey[] = [];
  for (const key of keys) {
    const now = await referencedTable(db, key);
    if (now === null || now.database !== database || now.table !== table) stray.push(key);
  }
  return stray;
}

async function referencedTable(db: Queryable, key: ChildKey): Promise<{ database: string; table: string } | null> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT UNIQUE_CONSTRAINT_SCHEMA s, REFERENCED_TABLE_NAME t FROM information_schema.REFERENTIAL_CONSTRAINTS
      WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?`,
    [key.database, key.table, key.name],
  );
  return rows.length ? { database: String(rows[0].s), table: String(rows[0].t) } : null;
}

/**
 * A set's key from this table (the child) to another of its tables: at the cut-over it moves from the
 * original to the shadow, referencing the parent's shadow (or the parent itself when a resumed run
 * finds the parent already swapped), so that each RENAME carries it between the new tables; back, it
 * leaves the shadow and references the parent from the original again. Key names are unique per
 * database, hence a drop before the add; each step is skipped when already made, so a run killed
 * between two of them can do it again. Metadata only, with foreign_key_checks off for this session:
 * the rows were checked against the original parent, and the shadows hold the same rows when this runs.
 */
export async function moveSetKeys(
  conn: Connection | PoolConnection,
  plan: { database: string; table: string; shadow: string; setKeys?: SetKey[]; parentKeys?: SetKey[] },
  direction: 'to the shadow' | 'back',
  /** Where the key is dropped from the table it leaves, when `conn` holds only the other by LOCK TABLES. */
  dropOn: Queryable = conn,
): Promise<void> {
  const keys = movedKeys(plan);
  if (keys.length === 0) return;
  const [[{ checks }]] = await conn.query<RowDataPacket[]>('SELECT @@SESSION.foreign_key_checks AS checks');
  await conn.query('SET SESSION foreign_key_checks = 0');
  try {
    for (const key of keys) {
      const [from, to] = direction === 'back' ? [plan.shadow, plan.table] : [plan.table, plan.shadow];
      const parent = direction === 'back' ? key.parent : await parentShadow(conn, key);
      const [drop] = statementHeads({ ...key, table: from });
      const [, add] = statementHeads({ ...key, table: to });
      if (await keyOn(conn, key.database, from, key.name)) await dropOn.query(`${drop}, ALGORITHM=INPLACE, LOCK=NONE`);
      if (!(await keyOn(conn, key.database, to, key.name))) {
        await conn.query(
          `${add} (${key.columns.map(ident).join(', ')}) ` +
            `REFERENCES ${qualified(key.parentDatabase ?? key.database, parent)} (${key.referencedColumns.map(ident).join(', ')})${actions(key)}, ALGORITHM=INPLACE, LOCK=NONE`,
        );
      }
    }
  } finally {
    await conn.query('SET SESSION foreign_key_checks = ?', [Number(checks)]);
  }
}

/** A set's keys of this table that are not on the original (moved to the shadow by a cut-over), while the parent is not swapped. */
async function strayKeys(db: Queryable, plan: { database: string; table: string; setKeys?: SetKey[]; parentKeys?: SetKey[] }): Promise<SetKey[]> {
  const stray: SetKey[] = [];
  for (const key of movedKeys(plan)) {
    if (await keyOn(db, key.database, plan.table, key.name)) continue;
    // A parent outside the set is never swapped: a key away from the original is stray until the table's own swap.
    // A parent already swapped (a set swapped in part by an earlier version): the key stays on the shadow, which its resume swaps next.
    if (key.parentShadow === key.parent || (await parentShadow(db, key)) !== key.parent) stray.push(key);
  }
  return stray;
}

/** Whether some of a set's keys of this table are away from the original (setKeysBack would move them). */
export async function setKeysAway(db: Queryable, plan: { database: string; table: string; setKeys?: SetKey[]; parentKeys?: SetKey[] }): Promise<boolean> {
  return (await strayKeys(db, plan)).length > 0;
}

/**
 * Cleanup of a set's parent, run by run: the keys of the set's children that a killed cut-over left on
 * their shadows reference this table's shadow, which cannot be dropped while they do. Each goes back
 * to its live child first (the child's own cleanup would, later): the shadow is never dropped while
 * it carries the only copy of a key. `shadowOf` names a child's shadow.
 */
export async function setChildrenBack(
  pool: Pool,
  plan: { database: string; table: string; shadow: string; setChildren?: ChildKey[] },
  shadowOf: (table: string) => string,
): Promise<string[]> {
  const moved: string[] = [];
  for (const key of plan.setChildren ?? []) {
    const child = { database: key.database, table: key.table, shadow: shadowOf(key.table) };
    moved.push(...(await setKeysBack(pool, { ...child, setKeys: [{ ...key, parent: plan.table, parentShadow: plan.shadow }] })));
  }
  return moved;
}

/** Before the RENAME the original is the one serving: a set's keys a killed cut-over left on the shadow go back to it. */
export async function setKeysBack(
  pool: Pool,
  plan: { database: string; table: string; shadow: string; setKeys?: SetKey[]; parentKeys?: SetKey[] },
): Promise<string[]> {
  const stray = await strayKeys(pool, plan);
  if (stray.length === 0) return [];
  const conn = await pool.getConnection();
  try {
    await conn.query('SET SESSION lock_wait_timeout = 30');
    await moveSetKeys(conn, { ...plan, setKeys: stray, parentKeys: [] }, 'back');
  } finally {
    await conn.query('SET SESSION lock_wait_timeout = DEFAULT').catch(ignoreFailure(SESSION_RESET));
    conn.release();
  }
  return stray.map(childKeyName);
}

async function keyOn(db: Queryable, database: string, table: string, name: string): Promise<boolean> {
  const [rows] = await db.query<RowDataPacket[]>(
    'SELECT 1 FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = ?',
    [database, table, name],
  );
  return rows.length > 0;
}

/** The parent's shadow while it has one; the parent itself once its own swap is made. */
async function parentShadow(db: Queryable, key: SetKey): Promise<string> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
    key.database,
    key.parentShadow,
  ]);
  return rows.length ? key.parentShadow : key.parent;
}

/** Why pointing keys back under a hold may fail: the reason given where it is ignored. */
export const KEYS_BACK_IN_UNDO = "keys this leaves on the shadow go back without a lock in the attempt's undo (childKeysBack, setKeysBack), which fails loudly";
