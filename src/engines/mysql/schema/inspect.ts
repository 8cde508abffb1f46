import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { UserError, ignoreFailure } from '../../../core/engine/errors.js';
import { qualified, STATS_EXPIRY_MYSQL_8 } from '../server/sql.js';

export interface MysqlColumn {
  name: string;
  /** Full type as SHOW COLUMNS prints it, e.g. `bigint(20) unsigned`. */
  type: string;
  collation: string | null;
  nullable: boolean;
  /** VIRTUAL or STORED generated columns cannot be written. */
  generated: boolean;
}

export interface MysqlIndex {
  name: string;
  unique: boolean;
  columns: string[];
}

export interface TableShape {
  columns: MysqlColumn[];
  indexes: MysqlIndex[];
}

type Queryable = Pool | PoolConnection | Connection;

/** Columns and indexes via SHOW statements, which also work on TEMPORARY tables (the ALTER probe). */
export async function describeTable(db: Queryable, database: string, table: string): Promise<TableShape> {
  const [cols] = await db.query<RowDataPacket[]>(`SHOW FULL COLUMNS FROM ${qualified(database, table)}`);
  const columns = cols.map((c) => ({
    name: String(c.Field),
    type: String(c.Type),
    collation: c.Collation === null ? null : String(c.Collation),
    nullable: c.Null === 'YES',
    generated: /\b(VIRTUAL|STORED|PERSISTENT)\b/i.test(String(c.Extra)),
  }));
  const [idx] = await db.query<RowDataPacket[]>(`SHOW INDEX FROM ${qualified(database, table)}`);
  const byName = new Map<string, MysqlIndex>();
  for (const r of idx) {
    const name = String(r.Key_name);
    let index = byName.get(name);
    if (!index) {
      index = { name, unique: Number(r.Non_unique) === 0, columns: [] };
      byName.set(name, index);
    }
    // A prefix index (Sub_part) is not a usable unique key for keyset iteration.
    index.columns[Number(r.Seq_in_index) - 1] = r.Sub_part === null ? String(r.Column_name) : `${r.Column_name}(${r.Sub_part})`;
  }
  return { columns, indexes: [...byName.values()] };
}

/**
 * The columns NOT NULL with no DEFAULT (nor AUTO_INCREMENT, nor generated): an INSERT under a strict
 * sql_mode must name them, where the native ALTER that adds one gives the rows the type's implicit
 * default (implicit-default.ts). Apart from the shape, which a run compares with the table's as it was planned.
 */
export async function columnsWithoutDefault(db: Queryable, database: string, table: string): Promise<string[]> {
  const [cols] = await db.query<RowDataPacket[]>(`SHOW FULL COLUMNS FROM ${qualified(database, table)}`);
  return cols
    .filter((c) => c.Null !== 'YES' && c.Default === null && !/auto_increment|VIRTUAL|STORED|PERSISTENT/i.test(String(c.Extra)))
    .map((c) => String(c.Field));
}

/** The table's PRIMARY KEY, else its first UNIQUE key on NOT NULL columns without prefixes; null when none. */
export function uniqueKey(shape: TableShape): MysqlIndex | null {
  const notNull = new Set(shape.columns.filter((c) => !c.nullable).map((c) => c.name.toLowerCase()));
  const usable = shape.indexes.filter((i) => i.unique && i.columns.every((c) => notNull.has(c.toLowerCase())));
  return usable.find((i) => i.name === 'PRIMARY') ?? usable.sort((a, b) => a.columns.length - b.columns.length)[0] ?? null;
}

export interface TableFacts {
  engine: string | null;
  estimatedRows: number;
  autoIncrement: string | null;
  isView: boolean;
  foreignKeys: string[];
  referencedBy: string[];
  /** Foreign keys of the table whose action changes its rows when the parent changes (CASCADE, SET NULL, SET DEFAULT). */
  cascadingInto: string[];
  triggers: string[];
}

export async function tableFacts(db: Pool, database: string, table: string): Promise<TableFacts | null> {
  // MySQL 8 caches information_schema statistics; ask for fresh ones where the variable exists.
  await db.query('SET SESSION information_schema_stats_expiry = 0').catch(ignoreFailure(STATS_EXPIRY_MYSQL_8));
  const [t] = await db.query<RowDataPacket[]>(
    'SELECT ENGINE, TABLE_ROWS, AUTO_INCREMENT, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [database, table],
  );
  if (t.length === 0) return null;
  const [fk] = await db.query<RowDataPacket[]>(
    `SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME, DELETE_RULE, UPDATE_RULE FROM information_schema.REFERENTIAL_CONSTRAINTS
      WHERE (CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?) OR (UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?)`,
    [database, table, database, table],
  );
  const [tr] = await db.query<RowDataPacket[]>(
    'SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?',
    [database, table],
  );
  return {
    engine: t[0].ENGINE === null ? null : String(t[0].ENGINE),
    estimatedRows: Number(t[0].TABLE_ROWS ?? 0),
    autoIncrement: t[0].AUTO_INCREMENT === null ? null : String(t[0].AUTO_INCREMENT),
    isView: String(t[0].TABLE_TYPE) === 'VIEW',
    foreignKeys: fk.filter((r) => r.TABLE_NAME === table).map((r) => `${r.CONSTRAINT_NAME} -> ${r.REFERENCED_TABLE_NAME}`),
    referencedBy: fk.filter((r) => r.TABLE_NAME !== table).map((r) => `${r.TABLE_NAME}.${r.CONSTRAINT_NAME}`),
    cascadingInto: fk
      .filter(
        (r) =>
          r.TABLE_NAME === table &&
          ((r.DELETE_RULE !== 'RESTRICT' && r.DELETE_RULE !== 'NO ACTION') || (r.UPDATE_RULE !== 'RESTRICT' && r.UPDATE_RULE !== 'NO ACTION')),
      )
      .map((r) => `${r.CONSTRAINT_NAME} -> ${r.REFERENCED_TABLE_NAME} ON DELETE ${r.DELETE_RULE} ON UPDATE ${r.UPDATE_RULE}`),
    triggers: tr.map((r) => String(r.TRIGGER_NAME)),
  };
}

export async function tableExists(db: Pool, database: string, table: string): Promise<boolean> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [database, table]);
  return rows.length > 0;
}

export interface MysqlTrigger {
  name: string;
  timing: string;
  event: string;
  body: string;
  definer: string;
  sqlMode: string;
  /** The session it was made in: how its body is read and its string literals compare. */
  characterSetClient: string;
  collationConnection: string;
  /** The database's collation when it was made (its unqualified CHAR variables take it). */
  databaseCollation: string;
}

/** In firing order: creating them again in this order keeps their relative order. */
export async function readTriggers(db: Queryable, database: string, table: string): Promise<MysqlTrigger[]> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT, DEFINER, SQL_MODE,
            CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION
       FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?
      ORDER BY EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER`,
    [database, table],
  );
  return rows.map((r) => ({
    name: String(r.TRIGGER_NAME),
    timing: String(r.ACTION_TIMING),
    event: String(r.EVENT_MANIPULATION),
    body: String(r.ACTION_STATEMENT),
    definer: String(r.DEFINER),
    sqlMode: String(r.SQL_MODE),
    characterSetClient: String(r.CHARACTER_SET_CLIENT),
    collationConnection: String(r.COLLATION_CONNECTION),
    databaseCollation: String(r.DATABASE_COLLATION),
  }));
}

/**
 * The columns a trigger body reads or sets as `OLD.c` / `NEW.c` that the table will not have: the
 * server resolves them when the trigger is created (so it could not be made on the new table) and
 * again at every firing (so after a native ALTER every write of the event fails). Read from the body's
 * text: a match inside a string literal or a comment only makes the refusal stricter.
 */
export function columnsGoneFromTrigger(body: string, columnsAfter: string[]): string[] {
  const have = new Set(columnsAfter.map((c) => c.toLowerCase()));
  const gone = new Set<string>();
  for (const m of body.matchAll(/\b(?:OLD|NEW)\s*\.\s*(`(?:[^`]|``)+`|[A-Za-z0-9_$\u0080-\uffff]+)/gi)) {
    const name = m[1].startsWith('`') ? m[1].slice(1, -1).replaceAll('``', '`') : m[1];
    if (!have.has(name.toLowerCase())) gone.add(name);
  }
  return [...gone];
}

export async function triggerExists(db: Pool, database: string, name: string): Promise<boolean> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT 1 FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME = ?', [database, name]);
  return rows.length > 0;
}

/**
 * Which of these trigger names exist in the database, spelt exactly so (information_schema compares
 * case-insensitively: `t__ti` would find `T__ti`, another table's), on `tables` when given.
 */
export async function existingTriggers(db: Queryable, database: string, names: string[], tables?: string[]): Promise<string[]> {
  const [rows] = await db.query<RowDataPacket[]>(
    'SELECT TRIGGER_NAME AS name, EVENT_OBJECT_TABLE AS tbl FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND TRIGGER_NAME IN (?)',
    [database, names],
  );
  return rows.filter((r) => names.includes(String(r.name)) && (!tables || tables.includes(String(r.tbl)))).map((r) => String(r.name));
}

/** An existing base table's shape; one line of refusal for a missing table or a view. */
export async function describeExisting(db: Pool, database: string, table: string, what = 'table'): Promise<TableShape> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
    database,
    table,
  ]);
  if (rows.length === 0) throw new UserError(`${what} ${database}.${table} does not exist`);
  if (String(rows[0].TABLE_TYPE) === 'VIEW') throw new UserError(`${database}.${table} is a view, not a table`);
  return describeTable(db, database, table);
}
