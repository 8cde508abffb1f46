import type pg from 'pg';
import { describeForm, exactFormOrRefuse, howCompared } from '../../../core/engine/compare/exact.js';
import { expectationView } from '../../../core/engine/compare/expectation.js';
import type { ComparisonRequest, ComparisonView, RowComparison } from '../../../core/engine/ports/comparison.js';
import { UserError, READ_ONLY_END, ignoreFailure } from '../../../core/engine/errors.js';
import { KeysetSql } from '../../../core/engine/keyset.js';
import type { Key, KeyRange } from '../../../core/engine/types.js';
import { differingRows, digest, EXACT_TEXT, type RowSide } from '../copy/checksum.js';
import { asUser, asUserOn, type Client } from '../server/connect.js';
import { dialect, ident, parseTableName, qualified } from '../server/sql.js';
import { errorCode } from '../server/errors.js';
import { refuseOwnerCode } from '../server/owner-code.js';
import { nextKey } from '../copy/copy.js';
import { pgColumn, pgExactValue } from '../schema/exact.js';
import { inspectTable, type TableInfo } from '../schema/inspect.js';
import { keyTypes } from '../server/key-types.js';
import { rowsWhereTheyAre } from '../schema/citus.js';

/**
 * `shadowcut verify` on PostgreSQL. Each chunk is read in a REPEATABLE READ READ ONLY transaction
 * of its own: both tables as of one snapshot, no lock beyond ACCESS SHARE, and the snapshot (which
 * holds back vacuum) lasts one chunk.
 */
export async function openPgComparison(pool: pg.Pool, request: ComparisonRequest): Promise<RowComparison> {
  const { schema, name } = parseTableName(request.table);
  const t = await inspectTable(pool, schema, name);
  if (!t.key) throw new UserError(t.noKeyReason);
  // Typed parameters (server/key-types.ts); the --against table's key has the same types, or is refused.
  const types = await keyTypes(pool, t.oid, t.key.columns);
  const keys = new KeysetSql(dialect, t.key.columns, false, types);
  const table = qualified(schema, name);
  const where = request.where?.trim() || undefined;
  const make = request.against ? await againstTable(pool, t, request, where, types) : await expectation(pool, table, keys, request, where);
  const reader = await pool.connect();
  const view = make(reader);
  return {
    table: `${schema}.${name}`,
    keyColumns: t.key.columns,
    estimatedRows: await rowsWhereTheyAre(pool, schema, name, t.estimatedRows),
    summary: [`verify ${schema}.${name} by ${t.key.index} (${t.key.columns.join(', ')}): ${view.what}${where ? ` where ${where}` : ''}`],
    nextBoundary: (after, rows) => nextKey(pool, table, keys, after, rows),
    async inSnapshot(look) {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        await reader.query(EXACT_TEXT);
        // --expect (and its --where) is the user's SQL; --against's sides say so themselves (RowSide.userSql).
        return await (request.expect ? asUser(reader, () => look(view)) : look(view));
      } finally {
        await reader.query('COMMIT').catch(ignoreFailure(READ_ONLY_END));
      }
    },
    async close() {
      reader.release();
    },
  };
}

type MakeView = (reader: Client) => ComparisonView & { what: string };

/** Every row against `lhs IS NOT DISTINCT FROM rhs` (NULL equals NULL, and differs from anything else). */
async function expectation(pool: pg.Pool, table: string, keys: KeysetSql, request: ComparisonRequest, where: string | undefined): Promise<MakeView> {
  const holds = request.expect!.map((e) => `(${e.lhs}) IS NOT DISTINCT FROM (${e.rhs})`).join(' AND ');
  const filter = where ? ` AND (${where})` : '';
  const judged = `SELECT ${holds} FROM ${table} WHERE false${filter}`;
  const fails = (error: Error): never => {
    throw new UserError(`--expect ${where ? 'or --where ' : ''}fails on ${table}: ${error.message}`);
  };
  // Parsed first without planning: planning folds an immutable function, an owner's too, with our rights.
  await refuseOwnerCode(pool, table, [{ sql: judged, what: `--expect${where ? ' and --where' : ''}` }], { keyColumns: keys.columns }).catch((error: Error) =>
    error instanceof UserError || errorCode(error) === undefined ? Promise.reject(error) : fails(error),
  );
  // The server judges the expressions (and --where) before anything is read.
  await asUserOn(pool, (c) => c.query(judged)).catch(fails);
  const cols = keys.columns.map(ident).join(', ');
  return (reader) =>
    expectationView(keys, request.expect!, {
      async count(w) {
        const { rows } = await reader.query(
          `SELECT count(*) AS n, count(*) FILTER (WHERE NOT (${holds})) AS d FROM ${table} WHERE (${w.sql})${filter}`,
          w.params,
        );
        return { rows: Number(rows[0].n), failing: Number(rows[0].d) };
      },
      async failing(w) {
        const text = `SELECT ${cols} FROM ${table} WHERE (${w.sql})${filter} AND NOT (${holds}) ORDER BY ${keys.orderBy()}`;
        const { rows } = await reader.query({ text, values: w.params, rowMode: 'array' });
        return rows as Key[];
      },
    });
}

/** The table against another over the same key: migrate's digests per chunk, then row by row where they differ. */
async function againstTable(pool: pg.Pool, t: TableInfo, request: ComparisonRequest, where: string | undefined, types: string[]): Promise<MakeView> {
  const o = parseTableName(request.against!);
  const other = await inspectTable(pool, o.schema, o.name).catch((error: Error) => {
    throw new UserError(`--against: ${error.message}`);
  });
  if (other.oid === t.oid) throw new UserError('--against names the table itself');
  const keyColumns = t.key!.columns;
  const names = request.columns ?? t.columns.filter((c) => other.columns.some((x) => x.name === c.name)).map((c) => c.name);
  const compared = [...keyColumns, ...names.filter((n) => !keyColumns.includes(n))];
  const columns = compared.map((n) => {
    const a = t.columns.find((c) => c.name === n);
    const b = other.columns.find((c) => c.name === n);
    if (!a || !b)
      throw new UserError(
        `column ${n} is not in ${a ? `${other.schema}.${other.name}` : `${t.schema}.${t.name}`}${keyColumns.includes(n) ? ' (a key column: both tables need the key)' : ''}`,
      );
    if (keyColumns.includes(n) && a.type !== b.type)
      throw new UserError(`key column ${n} is ${a.type} in ${t.name} but ${b.type} in ${other.name}; the keys must have one type`);
    // Neither side is cast down to the other's type: both go to a form that loses nothing for the pair.
    const [ta, tb] = [pgColumn(a.type), pgColumn(b.type)];
    const form = exactFormOrRefuse(n, ta, tb, [`${t.schema}.${t.name}`, `${other.schema}.${other.name}`]);
    return { a: pgExactValue(form, ident(n), ta), b: pgExactValue(form, ident(n), tb), how: form.form === 'same' ? null : describeForm(n, form) };
  });
  const { rows: indexed } = await pool.query(
    `SELECT 1 FROM pg_index i WHERE i.indrelid = $1 AND (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum WHERE k.ord <= $3) = $2::text[]`,
    [other.oid, keyColumns, keyColumns.length],
  );
  // Each chunk reads the other table by the same key range: without an index there, every chunk would scan it.
  if (!indexed.length)
    throw new UserError(`${other.schema}.${other.name} has no index on (${keyColumns.join(', ')}), the key verify walks ${t.name} by; add one first`);
  const side = (info: TableInfo, value: 'a' | 'b'): RowSide => ({
    table: qualified(info.schema, info.name),
    keyColumns,
    keys: new KeysetSql(dialect, keyColumns, false, types),
    columns: columns.map((c) => c[value]),
    where,
    userSql: where !== undefined,
  });
  const sides: [RowSide, RowSide] = [side(t, 'a'), side(other, 'b')];
  // Both tables' keys are walked, their compared columns read and --where filters both: another role's code there is refused first.
  for (const s of sides) {
    const statements = where ? [{ sql: `SELECT 1 FROM ${s.table} WHERE ${where}`, what: '--where' }] : [];
    await refuseOwnerCode(pool, s.table, statements, { keyColumns, columns: names });
  }
  if (where) {
    for (const s of sides) {
      await asUserOn(pool, (c) => c.query(`SELECT 1 FROM ${s.table} WHERE ${where} LIMIT 0`)).catch((error: Error) => {
        throw new UserError(`--where fails on ${s.table}: ${error.message}`);
      });
    }
  }
  const rangePair = (range: KeyRange) => {
    const a = sides[0].keys.range(range);
    return [a, sides[1].keys.range(range, a.params.length)] as [typeof a, typeof a];
  };
  return (reader) => ({
    what: `rows of ${other.schema}.${other.name} over ${compared.join(', ')}${howCompared(columns)}`,
    async survey(range: KeyRange) {
      const a = await digest(reader, sides[0], range);
      const b = await digest(reader, sides[1], range);
      return { rows: a.rows, clean: a.rows === b.rows && a.digest === b.digest };
    },
    differingKeys: (range: KeyRange) => differingRows(reader, sides, rangePair(range), true),
    compareKeys(list: Key[]) {
      const a = sides[0].keys.keyIn(list);
      return differingRows(reader, sides, [a, sides[1].keys.keyIn(list, a.params.length)], true);
    },
  });
}
