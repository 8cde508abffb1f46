import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { describeForm, exactFormOrRefuse, howCompared } from '../../../core/engine/compare/exact.js';
import { expectationView } from '../../../core/engine/compare/expectation.js';
import type { ComparisonRequest, ComparisonView, RowComparison } from '../../../core/engine/ports/comparison.js';
import { UserError, READ_ONLY_END, ignoreFailure } from '../../../core/engine/errors.js';
import { KeysetSql } from '../../../core/engine/keyset.js';
import type { Key, KeyRange } from '../../../core/engine/types.js';
import { digestQuery, differingRows, hasCrc32c, rangeDigest, rowText, type RowSide } from '../copy/checksum.js';
import { connectOne } from '../server/connect.js';
import type { MysqlTarget } from '../server/target.js';
import { nextKey } from '../copy/copy.js';
import { describeExisting, uniqueKey, type MysqlColumn, type TableShape } from '../schema/inspect.js';
import { mysqlColumn, mysqlExactValue } from '../schema/exact.js';
import { parseTableName } from '../schema/plan.js';
import { ident, mysqlDialect, qualified, rowValues } from '../server/sql.js';

/**
 * `shadowcut verify` on MySQL/MariaDB. Each chunk is read in a transaction of its own on one
 * REPEATABLE READ reader (`START TRANSACTION WITH CONSISTENT SNAPSHOT`): both tables as of one
 * instant, plain non-locking reads, and the snapshot is released after the chunk.
 */
export async function openMysqlComparison(target: MysqlTarget, pool: Pool, fold: (name: string) => string, request: ComparisonRequest): Promise<RowComparison> {
  const database = target.database;
  const table = parseTableName(fold(request.table), database);
  const shape = await describeExisting(pool, database, table);
  const key = uniqueKey(shape);
  if (!key) throw new UserError(`${database}.${table} has no PRIMARY KEY or NOT NULL UNIQUE key to walk it by; add one first`);
  const keys = new KeysetSql(mysqlDialect, key.columns);
  const name = qualified(database, table);
  const where = request.where?.trim() || undefined;
  const survey = request.against
    ? await againstTable(pool, database, fold(request.against), table, shape, key.columns, request.columns, where)
    : await expectation(pool, name, keys, request, where);
  const reader = await connectOne(target);
  await reader.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  const view = await survey(reader, await hasCrc32c(reader));
  const [[estimate]] = await pool.query<RowDataPacket[]>('SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
    database,
    table,
  ]);
  return {
    table: `${database}.${table}`,
    keyColumns: key.columns,
    estimatedRows: Number(estimate.n ?? 0),
    summary: [`verify ${database}.${table} by ${key.name} (${key.columns.join(', ')}): ${view.what}${where ? ` where ${where}` : ''}`],
    nextBoundary: (after, rows) => nextKey(pool, name, key.name, keys, after, rows),
    async inSnapshot(look) {
      await reader.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      try {
        return await look(view);
      } finally {
        await reader.query('COMMIT').catch(ignoreFailure(READ_ONLY_END));
      }
    },
    close: () => reader.end().catch(() => reader.destroy()),
  };
}

type MakeView = (reader: Connection, crc32c: boolean) => Promise<ComparisonView & { what: string }>;

/** Every row against `lhs <=> rhs` (NULL-safe: NULL equals NULL, and differs from anything else). */
async function expectation(pool: Pool, table: string, keys: KeysetSql, request: ComparisonRequest, where: string | undefined): Promise<MakeView> {
  const holds = request.expect!.map((e) => `(${e.lhs}) <=> (${e.rhs})`).join(' AND ');
  const filter = where ? ` AND (${where})` : '';
  // The server judges the expressions (and --where) before anything is read.
  await pool.query(`SELECT ${holds} FROM ${table} WHERE 1=0${filter}`).catch((error: Error) => {
    throw new UserError(`--expect ${where ? 'or --where ' : ''}fails on ${table}: ${error.message}`);
  });
  const cols = keys.columns.map(ident).join(', ');
  return async (reader) =>
    expectationView(keys, request.expect!, {
      async count(w) {
        const [[r]] = await reader.query<RowDataPacket[]>(
          `SELECT COUNT(*) AS n, COALESCE(SUM(NOT (${holds})), 0) AS d FROM ${table} WHERE ${w.sql}${filter}`,
          w.params,
        );
        return { rows: Number(r.n), failing: Number(r.d) };
      },
      async failing(w) {
        const sql = `SELECT ${cols} FROM ${table} WHERE ${w.sql}${filter} AND NOT (${holds}) ORDER BY ${keys.orderBy()}`;
        const [rows] = await reader.query<RowDataPacket[]>({ sql, values: w.params, rowsAsArray: true });
        return rows.map(rowValues);
      },
    });
}

/** The table against another over the same key: migrate's digests per chunk, then row by row where they differ. */
async function againstTable(
  pool: Pool,
  database: string,
  againstName: string,
  table: string,
  shape: TableShape,
  keyColumns: string[],
  only: string[] | undefined,
  where: string | undefined,
): Promise<MakeView> {
  const other = parseTableName(againstName, database);
  if (other === table) throw new UserError('--against names the table itself');
  const otherShape = await describeExisting(pool, database, other, '--against table');
  // Each chunk reads the other table by the same key range: without an index there, every chunk would scan it.
  if (!otherShape.indexes.some((i) => keyColumns.every((k, n) => i.columns[n]?.toLowerCase() === k.toLowerCase()))) {
    throw new UserError(`${database}.${other} has no index on (${keyColumns.join(', ')}), the key verify walks ${table} by; add one first`);
  }
  const find = (s: TableShape, name: string) => s.columns.find((c) => c.name.toLowerCase() === name.toLowerCase());
  const names = only ?? shape.columns.filter((c) => find(otherShape, c.name)).map((c) => c.name);
  const compared = [...keyColumns, ...names.filter((n) => !keyColumns.some((k) => k.toLowerCase() === n.toLowerCase()))];
  const pairs: [MysqlColumn, MysqlColumn][] = compared.map((n) => {
    const a = find(shape, n);
    const b = find(otherShape, n);
    if (!a || !b) throw new UserError(`column ${n} is not in ${a ? other : table}${keyColumns.includes(n) ? ' (a key column: both tables need the key)' : ''}`);
    return [a, b];
  });
  // Neither side is cast down to the other's type: both go to a form that loses nothing for the pair.
  const exprs = pairs.map(([a, b]) => {
    const [ta, tb] = [mysqlColumn(a), mysqlColumn(b)];
    const form = exactFormOrRefuse(a.name, ta, tb, [`${database}.${table}`, `${database}.${other}`]);
    const sides = [mysqlExactValue(form, ident(a.name), ta), mysqlExactValue(form, ident(b.name), tb)];
    const timestamp = ta.family.family === 'instant' || tb.family.family === 'instant';
    return { sides, timestamp, how: form.form === 'same' ? null : describeForm(a.name, form) };
  });
  const side = (t: string, i: 0 | 1, columns: MysqlColumn[]): RowSide => ({
    table: qualified(database, t),
    keyColumns: keyColumns.map((k) => find(i === 0 ? shape : otherShape, k)!.name),
    text: rowText(
      exprs.map((e) => e.sides[i]),
      columns.map((c) => c.name),
    ),
    where,
  });
  const sides: [RowSide, RowSide] = [
    side(
      table,
      0,
      pairs.map((p) => p[0]),
    ),
    side(
      other,
      1,
      pairs.map((p) => p[1]),
    ),
  ];
  if (where) {
    await pool
      .query(`SELECT 1 FROM ${sides[0].table} WHERE ${where} LIMIT 0`)
      .then(() => pool.query(`SELECT 1 FROM ${sides[1].table} WHERE ${where} LIMIT 0`))
      .catch((error: Error) => {
        throw new UserError(`--where fails: ${error.message}`);
      });
  }
  const keysets = sides.map((s) => new KeysetSql(mysqlDialect, s.keyColumns));
  const timestamps = exprs.some((e) => e.timestamp);
  return async (reader, crc32c) => {
    // A TIMESTAMP is compared as its date and time in UTC: in a zone with summer time, two instants
    // of the repeated hour print alike. (--where is then read in UTC too.)
    if (timestamps) await reader.query("SET SESSION time_zone = '+00:00'");
    const digests = sides.map((s) => digestQuery(crc32c, s));
    return {
      what: `rows of ${database}.${other} over ${compared.join(', ')}${howCompared(exprs)}`,
      async survey(range: KeyRange) {
        const a = await rangeDigest(reader, digests[0], range);
        const b = await rangeDigest(reader, digests[1], range);
        return { rows: a.rows, clean: a.rows === b.rows && a.digest === b.digest };
      },
      differingKeys: (range: KeyRange) => differingRows(reader, sides, [keysets[0].range(range), keysets[1].range(range)], true),
      compareKeys: (list: Key[]) => differingRows(reader, sides, [keysets[0].keyIn(list), keysets[1].keyIn(list)], true),
    };
  };
}
