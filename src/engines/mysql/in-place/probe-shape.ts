import { createHash } from 'node:crypto';
import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { ident, qualified } from '../server/sql.js';

/** Rows the classification probe takes from the table: a pass over them stands out from the counters' noise. */
export const PROBE_ROWS = 64;

export interface ClassificationProbe {
  rows: number;
  /** The table's foreign key names (lower case) -> the probe's: names are unique per database in InnoDB. */
  foreignKeys: Map<string, string>;
}

/**
 * Makes a real copy of the table's definition (`LIKE`, see createMarkedProbe) a copy for the server
 * to try ALTER parts on: the table's foreign keys, under names of the probe's own, and a few of its
 * rows, so that a part that reads or rewrites rows shows in the counters. Foreign key checks are off
 * only while the probe is furnished: the parts are tried under the session's own setting, as the
 * real ALTER will be.
 */
export async function furnishClassificationProbe(conn: PoolConnection, database: string, table: string, probe: string): Promise<ClassificationProbe> {
  const [[{ checks }]] = await conn.query<RowDataPacket[]>('SELECT @@SESSION.foreign_key_checks AS checks');
  await conn.query('SET SESSION foreign_key_checks = 0');
  try {
    const foreignKeys = await copyForeignKeys(conn, database, table, probe);
    const columns = await insertableColumns(conn, database, table);
    // IGNORE: a value the session's sql_mode would refuse (a zero date) only needs to be a row.
    const [done] = await conn.query<ResultSetHeader>(
      `INSERT IGNORE INTO ${qualified(database, probe)} (${columns}) SELECT ${columns} FROM ${qualified(database, table)} LIMIT ${PROBE_ROWS}`,
    );
    return { rows: done.affectedRows, foreignKeys };
  } finally {
    await conn.query('SET SESSION foreign_key_checks = ?', [Number(checks)]);
  }
}

/** A clause as it must read on the probe: a foreign key it drops by name gets the probe's name. */
export function onProbe(clause: string, foreignKeys: Map<string, string>): string {
  const m = /^(DROP\s+(?:FOREIGN\s+KEY|CONSTRAINT)\s+(?:IF\s+EXISTS\s+)?)(?:`((?:[^`]|``)+)`|([^\s`]+))\s*$/i.exec(clause);
  if (!m) return clause;
  const probeName = foreignKeys.get((m[2] !== undefined ? m[2].replace(/``/g, '`') : m[3]).toLowerCase());
  return probeName ? `${m[1]}${ident(probeName)}` : clause;
}

/** The server's words about the probe, about the table instead. */
export function asTable(message: string, probe: string, foreignKeys: Map<string, string>, table = 'the table'): string {
  let text = message.replaceAll(probe, table);
  // Longest first: `..._1` is the start of `..._10`.
  for (const [name, probeName] of [...foreignKeys].sort((a, b) => b[1].length - a[1].length)) text = text.replaceAll(probeName, name);
  return text;
}

async function copyForeignKeys(conn: PoolConnection, database: string, table: string, probe: string): Promise<Map<string, string>> {
  const [rows] = await conn.query<RowDataPacket[]>(
    `SELECT rc.CONSTRAINT_NAME AS name, rc.UPDATE_RULE AS onUpdate, rc.DELETE_RULE AS onDelete, k.COLUMN_NAME AS col,
            k.REFERENCED_TABLE_SCHEMA AS refSchema, k.REFERENCED_TABLE_NAME AS refTable, k.REFERENCED_COLUMN_NAME AS refCol
       FROM information_schema.REFERENTIAL_CONSTRAINTS rc
       JOIN information_schema.KEY_COLUMN_USAGE k
         ON k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA AND k.TABLE_NAME = rc.TABLE_NAME AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME
      WHERE rc.CONSTRAINT_SCHEMA = ? AND rc.TABLE_NAME = ? AND k.REFERENCED_TABLE_NAME IS NOT NULL
      ORDER BY rc.CONSTRAINT_NAME, k.ORDINAL_POSITION`,
    [database, table],
  );
  const byName = new Map<string, RowDataPacket[]>();
  for (const r of rows) byName.set(String(r.name), [...(byName.get(String(r.name)) ?? []), r]);
  const names = new Map<string, string>();
  const clauses: string[] = [];
  const stem = `shadowcut_probe_${createHash('sha1').update(`${database}.${table}`).digest('hex').slice(0, 12)}`;
  for (const [name, cols] of byName) {
    const probeName = `${stem}_${names.size + 1}`;
    names.set(name.toLowerCase(), probeName);
    const r = cols[0];
    clauses.push(
      `ADD CONSTRAINT ${ident(probeName)} FOREIGN KEY (${cols.map((c) => ident(String(c.col))).join(', ')}) ` +
        `REFERENCES ${qualified(String(r.refSchema), String(r.refTable))} (${cols.map((c) => ident(String(c.refCol))).join(', ')}) ` +
        `ON DELETE ${r.onDelete} ON UPDATE ${r.onUpdate}`,
    );
  }
  if (clauses.length) await conn.query(`ALTER TABLE ${qualified(database, probe)} ${clauses.join(', ')}`);
  return names;
}

/** Every column a row can be inserted with: not generated (nor a system-versioning period column). */
async function insertableColumns(conn: PoolConnection, database: string, table: string): Promise<string> {
  const [rows] = await conn.query<RowDataPacket[]>(
    `SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?
        AND EXTRA NOT REGEXP 'GENERATED|VIRTUAL|STORED|PERSISTENT|ROW START|ROW END' ORDER BY ORDINAL_POSITION`,
    [database, table],
  );
  return rows.map((r) => ident(String(r.name))).join(', ');
}
