import { yieldAutovacuum } from '../server/autovacuum.js';
import type pg from 'pg';
import type { Fragment, KeysetSql } from '../../../core/engine/keyset.js';
import type { CatchUp, ConsistentView, Key, KeyRange, RangeDigest } from '../../../core/engine/types.js';
import { asLockTimeout } from '../server/errors.js';
import { asUser, PgSession, type Client } from '../server/connect.js';
import { ident } from '../server/sql.js';
import type { Copier } from './copy.js';
import { pgColumn, pgExactValue } from '../schema/exact.js';
import type { ColumnMap } from '../schema/shadow.js';
import type { TypedColumn } from '../../../core/engine/compare/exact.js';
import { expectPartitionTree } from '../schema/partitions.js';
import { keyText, quotedText } from './as-text.js';
import { ROLLBACK_AFTER_FAILURE, ignoreFailure } from '../../../core/engine/errors.js';

/**
 * Both tables as of one instant. Writers are held off with SHARE (readers are not), the shadow is
 * caught up on a second connection whose applies commit at once, and only then does that connection
 * open a REPEATABLE READ snapshot: it sees the original frozen and the shadow level with it.
 * (Applying on the lock's own connection would not do: its uncommitted writes are invisible to any
 * other snapshot, exported ones included, and committing it would release the lock too early.)
 */
export async function openConsistentView(pool: pg.Pool, copier: Copier, catchUp: CatchUp, lockTimeoutMs: number): Promise<ConsistentView> {
  await yieldAutovacuum(pool, [copier.original]);
  const lock = await pool.connect();
  const view = await pool.connect();
  // More readers on the same snapshot (exported by the first): the original and the shadow are
  // hashed at once, on two cores, while the third finds the next chunk's boundary.
  const twin = await pool.connect();
  const scout = await pool.connect();
  try {
    await lock.query('BEGIN');
    await lock.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    await lock.query(`LOCK TABLE ${copier.original} IN SHARE MODE`);
    await expectPartitionTree(lock, copier.d);
    await catchUp(new PgSession(view, false));
    await view.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // The first statement fixes the snapshot, while writers are still held off.
    const { rows } = await view.query('SELECT pg_export_snapshot() AS id');
    for (const reader of [twin, scout]) {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await reader.query(`SET TRANSACTION SNAPSHOT '${rows[0].id}'`);
    }
    // Values hashed as text (float arrays, say) print every digit, whatever the role's settings.
    for (const reader of [view, twin]) await reader.query(EXACT_TEXT);
    await lock.query('COMMIT');
  } catch (error) {
    await lock.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
    lock.release(error as Error); // discarded after a failure, in case its connection broke
    for (const reader of [view, twin, scout]) {
      await reader.query('ROLLBACK').catch(ignoreFailure(ROLLBACK_AFTER_FAILURE));
      reader.release(error as Error);
    }
    throw asLockTimeout(error, 'checksum lock');
  }
  lock.release();
  const sides = planSides(copier);
  return {
    nextBoundary: (after, rows) => copier.nextBoundary(scout, after, rows),
    checksum: (range) => Promise.all([digest(view, sides[0], range), digest(twin, sides[1], range)]),
    compareKeys: (keys) => differingKeys(view, sides, keys),
    async close() {
      for (const reader of [scout, twin, view]) {
        // A reader whose COMMIT fails (its connection broke) is discarded, not returned to the pool.
        const failure = await reader.query('COMMIT').then(
          () => undefined,
          (error: Error) => error,
        );
        reader.release(failure);
      }
    },
  };
}

/**
 * The digests a checksum round computes, read in the copy's own transaction right after it copied
 * the range (see core/migrate/copy-proof.ts): the shadow's as written, the original's as committed now.
 */
export function rangeCheck(copier: Copier): (client: Client, range: KeyRange) => Promise<boolean> {
  const [original, shadow] = planSides(copier);
  return async (client, range) => {
    await client.query(EXACT_TEXT);
    const a = await digest(client, original, range);
    const b = await digest(client, shadow, range);
    return a.rows === b.rows && a.digest === b.digest;
  };
}

/** Float text with every digit (PostgreSQL 12+ prints the shortest exact form from 1 up). */
export const EXACT_TEXT = 'SET LOCAL extra_float_digits = 3';

/**
 * One side of a row-by-row comparison: a table, its keyset, and each compared column's value in
 * its exact form (`exact.ts`) with the type of that form. The migration's sides are the original
 * (converted as the copy converts it) and the shadow; `shadowcut verify --against` compares two
 * tables the same way.
 */
export interface RowSide {
  /** Qualified name. */
  table: string;
  keyColumns: string[];
  keys: KeysetSql;
  columns: { value: string; type: string }[];
  /** An extra condition on the side's rows (`verify --where`), or none. */
  where?: string;
  /**
   * The side carries the user's SQL (a USING expression, `--where`): its statements run under the
   * user's search_path. The digests' own functions (count, sum, hashint8extended,
   * hash_record_extended over an anonymous ROW) are matched exactly by pg_catalog's, so no other
   * schema's function can take their place there.
   */
  userSql?: boolean;
}

export function onSides<T>(client: Client, sides: RowSide[], run: () => Promise<T>): Promise<T> {
  return sides.some((s) => s.userSql) ? asUser(client, run) : run();
}

/** The migration's sides: the original's columns converted as the copy converts them, to the shadow's types; the shadow's. */
export function planSides(copier: Copier): [RowSide, RowSide] {
  const side = (which: 'original' | 'shadow'): RowSide => ({
    table: which === 'original' ? copier.original : copier.shadow,
    keyColumns: which === 'original' ? copier.d.originalKey : copier.d.shadowKey,
    keys: which === 'original' ? copier.originalKeys : copier.shadowKeys,
    // One type on both sides (the original is converted as the copy converts it), in its exact form.
    columns: [
      ...copier.d.columns.map((c) => pgExactValue({ form: 'same' }, columnValue(c, which), pgColumn(c.type))),
      ...copier.d.columns.flatMap((c) => (c.back && c.column ? [roundTrip(c, which, pgColumn(c.back))] : [])),
    ],
    userSql: which === 'original' && copier.usingUserSql,
  });
  return [side('original'), side('shadow')];
}

/**
 * Row count and the sum of a 64-bit hash of each row over the copied columns (summed as numeric,
 * so it never overflows). The original's values go through the same conversion as the copy and are
 * cast to the shadow's types, so a changed type compares equal when the values are. A sum, unlike
 * xor, does not cancel out duplicated rows. `hash_record_extended` hashes the values themselves,
 * about three times faster than hashing each row's text (1M sbtest rows: 0.5-0.8 s against 2.2 s).
 * It combines the columns' hashes linearly, so in a sum two rows that swapped a value would cancel
 * out: each row's hash is hashed again, which mixes it.
 */
export async function digest(client: Client, side: RowSide, range: KeyRange): Promise<RangeDigest> {
  const where = side.keys.range(range);
  const { rows } = await onSides(client, [side], () =>
    client.query(
      `SELECT count(*) AS n, coalesce(sum(hashint8extended(hash_record_extended(${hashedRow(side)}, 0), 0)), 0) AS sum
       FROM ${side.table} WHERE ${filter(side, where.sql)}`,
      where.params,
    ),
  );
  return { rows: Number(rows[0].n), digest: rows[0].sum };
}

const filter = (side: RowSide, sql: string) => (side.where ? `(${sql}) AND (${side.where})` : sql);

/**
 * Types whose equality is identity, so hashing the value can miss no change. Everything else is
 * hashed as its text: numeric (1.0 = 1.00), intervals ('1 day' = '24 hours'), jsonb, arrays,
 * enums, domains and types with no hash function at all (json). Floats arrive as their bytes
 * (`exact.ts`: -0 is not 0, and no digit is lost whatever extra_float_digits says). Strings are
 * compared under "C": a case-insensitive collation would hash 'a' and 'A' alike.
 */
const HASHED_AS_VALUES = /^(smallint|integer|bigint|boolean|date|uuid|bytea|timestamp(\(\d\))? with(out)? time zone|time(\(\d\))? without time zone)$/;
const STRINGS = /^(text|character varying(\(\d+\))?|character(\(\d+\))?)$/;

function hashedRow(side: RowSide): string {
  const columns = side.columns.map(({ value, type }) => {
    if (HASHED_AS_VALUES.test(type)) return value;
    return STRINGS.test(type) ? `${value} COLLATE "C"` : `${quotedText(value)} COLLATE "C"`;
  });
  return `ROW(${columns.join(', ')})`;
}

/** A row's compared columns as text, exactly. */
export function rowText(side: RowSide): string {
  return `ROW(${side.columns.map((c) => c.value).join(', ')})::text`;
}

/** A copied column on either side: the original's converted as the copy converts it, to the shadow's type. */
function columnValue(c: ColumnMap, side: 'original' | 'shadow'): string {
  return side === 'original' ? `CAST((${c.source}) AS ${c.type})` : ident(c.target);
}

/**
 * A way back's column in the new table's type: as it is in the new table, and the old table's
 * converted up again. A number by its value (1.2 written where the old type stores 1.20 is no
 * difference), anything else exactly.
 */
function roundTrip(c: ColumnMap, side: 'original' | 'shadow', type: TypedColumn): { value: string; type: string } {
  const value = side === 'original' ? ident(c.column!) : `CAST(${ident(c.target)} AS ${c.back!})`;
  return pgExactValue({ form: type.family.family === 'decimal' ? 'decimal' : 'same' }, value, type);
}

/** Keys per statement; each appears twice among the parameters. */
const KEYS_PER_COMPARISON = 1000;

/**
 * The keys among `keys` whose rows differ, compared row by row on what the checksum hashes: on a
 * snapshot (a view's reader) or under the cut-over lock (its own transaction sees its own applies).
 */
export async function differingKeys(client: Client, sides: [RowSide, RowSide], keys: Key[]): Promise<Key[]> {
  const found: Key[] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_COMPARISON) {
    const batch = keys.slice(i, i + KEYS_PER_COMPARISON);
    const o = sides[0].keys.keyIn(batch);
    found.push(...(await differingRows(client, sides, [o, sides[1].keys.keyIn(batch, o.params.length)])));
  }
  return found;
}

/**
 * The keys (as text) of the rows that differ between the two sides, among the rows each side's
 * filter selects; the second filter's placeholders continue the first's.
 */
export async function differingRows(client: Client, [a, b]: [RowSide, RowSide], [fa, fb]: [Fragment, Fragment], ordered = false): Promise<Key[]> {
  const width = a.keyColumns.length;
  const alias = (columns: string[]) => columns.map((k, i) => `${ident(k)} AS k${i}`).join(', ');
  // As text on both sides: the ALTER may have changed a key column's type.
  const on = Array.from({ length: width }, (_, i) => `${keyText(`o.k${i}`)} = ${keyText(`s.k${i}`)}`).join(' AND ');
  const pick = Array.from({ length: width }, (_, i) => `CASE WHEN o.k${i} IS NULL THEN ${keyText(`s.k${i}`)} ELSE ${keyText(`o.k${i}`)} END`).join(', ');
  // In key order for a list a person reads (both sides' key columns then have the same types).
  const order = Array.from({ length: width }, (_, i) => `coalesce(o.k${i}, s.k${i})`).join(', ');
  const { rows } = await onSides(client, [a, b], () =>
    client.query({
      text:
        `SELECT ${pick} FROM (SELECT ${alias(a.keyColumns)}, ${rowText(a)} AS r FROM ${a.table} WHERE ${filter(a, fa.sql)}) o ` +
        `FULL JOIN (SELECT ${alias(b.keyColumns)}, ${rowText(b)} AS r FROM ${b.table} WHERE ${filter(b, fb.sql)}) s ON ${on} ` +
        `WHERE o.r IS DISTINCT FROM s.r${ordered ? ` ORDER BY ${order}` : ''}`,
      values: [...fa.params, ...fb.params],
      rowMode: 'array',
    }),
  );
  return rows as Key[];
}
