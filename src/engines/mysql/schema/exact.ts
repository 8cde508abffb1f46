import type { ExactForm, TypedColumn, TypeFamily } from '../../../core/engine/compare/exact.js';
import type { MysqlColumn } from './inspect.js';
import { splitClauses } from './alter.js';

/** A column's type (as SHOW COLUMNS prints it) sorted into the families core/engine/compare/exact.ts decides over. */
export function mysqlColumn(c: MysqlColumn): TypedColumn {
  // The collation is part of a string's type: 'a' and 'A' are one value under a _ci collation.
  return { type: `${c.type.toLowerCase()}${c.collation ? ` collate ${c.collation}` : ''}`, family: mysqlFamily(c.type.toLowerCase()) };
}

const fractionOf = (type: string) => Number(/\((\d)\)/.exec(type)?.[1] ?? 0);

function mysqlFamily(type: string): TypeFamily {
  // ZEROFILL pads the text, so a zero-filled number is only ever compared with its own type.
  if (/zerofill/.test(type)) return { family: 'other' };
  if (/^(tinyint|smallint|mediumint|int|integer|bigint)\b/.test(type)) return { family: 'integer' };
  if (/^(decimal|numeric)\b/.test(type)) return { family: 'decimal' };
  if (/^(float|double|real)\b/.test(type)) return { family: 'float' };
  if (/^(char|varchar|tinytext|text|mediumtext|longtext|enum|set)\b/.test(type)) return { family: 'text' };
  if (/^(binary|varbinary|tinyblob|blob|mediumblob|longblob)\b/.test(type)) return { family: 'binary' };
  if (type === 'date') return { family: 'date' };
  if (/^time\b/.test(type)) return { family: 'time', fraction: fractionOf(type) };
  if (/^datetime\b/.test(type)) return { family: 'datetime', fraction: fractionOf(type) };
  if (/^timestamp\b/.test(type)) return { family: 'instant', fraction: fractionOf(type) };
  return { family: 'other' };
}

/** A number's text without trailing zeros after the point: the value, whatever the scale. */
const numberText = (v: string) =>
  `IF(LOCATE('.', CAST(${v} AS CHAR)) > 0, TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM CAST(${v} AS CHAR))), CAST(${v} AS CHAR))`;

/**
 * One side's value in `form`, as text for the row's checksum. Conversions here only ever widen: a
 * DOUBLE prints the shortest text that gives its bits back, and a FLOAT becomes the DOUBLE of the
 * same value first (FLOAT's own text has 6 digits: 1234567 would print as 1234570); dates and
 * times go up to the wider side's fraction of a second; a TIMESTAMP is read in the session's zone
 * (`shadowcut verify` pins it to UTC).
 */
export function mysqlExactValue(form: ExactForm, value: string, column: TypedColumn): string {
  switch (form.form) {
    case 'same':
      return column.family.family === 'float' ? `CAST(${value} AS DOUBLE)` : value;
    case 'integer':
      return value;
    case 'decimal':
      return numberText(value);
    case 'float':
      return `CAST(${value} AS DOUBLE)`;
    case 'text':
      return `CONVERT(${value} USING utf8mb4) COLLATE utf8mb4_bin`;
    case 'binary':
      return `HEX(${value})`;
    case 'time':
      return `CAST(${value} AS TIME(${form.fraction}))`;
    case 'datetime':
    case 'instant':
      return `CAST(${value} AS DATETIME(${form.fraction}))`;
  }
}

/**
 * Target types whose conversion on INSERT CAST spells the same way: dates, times, decimals, floats,
 * and fixed-width BINARY(n), which both right-pad with 0x00 (and cut what does not fit, which a
 * strict sql_mode refuses in the copy first).
 */
const CAST_LIKE_INSERT = /^(date|datetime(\(\d\))?|time(\(\d\))?|decimal\(\d+,\d+\)|float|double|binary\(\d+\))( unsigned)?$/;

/**
 * The original's value converted to the target's type as the copy's INSERT converts it (a
 * DATETIME(6) going to DATETIME(3) loses what the copy drops, no more), for the types CAST spells;
 * null for the others, which are compared as they are.
 */
export function mysqlConvertLikeCopy(value: string, target: MysqlColumn): string | null {
  const spelled = CAST_LIKE_INSERT.exec(target.type.toLowerCase());
  // UNSIGNED only refuses negatives, which the copy's INSERT would have refused already.
  return spelled ? `CAST(${value} AS ${spelled[1].toUpperCase()})` : null;
}

/**
 * A fixed-width CHAR(n) keeps no trailing spaces: the server pads it to n and strips the padding as
 * it reads (all of it, whatever PAD_CHAR_TO_FULL_LENGTH says, which only pads it again). So a value
 * going into CHAR(n) is compared cut to n characters (which a strict sql_mode refuses in the copy
 * first, unless only spaces go) and without trailing spaces, and the CHAR(n) side without them;
 * null when the target is not a CHAR.
 */
export function mysqlCharLikeCopy(source: string, target: string, column: MysqlColumn): [string, string] | null {
  const width = /^char\((\d+)\)/.exec(column.type.toLowerCase());
  return width ? [`TRIM(TRAILING ' ' FROM LEFT(${source}, ${width[1]}))`, `TRIM(TRAILING ' ' FROM ${target})`] : null;
}

/**
 * A text going into an ENUM or SET is stored as the members it matches under the column's collation,
 * spelled as the definition spells them ('A' and 'b ' become 'a' and 'b' under a _ci PAD SPACE
 * collation; a SET's members in their definition's order, each once). The original's text is turned
 * into that spelling (FIELD and FIND_IN_SET compare under the collation given), so the pair compares
 * as text; null when the target is neither. A value no member matches fails the copy under a strict
 * sql_mode first.
 */
export function mysqlMembersLikeCopy(source: string, column: MysqlColumn): string | null {
  const kind = /^(enum|set)\((.*)\)$/s.exec(column.type);
  if (!kind || !column.collation) return null;
  const members = kind[2];
  // The server strips the text's trailing spaces (not those before a comma), which FIND_IN_SET does not.
  const value = `CONVERT(TRIM(TRAILING ' ' FROM ${source}) USING ${column.collation.split('_')[0]}) COLLATE ${column.collation}`;
  if (kind[1].toLowerCase() === 'enum') return `ELT(FIELD(${value}, ${members}), ${members})`;
  return `CONCAT_WS(',', ${splitClauses(members)
    .map((m) => `IF(FIND_IN_SET(${m}, ${value}), ${m}, NULL)`)
    .join(', ')})`;
}
