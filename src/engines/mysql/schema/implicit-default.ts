import { ident } from '../server/sql.js';
import type { MysqlColumn } from './inspect.js';

/** A column of the new table that no column of the original fills, and the value the copy writes into it. */
export interface ColumnFill {
  target: string;
  /** SQL the server converts into the column's type, as it converts the copied values. */
  value: string;
}

/**
 * The value a native ALTER gives the existing rows in a column it adds NOT NULL without a DEFAULT:
 * the type's implicit default (0; ''; the zero date, time or instant; an ENUM's first member, which
 * its index 1 names; MySQL's JSON null; MariaDB's all-zero UUID and addresses). The copy's INSERT
 * names the column with it, since under a strict sql_mode leaving it out is an error ("Field ...
 * doesn't have a default value"). Written as text the server converts under the same sql_mode the
 * ALTER would: a zero date under NO_ZERO_DATE fails in both. Null for a type with no value an INSERT
 * can write (GEOMETRY: the native ALTER stores an empty one), which keeps the server's error.
 */
export function implicitDefault(type: string): string | null {
  const t = type.toLowerCase();
  if (/^(tinyint|smallint|mediumint|int|integer|bigint|decimal|numeric|float|double|real|bit|year|bool|boolean)\b/.test(t)) return '0';
  if (/^enum\b/.test(t)) return '1';
  if (/^(set|char|varchar|binary|varbinary|tinytext|text|mediumtext|longtext|tinyblob|blob|mediumblob|longblob)\b/.test(t)) return "''";
  if (t === 'date') return "'0000-00-00'";
  if (/^(datetime|timestamp)\b/.test(t)) return "'0000-00-00 00:00:00'";
  if (/^time\b/.test(t)) return "'00:00:00'";
  if (t === 'json') return "CAST('null' AS JSON)";
  if (t === 'uuid') return "'00000000-0000-0000-0000-000000000000'";
  if (t === 'inet4') return "'0.0.0.0'";
  if (t === 'inet6') return "'::'";
  return null;
}

/**
 * The new table's columns that need a value the copy names: NOT NULL without a DEFAULT
 * (`withoutDefault`, names) and filled by no copied column.
 */
export function implicitFills(shadow: MysqlColumn[], withoutDefault: string[], copiedTargets: string[]): ColumnFill[] {
  const copied = new Set(copiedTargets.map((c) => c.toLowerCase()));
  const needed = new Set(withoutDefault);
  const fills: ColumnFill[] = [];
  for (const column of shadow) {
    if (!needed.has(column.name) || copied.has(column.name.toLowerCase())) continue;
    const value = implicitDefault(column.type);
    if (value !== null) fills.push({ target: column.name, value });
  }
  return fills;
}

/** The fills as the INSERT's extra target columns and values. */
export function fillLists(fills: ColumnFill[] | undefined): { targets: string[]; values: string[] } {
  return { targets: (fills ?? []).map((f) => ident(f.target)), values: (fills ?? []).map((f) => f.value) };
}
