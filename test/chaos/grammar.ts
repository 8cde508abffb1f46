/**
 * The random parts of a chaos run, from one seed: a table (columns of the types DBAs use, a key that
 * may be composite or not an integer, secondary and unique keys, NULLs and defaults, generated
 * columns), its rows, an ALTER from the changes shadowcut supports, and values for the writers.
 */
import type { Prng } from './prng.js';

export type EngineKind = 'mysql' | 'postgres';

/** A column type: how to spell it, and how to make values for it, edge values included. */
interface TypeSpec {
  family: string;
  sql: string;
  value(r: Prng, n: number): string;
  /** Can be part of a key or index (MySQL: no TEXT/BLOB without a prefix). */
  indexable: boolean;
  /** Types this one widens into, and ones it may narrow into when the data fits. */
  wider?: string[];
  narrower?: string[];
}

const q = (s: string) => `'${s.replace(/'/g, "''")}'`;
const pad = (n: number, w: number) => String(n).padStart(w, '0');
const strings = ['', ' ', 'a', 'A', 'a ', 'ß', 'É', 'straße', '😀', 'x'.repeat(40), "it's", 'NULL'];

function intType(family: string, sql: string, min: bigint, max: bigint, wider: string[], narrower: string[] = []): TypeSpec {
  return {
    family,
    sql,
    indexable: true,
    wider,
    narrower,
    value: (r, n) => {
      if (r.chance(0.1)) return String(r.pick([min, max, 0n, min < 0n ? -1n : 1n]));
      const span = max - min < 2000n ? max - min : 2000n;
      const v = (min < 0n ? -span / 2n : 0n) + BigInt(r.int(0, Number(span))) + BigInt(n % 7);
      return String(v > max ? max : v < min ? min : v);
    },
  };
}

function timestampValue(r: Prng, from: number, years: number, micro: boolean, zone = ''): string {
  const ms = Date.UTC(from, 0, 1) + Math.floor(r.next() * years * 365 * 86_400_000);
  const d = new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
  return q(`${d.slice(0, 19)}${micro ? `.${pad(r.int(0, 999_999), 6)}` : ''}${zone}`);
}

const MYSQL_TYPES: TypeSpec[] = [
  intType('tinyint', 'TINYINT', -128n, 127n, ['smallint', 'int', 'bigint']),
  intType('smallint', 'SMALLINT', -32768n, 32767n, ['int', 'bigint'], ['tinyint']),
  intType('int', 'INT', -2147483648n, 2147483647n, ['bigint'], ['smallint']),
  intType('bigint', 'BIGINT', -9223372036854775808n, 9223372036854775807n, [], ['int']),
  intType('uint', 'INT UNSIGNED', 0n, 4294967295n, ['ubigint']),
  intType('ubigint', 'BIGINT UNSIGNED', 0n, 18446744073709551615n, []),
  {
    family: 'decimal',
    sql: 'DECIMAL(30,10)',
    indexable: true,
    wider: ['decimal_wide'],
    value: (r) =>
      r.chance(0.1)
        ? r.pick(['99999999999999999999.9999999999', '-99999999999999999999.9999999999', '0'])
        : `${r.chance(0.5) ? '-' : ''}${r.int(0, 999999999)}${pad(r.int(0, 99999), 5)}.${pad(r.int(0, 9999999999), 10)}`,
  },
  { family: 'decimal_wide', sql: 'DECIMAL(40,12)', indexable: true, value: (r) => `${r.int(0, 999999)}.${pad(r.int(0, 999999), 6)}` },
  {
    family: 'double',
    sql: 'DOUBLE',
    indexable: true,
    value: (r) => (r.chance(0.1) ? r.pick(['1.7976931348623157e308', '-2.2250738585072014e-308', '0']) : String(r.next() * 1e6 - 5e5)),
  },
  {
    family: 'varchar',
    sql: 'VARCHAR(60)',
    indexable: true,
    wider: ['varchar_wide', 'text'],
    value: (r, n) => q(r.chance(0.3) ? r.pick(strings) : `v${n}-${r.int(0, 99999)}`),
  },
  { family: 'varchar_wide', sql: 'VARCHAR(200)', indexable: true, value: (r, n) => q(`w${n}-${r.int(0, 99999)}`) },
  { family: 'char', sql: 'CHAR(12) COLLATE utf8mb4_unicode_ci', indexable: true, value: (r) => q(r.pick(['', 'abc', 'ABC', 'Ünïcode', 'z'.repeat(12)])) },
  { family: 'text', sql: 'TEXT', indexable: false, value: (r, n) => q(r.chance(0.1) ? 'x'.repeat(r.int(1000, 20000)) : `text ${n} ${r.pick(strings)}`) },
  {
    family: 'blob',
    sql: 'BLOB',
    indexable: false,
    value: (r) => (r.chance(0.1) ? "X''" : `X'${Array.from({ length: r.int(1, 40) }, () => r.int(0, 255).toString(16).padStart(2, '0')).join('')}'`),
  },
  { family: 'date', sql: 'DATE', indexable: true, value: (r) => timestampValue(r, 1000, 9000, false).slice(0, 11) + "'" },
  { family: 'datetime', sql: 'DATETIME(6)', indexable: true, value: (r) => timestampValue(r, 1000, 9000, true) },
  { family: 'timestamp', sql: 'TIMESTAMP(6) NULL', indexable: true, value: (r) => timestampValue(r, 1971, 66, true) },
  { family: 'json', sql: 'JSON', indexable: false, value: (r, n) => q(JSON.stringify({ n, s: r.pick(strings), a: [r.int(0, 9), null, true], f: r.next() })) },
  { family: 'enum', sql: "ENUM('new','paid','shipped','on hold')", indexable: true, value: (r) => q(r.pick(['new', 'paid', 'shipped', 'on hold'])) },
  { family: 'set', sql: "SET('a','b','c')", indexable: true, value: (r) => q(r.pick(['', 'a', 'a,b', 'c,a', 'a,b,c'])) },
  { family: 'bit', sql: 'BIT(10)', indexable: true, value: (r) => `b'${r.int(0, 1023).toString(2)}'` },
  { family: 'bool', sql: 'BOOLEAN', indexable: true, value: (r) => r.pick(['TRUE', 'FALSE']) },
];

const PG_TYPES: TypeSpec[] = [
  intType('smallint', 'smallint', -32768n, 32767n, ['int', 'bigint', 'numeric']),
  intType('int', 'int', -2147483648n, 2147483647n, ['bigint', 'numeric'], ['smallint']),
  intType('bigint', 'bigint', -9223372036854775808n, 9223372036854775807n, ['numeric'], ['int']),
  {
    family: 'numeric',
    sql: 'numeric(40,10)',
    indexable: true,
    wider: ['numeric_free'],
    value: (r) => `${r.chance(0.5) ? '-' : ''}${r.int(0, 999999999)}${pad(r.int(0, 999999999), 9)}.${pad(r.int(0, 9999999999), 10)}`,
  },
  { family: 'numeric_free', sql: 'numeric', indexable: true, value: (r) => `${r.int(0, 99999)}.${pad(r.int(0, 99999), 5)}` },
  {
    family: 'double',
    sql: 'double precision',
    indexable: true,
    value: (r) => (r.chance(0.1) ? r.pick(["'Infinity'", "'-Infinity'", "'NaN'", '0', '1e308']) : String(r.next() * 1e6 - 5e5)),
  },
  { family: 'real', sql: 'real', indexable: true, wider: ['double'], value: (r) => String(Math.fround(r.next() * 1000)) },
  {
    family: 'varchar',
    sql: 'varchar(60)',
    indexable: true,
    wider: ['varchar_wide', 'text'],
    value: (r, n) => q(r.chance(0.3) ? r.pick(strings) : `v${n}-${r.int(0, 99999)}`),
  },
  { family: 'varchar_wide', sql: 'varchar(200)', indexable: true, value: (r, n) => q(`w${n}-${r.int(0, 99999)}`) },
  { family: 'char', sql: 'char(12)', indexable: true, value: (r) => q(r.pick(['', 'abc', 'ABC', 'Ünïcode', 'z'.repeat(12)])) },
  { family: 'text', sql: 'text', indexable: true, value: (r, n) => q(r.chance(0.1) ? 'x'.repeat(r.int(1000, 20000)) : `text ${n} ${r.pick(strings)}`) },
  {
    family: 'bytea',
    sql: 'bytea',
    indexable: true,
    value: (r) => `'\\x${Array.from({ length: r.int(0, 40) }, () => r.int(0, 255).toString(16).padStart(2, '0')).join('')}'`,
  },
  { family: 'date', sql: 'date', indexable: true, value: (r) => timestampValue(r, 1000, 9000, false).slice(0, 11) + "'" },
  { family: 'timestamp', sql: 'timestamp(6)', indexable: true, value: (r) => timestampValue(r, 1000, 9000, true) },
  { family: 'timestamptz', sql: 'timestamptz(6)', indexable: true, value: (r) => timestampValue(r, 1900, 200, true, r.pick(['+00', '+05:30', '-08'])) },
  { family: 'jsonb', sql: 'jsonb', indexable: false, value: (r, n) => q(JSON.stringify({ n, s: r.pick(strings), a: [r.int(0, 9), null, true] })) },
  { family: 'bool', sql: 'boolean', indexable: true, value: (r) => r.pick(['TRUE', 'FALSE']) },
  { family: 'intarray', sql: 'int[]', indexable: true, value: (r) => q(`{${Array.from({ length: r.int(0, 4) }, () => r.int(-9, 9)).join(',')}}`) },
  {
    family: 'textarray',
    sql: 'text[]',
    indexable: true,
    value: (r) => q(`{${Array.from({ length: r.int(0, 3) }, () => `"${r.pick(['a', 'b c', 'ß', ''])}"`).join(',')}}`),
  },
];

export const TYPES: Record<EngineKind, TypeSpec[]> = { mysql: MYSQL_TYPES, postgres: PG_TYPES };
const typeOf = (engine: EngineKind, family: string) => TYPES[engine].find((t) => t.family === family)!;

export interface Column {
  name: string;
  type: TypeSpec;
  nullable: boolean;
  /** A literal, or undefined. */
  default?: string;
  /** Generated from another integer column (stored). */
  generatedFrom?: string;
}

export interface TableSpec {
  engine: EngineKind;
  columns: Column[];
  /** Key columns, in key order: k1 (and k2 when composite). */
  key: Column[];
  indexes: { name: string; unique: boolean; columns: string[] }[];
  /** A nullable integer column with distinct values, under a unique key: the writers move values between rows. */
  unique: string | null;
  /**
   * The table is the parent of two children's foreign keys on its key, `<name>_cc` (ON DELETE
   * CASCADE) and `<name>_cr` (RESTRICT, nullable), which the writers write too. The single-table
   * path draws it on MySQL; the set path on both engines, with `_cr` a table of the set.
   */
  children?: boolean;
  /**
   * MySQL: the table is itself a child: its column `pa_id` (BIGINT NULL, outside `columns`, so no
   * ALTER draws it) references `<name>_pa (id)` (RESTRICT), which the copy path moves to the new
   * table at the cut-over. The writers add parents, point rows at one or at none, and delete parents
   * (refused while a row points at them).
   */
  parentKey?: boolean;
  /**
   * The key's ON DELETE action when not RESTRICT: deleting a parent then changes the table's rows in
   * the server itself, with no row event of the table's, which the run follows through the parent's.
   */
  parentCascade?: 'CASCADE' | 'SET NULL';
  /**
   * PostgreSQL: range-partitioned on the last key column (the one the writers' key moves change, so
   * rows move between partitions), two ranges below two bounds and a default partition for the rest.
   */
  partition?: { column: string; bounds: [string, string] };
  /**
   * PostgreSQL: no primary key, the key columns under a UNIQUE constraint instead (they are NOT NULL):
   * the stream cannot follow such a table, so the copy must follow it by triggers.
   */
  uniqueKey?: boolean;
}

/** The parent of a table with `parentKey`, and how many rows it starts with. */
export const parentTable = (name: string) => `${name}_pa`;
export const PARENT_ROWS = 60;

/** The children of a table with `children`, by the parent's name. */
export const childTables = (name: string) => [`${name}_cc`, `${name}_cr`];

/** The columns a child keeps its parent's key in. */
export const parentColumns = (t: TableSpec) => t.key.map((c) => `p_${c.name}`);

/** The two children of `name` (after the parent's own statements). */
export function childTablesSql(t: TableSpec, name: string): string[] {
  const id = (n: string) => ident(t.engine, n);
  const columns = parentColumns(t).map(id).join(', ');
  const key = t.key.map((c) => id(c.name)).join(', ');
  return childTables(name).map((child, i) => {
    const cascade = i === 0;
    const cols = t.key.map((c, at) => `${id(parentColumns(t)[at])} ${c.type.sql} ${cascade ? 'NOT NULL' : 'NULL'}`).join(', ');
    return `CREATE TABLE ${id(child)} (id BIGINT PRIMARY KEY, ${cols}, w INT NOT NULL DEFAULT 0,
      CONSTRAINT ${id(`${child}_fk`)} FOREIGN KEY (${columns}) REFERENCES ${id(name)} (${key})${cascade ? ' ON DELETE CASCADE' : ''})${t.engine === 'mysql' ? ' ENGINE=InnoDB' : ''}`;
  });
}

const KEY_KINDS = ['int', 'bigint', 'varchar', 'composite'] as const;

/**
 * `extra`, a generator of its own, draws whether a PostgreSQL table is partitioned, so every other
 * draw is still what the seed drew before partitioned tables existed.
 */
export function makeTable(r: Prng, engine: EngineKind, extra?: Prng): TableSpec {
  const types = TYPES[engine];
  const kind = r.pick(KEY_KINDS);
  const key: Column[] =
    kind === 'composite'
      ? [
          { name: 'k1', type: typeOf(engine, 'int'), nullable: false },
          { name: 'k2', type: typeOf(engine, 'varchar'), nullable: false },
        ]
      : [{ name: 'k1', type: typeOf(engine, kind), nullable: false }];
  const columns: Column[] = [...key];
  const count = r.int(3, 20) - key.length;
  for (let i = 1; i <= count; i++) {
    const type = r.pick(types);
    const nullable = r.chance(0.6);
    const column: Column = { name: `c${i}`, type, nullable };
    if (r.chance(0.3)) column.default = type.value(r, 0);
    columns.push(column);
  }
  const ints = columns.filter((c) => !key.includes(c) && ['int', 'smallint', 'bigint'].includes(c.type.family));
  if (ints.length && r.chance(0.3)) columns.push({ name: 'g1', type: typeOf(engine, 'bigint'), nullable: true, generatedFrom: r.pick(ints).name });
  const unique = r.chance(0.5) ? 'u1' : null;
  if (unique) columns.push({ name: unique, type: typeOf(engine, 'bigint'), nullable: true });
  const indexable = columns.filter((c) => !key.includes(c) && c.type.indexable && !c.generatedFrom && c.name !== unique);
  const indexes: TableSpec['indexes'] = unique ? [{ name: 'ux_u1', unique: true, columns: [unique] }] : [];
  for (let i = 1; i <= r.int(0, 2) && indexable.length; i++) {
    const first = r.pick(indexable);
    const second = r.chance(0.3) ? r.pick(indexable) : null;
    indexes.push({ name: `ix${i}`, unique: false, columns: second && second !== first ? [first.name, second.name] : [first.name] });
  }
  const t: TableSpec = { engine, columns, key, indexes, unique };
  if (engine === 'postgres' && extra?.chance(0.3)) {
    const last = key[key.length - 1];
    const at = key.length - 1;
    t.partition = { column: last.name, bounds: [keyValues(t, extra.int(100, 600))[at], keyValues(t, extra.int(700, 1400))[at]] };
    // A unique index of a partitioned table must hold its partition key.
    for (const ix of indexes) if (ix.unique) ix.columns.push(last.name);
  }
  return t;
}

export const ident = (engine: EngineKind, name: string) => (engine === 'mysql' ? `\`${name}\`` : `"${name}"`);

export function createTableSql(t: TableSpec, name: string): string[] {
  const id = (n: string) => ident(t.engine, n);
  const cols = t.columns.map((c) => {
    if (c.generatedFrom) {
      return t.engine === 'mysql'
        ? `${id(c.name)} BIGINT AS (${id(c.generatedFrom)} % 1000 + 1) STORED`
        : `${id(c.name)} bigint GENERATED ALWAYS AS (${id(c.generatedFrom)} % 1000 + 1) STORED`;
    }
    const nullability = c.nullable ? (c.type.sql.endsWith('NULL') ? '' : ' NULL') : ' NOT NULL';
    return `${id(c.name)} ${c.type.sql}${nullability}${c.default !== undefined ? ` DEFAULT ${c.default}` : ''}`;
  });
  const keyColumns = t.key.map((c) => id(c.name)).join(', ');
  cols.push(t.uniqueKey ? `CONSTRAINT ${id(`${name}_key`)} UNIQUE (${keyColumns})` : `PRIMARY KEY (${keyColumns})`);
  const statements: string[] = [];
  if (t.parentKey && t.engine === 'mysql') {
    statements.push(`CREATE TABLE ${id(parentTable(name))} (id BIGINT PRIMARY KEY) ENGINE=InnoDB`);
    statements.push(`INSERT INTO ${id(parentTable(name))} (id) VALUES ${Array.from({ length: PARENT_ROWS }, (_, i) => `(${i + 1})`).join(', ')}`);
    cols.push(
      `pa_id BIGINT NULL`,
      `CONSTRAINT ${id(`${name}_pa_fk`)} FOREIGN KEY (pa_id) REFERENCES ${id(parentTable(name))} (id)${t.parentCascade ? ` ON DELETE ${t.parentCascade}` : ''}`,
    );
  }
  if (t.engine === 'mysql') {
    for (const ix of t.indexes) cols.push(`${ix.unique ? 'UNIQUE ' : ''}KEY ${id(ix.name)} (${ix.columns.map(id).join(', ')})`);
    statements.push(`CREATE TABLE ${id(name)} (${cols.join(', ')}) ENGINE=InnoDB`);
  } else if (t.partition) {
    const [low, high] = t.partition.bounds;
    statements.push(`CREATE TABLE ${id(name)} (${cols.join(', ')}) PARTITION BY RANGE (${id(t.partition.column)})`);
    statements.push(`CREATE TABLE ${id(`${name}_p0`)} PARTITION OF ${id(name)} FOR VALUES FROM (MINVALUE) TO (${low})`);
    statements.push(`CREATE TABLE ${id(`${name}_p1`)} PARTITION OF ${id(name)} FOR VALUES FROM (${low}) TO (${high})`);
    statements.push(`CREATE TABLE ${id(`${name}_pd`)} PARTITION OF ${id(name)} DEFAULT`);
    for (const ix of t.indexes)
      statements.push(`CREATE ${ix.unique ? 'UNIQUE ' : ''}INDEX ${id(`${name}_${ix.name}`)} ON ${id(name)} (${ix.columns.map(id).join(', ')})`);
  } else {
    statements.push(`CREATE TABLE ${id(name)} (${cols.join(', ')})`);
    for (const ix of t.indexes)
      statements.push(`CREATE ${ix.unique ? 'UNIQUE ' : ''}INDEX ${id(`${name}_${ix.name}`)} ON ${id(name)} (${ix.columns.map(id).join(', ')})`);
  }
  return statements;
}

/** The key of row number n: sparse integers, or zero-padded text, so inserts can come in between. */
export function keyValues(t: TableSpec, n: number): string[] {
  return t.key.map((c, i) => {
    if (c.type.family === 'varchar') return q(`k${pad(n, 9)}`);
    return String(i === 0 && t.key.length > 1 ? n % 97 : n * 3);
  });
}

/**
 * One row's column values (generated columns left out), in `writable(t)` order. A column in
 * `explicit` gets a value where the server's default would otherwise be asked for (the in-place
 * rule in README.md: its default is what the ALTER changes).
 */
export function rowValues(r: Prng, t: TableSpec, n: number, explicit: ReadonlySet<string> = new Set()): string[] {
  return writable(t).map((c) => {
    if (t.key.includes(c)) return keyValues(t, n)[t.key.indexOf(c)];
    if (c.name === t.unique) return r.chance(0.1) ? 'NULL' : String(n * 10);
    if (c.nullable && r.chance(0.15)) return 'NULL';
    if (c.default !== undefined && r.chance(0.1)) return explicit.has(c.name) ? c.type.value(r, n) : 'DEFAULT';
    return c.type.value(r, n);
  });
}

/**
 * The columns whose default the ALTER changes: SET/DROP DEFAULT, and on MySQL a MODIFY, which
 * redefines the whole column (a default it does not restate is gone).
 */
export function defaultsChangedBy(t: TableSpec, alter: string): Set<string> {
  const q = t.engine === 'mysql' ? '`' : '"';
  const pattern = new RegExp(`(?:ALTER COLUMN ${q}(\\w+)${q} (?:SET|DROP) DEFAULT|MODIFY ${q}(\\w+)${q})`, 'g');
  return new Set([...alter.matchAll(pattern)].map((m) => m[1] ?? m[2]));
}

export const writable = (t: TableSpec) => t.columns.filter((c) => !c.generatedFrom);

/** The mix every seed drew before the default path was tested: many parts the copy makes. */
const COPY_MIX = ['add', 'add', 'drop', 'rename', 'retype', 'retype', 'nullability', 'default', 'index', 'unique', 'dropindex'] as const;
/** Parts the servers can make in place (metadata only, validated later, an index built online). */
const IN_PLACE_MIX = ['add', 'add', 'drop', 'default', 'default', 'rename', 'widen', 'check', 'renameindex', 'dropindex', 'unique', 'nullability'] as const;
/** Parts that fail on the rows the grammar makes: a CHECK some break, a UNIQUE over repeated values, SET NOT NULL over NULLs. */
const FAILING = ['broken', 'unique', 'nullability'] as const;

/**
 * An ALTER, of one of three shapes chosen by `extra` (a generator of its own, so that the first
 * shape is still exactly what each seed drew before it existed):
 * - one to three changes of COPY_MIX (PostgreSQL's RENAME stands alone);
 * - the same, and a CHECK: one every row meets, one some rows break, or on PostgreSQL one added NOT VALID;
 * - one to three changes the servers make in place, and half the time one that fails on the data.
 * Mixed with a DROP, an ADD or a new default, a part that rows break makes the ALTER one the server
 * refuses whole: so must shadowcut, leaving the table as it was.
 */
export function makeAlter(r: Prng, t: TableSpec, extra?: Prng, keyed?: { r: Prng; table: string }): string {
  const shape = extra?.next() ?? 0;
  const alter =
    shape < 0.4
      ? drawAlter(r, t, COPY_MIX, [])
      : shape < 0.7
        ? drawAlter(r, t, COPY_MIX, ['check'])
        : drawAlter(extra!, t, IN_PLACE_MIX, extra!.chance(0.5) ? [extra!.pick(FAILING)] : []);
  const key = keyed && keyed.r.chance(0.25) ? keyChange(keyed.r, t, alter, keyed.table) : null;
  return key ? `${alter}, ${key}` : alter;
}

/**
 * The primary key replaced or dropped (issue 71): by the key's columns in another order, widened by a
 * NOT NULL column the rest of the ALTER leaves alone, or dropped. Drawn from a generator of its own,
 * so every other draw is the seed's as before. PostgreSQL names the constraint after the table; the
 * native ALTER names the mirror's (`nativeAlter`).
 */
function keyChange(r: Prng, t: TableSpec, alter: string, table: string): string | null {
  // A PostgreSQL RENAME stands alone in its ALTER.
  if (t.uniqueKey || t.partition || t.children || t.parentKey || alter.startsWith('RENAME ')) return null;
  const id = (n: string) => ident(t.engine, n);
  const drop = t.engine === 'mysql' ? 'DROP PRIMARY KEY' : `DROP CONSTRAINT ${id(`${table}_pkey`)}`;
  const keys = t.key.map((c) => id(c.name));
  const widening = t.columns.filter((c) => !c.nullable && !c.generatedFrom && c.type.indexable && !t.key.includes(c) && !alter.includes(id(c.name)));
  const choice = r.pick(['reorder', 'widen', 'drop'] as const);
  if (choice === 'reorder' && keys.length > 1) return `${drop}, ADD PRIMARY KEY (${[...keys].reverse().join(', ')})`;
  if (choice === 'widen' && widening.length) return `${drop}, ADD PRIMARY KEY (${[id(r.pick(widening).name), ...keys].join(', ')})`;
  return drop;
}

function drawAlter(r: Prng, t: TableSpec, mix: readonly Change[], tail: Change[]): string {
  const id = (n: string) => ident(t.engine, n);
  const others = t.columns.filter((c) => !t.key.includes(c) && !c.generatedFrom && c.name !== t.unique);
  const used = new Set<string>();
  const free = () => {
    const left = others.filter((c) => !used.has(c.name) && !t.columns.some((g) => g.generatedFrom === c.name));
    if (!left.length) return null;
    const c = r.pick(left);
    used.add(c.name);
    return c;
  };
  const pick: Pick = { free, index: () => t.indexes.find((i) => !i.unique && !used.has(i.name) && used.add(i.name)) ?? null };
  if (t.engine === 'postgres' && r.chance(0.1)) {
    const c = free();
    if (c) return `RENAME COLUMN ${id(c.name)} TO ${id(`${c.name}_r`)}`;
  }
  const parts: string[] = [];
  const wanted = r.int(1, 3);
  const change = (kind: Change) => (t.engine === 'mysql' ? mysqlChange(r, t, kind, pick, id) : pgChange(r, t, kind, pick, id));
  for (let tries = 0; parts.length < wanted && tries < 10; tries++) {
    const part = change(r.pick(mix));
    if (part) parts.push(part);
  }
  for (const kind of tail) {
    const part = change(kind);
    if (part) parts.push(part);
  }
  return parts.length ? parts.join(', ') : `ADD COLUMN ${id('added')} int`;
}

/** Columns and indexes not yet used by another part of the same ALTER. */
interface Pick {
  free(): Column | null;
  index(): { name: string } | null;
}

const SIGNED_NUMBERS = ['tinyint', 'smallint', 'int', 'bigint', 'decimal', 'numeric', 'numeric_free', 'double', 'real'];
const STRINGS = ['varchar', 'varchar_wide', 'char', 'text'];

/**
 * A CHECK on column c: every value the grammar makes meets `c = c`; `c >= 0`, a length of at most 3
 * or `c IS NULL` some rows break. NOT VALID (PostgreSQL) checks only rows written from then on.
 */
function checkPart(r: Prng, t: TableSpec, c: Column, broken: boolean): string {
  const col = ident(t.engine, c.name);
  const breaking = SIGNED_NUMBERS.includes(c.type.family) ? `${col} >= 0` : STRINGS.includes(c.type.family) ? `char_length(${col}) <= 3` : `${col} IS NULL`;
  const notValid = t.engine === 'postgres' && !broken && r.chance(0.3);
  return `ADD CONSTRAINT ${ident(t.engine, `ck_${c.name}`)} CHECK (${broken || notValid ? breaking : `${col} = ${col}`})${notValid ? ' NOT VALID' : ''}`;
}

type Change =
  'add' | 'drop' | 'rename' | 'retype' | 'nullability' | 'default' | 'index' | 'unique' | 'dropindex' | 'widen' | 'check' | 'broken' | 'renameindex';

function newColumn(r: Prng, t: TableSpec, id: (n: string) => string, n: number): string {
  const type = r.pick(TYPES[t.engine].filter((x) => x.family !== 'timestamp' || t.engine === 'postgres'));
  const def = r.chance(0.5) ? ` DEFAULT ${type.value(r, 0)}` : '';
  const notNull = def && r.chance(0.5) ? ' NOT NULL' : '';
  return `ADD COLUMN ${id(`n${n}`)} ${type.sql}${notNull}${def}`;
}

/** The changes both engines spell alike. */
function commonChange(r: Prng, t: TableSpec, change: 'add' | 'drop', free: () => Column | null, id: (n: string) => string): string | null {
  if (change === 'add') return newColumn(r, t, id, r.int(1, 99));
  const c = free();
  return c && `DROP COLUMN ${id(c.name)}`;
}

function mysqlChange(r: Prng, t: TableSpec, change: Change, pick: Pick, id: (n: string) => string): string | null {
  const free = pick.free;
  switch (change) {
    case 'add':
    case 'drop':
      return commonChange(r, t, change, free, id);
    case 'rename': {
      const c = free();
      return c && `RENAME COLUMN ${id(c.name)} TO ${id(`${c.name}_r`)}`;
    }
    case 'retype': {
      const c = free();
      const to = c && r.pick([...(c.type.wider ?? []), ...(c.type.narrower ?? [])]);
      return c && to ? `MODIFY ${id(c.name)} ${typeOf('mysql', to).sql}${c.nullable ? ' NULL' : ' NOT NULL'}` : null;
    }
    case 'nullability': {
      const c = free();
      return c && `MODIFY ${id(c.name)} ${c.type.sql}${c.nullable && !c.type.sql.endsWith('NULL') ? ' NOT NULL' : ' NULL'}`;
    }
    case 'default': {
      const c = free();
      if (!c || ['text', 'blob', 'json'].includes(c.type.family)) return null;
      return r.chance(0.5) ? `ALTER COLUMN ${id(c.name)} SET DEFAULT ${c.type.value(r, 1)}` : `ALTER COLUMN ${id(c.name)} DROP DEFAULT`;
    }
    case 'index':
    case 'unique': {
      const c = free();
      return c && c.type.indexable ? `ADD ${change === 'unique' ? 'UNIQUE ' : ''}KEY ${id(`${change}_${c.name}`)} (${id(c.name)})` : null;
    }
    case 'dropindex': {
      const ix = pick.index();
      return ix ? `DROP INDEX ${id(ix.name)}` : null;
    }
    case 'renameindex': {
      const ix = pick.index();
      return ix ? `RENAME INDEX ${id(ix.name)} TO ${id(`${ix.name}_r`)}` : null;
    }
    case 'widen': {
      // Within the same length bytes (1 below 256 bytes, 2 above), which InnoDB can do instantly.
      const c = free();
      const to = c?.type.family === 'varchar' ? 'VARCHAR(63)' : c?.type.family === 'varchar_wide' ? 'VARCHAR(250)' : null;
      return c && to ? `MODIFY ${id(c.name)} ${to}${c.nullable ? ' NULL' : ' NOT NULL'}` : null;
    }
    case 'check':
    case 'broken': {
      const c = free();
      return c && checkPart(r, t, c, change === 'broken');
    }
  }
}

function pgChange(r: Prng, t: TableSpec, change: Change, pick: Pick, id: (n: string) => string): string | null {
  const free = pick.free;
  switch (change) {
    case 'add':
    case 'drop':
      return commonChange(r, t, change, free, id);
    case 'rename':
    case 'dropindex':
    case 'renameindex':
      return null; // RENAME stands alone on PostgreSQL; an index is not dropped or renamed with ALTER TABLE
    case 'widen': {
      const c = free();
      const to = c?.type.family === 'varchar' ? r.pick(['varchar(200)', 'text']) : c?.type.family === 'varchar_wide' ? 'varchar(400)' : null;
      return c && to ? `ALTER COLUMN ${id(c.name)} TYPE ${to}` : null;
    }
    case 'check':
    case 'broken': {
      const c = free();
      return c && checkPart(r, t, c, change === 'broken');
    }
    case 'retype': {
      const c = free();
      if (!c) return null;
      const to = r.pick([...(c.type.wider ?? []), ...(c.type.narrower ?? [])]);
      if (to) return `ALTER COLUMN ${id(c.name)} TYPE ${typeOf('postgres', to).sql}`;
      if (['int', 'smallint', 'bigint'].includes(c.type.family)) return `ALTER COLUMN ${id(c.name)} TYPE numeric(30,2) USING(${id(c.name)} / 4.0)`;
      if (c.type.family === 'varchar' || c.type.family === 'text') return `ALTER COLUMN ${id(c.name)} TYPE text USING upper(${id(c.name)})`;
      return null;
    }
    case 'nullability': {
      const c = free();
      return c && `ALTER COLUMN ${id(c.name)} ${c.nullable ? 'SET' : 'DROP'} NOT NULL`;
    }
    case 'default': {
      const c = free();
      return c && (r.chance(0.5) ? `ALTER COLUMN ${id(c.name)} SET DEFAULT ${c.type.value(r, 1)}` : `ALTER COLUMN ${id(c.name)} DROP DEFAULT`);
    }
    case 'index':
    case 'unique': {
      const c = free();
      return c && change === 'unique' && c.type.indexable ? `ADD CONSTRAINT ${id(`uq_${c.name}`)} UNIQUE (${id(c.name)})` : null;
    }
  }
}
