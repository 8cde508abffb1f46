import { isTransientMysqlError } from '../server/errors.js';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { UserError, SESSION_RESET, ignoreFailure } from '../../../core/engine/errors.js';
import { KeysetSql } from '../../../core/engine/keyset.js';
import type { Key, ProbeComparison } from '../../../core/engine/types.js';
import { columnLists } from './copy.js';
import { helperNames, type MysqlPlan } from '../schema/plan.js';
import { clearProbeName, createProbe, dropProbe, type ProbeKind, PROBE_LEFT_IS_FOUND } from '../schema/probe.js';
import { ident, mysqlDialect, qualified, rowValues } from '../server/sql.js';

const NUMERIC_KEY = /^(tinyint|smallint|mediumint|int|integer|bigint|decimal|numeric)\b/i;
/** Places spread over a numeric key's range when no anchors are given. */
const SPREAD = 8;

/**
 * The sample goes into probe `a` with the original's definition, is copied into probe `b` (the new
 * definition) through the copy's column mapping, and only then does the server apply the user's
 * ALTER to `a`. Both sessions' clocks are pinned, so CURRENT_TIMESTAMP defaults agree.
 */
export function compareWithAlter(pool: Pool, plan: MysqlPlan, alter: string, anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison> {
  const [a, b] = helperNames(plan.table).probes;
  return withProbes(pool, plan, [a, b], async (conn) => {
    await conn.query(`ALTER TABLE ${qualified(plan.database, b)} ${alter}`);
    await fillSample(conn, plan, a, anchors ?? (await spreadAnchors(conn, plan)), rows);
    const copied = await copyThrough(conn, plan, a, b);
    try {
      await conn.query(`ALTER TABLE ${qualified(plan.database, a)} ${alter}`);
    } catch (error) {
      if (isTransientMysqlError(error)) throw error;
      throw new UserError(
        `the ALTER fails on the table's rows (a native ALTER would stop the same way): ${(error as Error).message.replaceAll(a, plan.table)}`,
      );
    }
    if (copied) throw new UserError(`the copy fails on rows the ALTER converts: ${copied.message.replaceAll(b, plan.shadow).replaceAll(a, plan.table)}`);
    return compare(conn, plan, [a, b], plan.shadowKeyColumns, new Set(plan.columns.map((c) => c.target.toLowerCase())));
  });
}

/**
 * The way back proven as the way there is: the sample in `a` (the original's definition) is copied
 * into `b` (the new one) through the copy's mapping, then back into `c` (the original's again)
 * through the reverse mapping, and `c` is compared with `a`. A column the ALTER drops comes back as
 * its default, and shows as differing.
 */
export function proveReverse(pool: Pool, plan: MysqlPlan, anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison> {
  const [a, b, c] = helperNames(plan.table).probes;
  return withProbes(pool, plan, [a, b, c], async (conn) => {
    await requireStrictMode(conn);
    await conn.query(`ALTER TABLE ${qualified(plan.database, b)} ${plan.shadowAlter}`);
    await fillSample(conn, plan, a, anchors ?? (await spreadAnchors(conn, plan)), rows);
    const there = await copyThrough(conn, plan, a, b);
    if (there) throw new UserError(`the copy fails on the table's rows: ${there.message.replaceAll(b, plan.shadow).replaceAll(a, plan.table)}`);
    // A generated column of the original is computed again from what comes back, as in the old table.
    const generated = new Set(plan.original.columns.filter((x) => x.generated).map((x) => x.name));
    // Only copied columns come back: what the ALTER added (fills included) stays behind.
    const { targets, sources } = columnLists({ columns: plan.columns.filter((x) => !generated.has(x.source)) });
    await conn.query(`INSERT INTO ${qualified(plan.database, c)} (${sources}) SELECT ${targets} FROM ${qualified(plan.database, b)}`).catch((error: Error) => {
      if (isTransientMysqlError(error)) throw error;
      throw new UserError(`the way back fails on the table's rows: ${error.message.replaceAll(c, plan.old).replaceAll(b, plan.table)}`);
    });
    return compare(conn, plan, [a, c], plan.keyColumns, new Set(plan.columns.map((x) => x.source.toLowerCase())));
  });
}

/**
 * The way back converts as the server's sql_mode says: only a strict one makes a value the old type
 * cannot hold an error (which stops the window) rather than a warning (and the value cut short).
 */
async function requireStrictMode(conn: PoolConnection): Promise<void> {
  const [[row]] = await conn.query<RowDataPacket[]>('SELECT @@SESSION.sql_mode AS m');
  if (/\bSTRICT_(TRANS|ALL)_TABLES\b/.test(String(row.m))) return;
  throw new UserError(
    `the server's sql_mode (${String(row.m) || 'empty'}) is not strict: on the way back a value the old table cannot hold would be cut short instead of stopping the revert; add STRICT_TRANS_TABLES to the global sql_mode, or run without --revert-window`,
  );
}

/**
 * Runs `proof` with empty probes of the original's definition under these names, on one session
 * whose clock is pinned, and drops them whatever happens. A real probe (partitioned, FULLTEXT)
 * outlives a run killed mid-proof: it carries the mark and is dropped; a table of that name without
 * it is the user's, and stops the run.
 */
async function withProbes<T>(pool: Pool, plan: MysqlPlan, names: string[], proof: (conn: PoolConnection) => Promise<T>): Promise<T> {
  const conn = await pool.getConnection();
  const made: [string, ProbeKind][] = [];
  try {
    await conn.query('SET SESSION timestamp = UNIX_TIMESTAMP(NOW(6))');
    for (const name of names) await clearProbeName(conn, plan.database, name);
    for (const name of names) made.push([name, await createProbe(conn, plan.database, plan.table, name, plan.realProbes === true)]);
    return await proof(conn);
  } finally {
    for (const [name, kind] of made) await dropProbe(conn, plan.database, name, kind).catch(ignoreFailure(PROBE_LEFT_IS_FOUND));
    await conn.query('SET SESSION timestamp = DEFAULT').catch(ignoreFailure(SESSION_RESET));
    conn.release();
  }
}

/** The copy's INSERT from probe `from` into probe `into`; its error is returned, as the caller judges it (a lost session is thrown). */
async function copyThrough(conn: PoolConnection, plan: MysqlPlan, from: string, into: string): Promise<Error | null> {
  const { targets, sources } = columnLists(plan);
  const failed = await conn.query(`INSERT INTO ${qualified(plan.database, into)} (${targets}) SELECT ${sources} FROM ${qualified(plan.database, from)}`).then(
    () => null,
    (error: Error) => error,
  );
  // A lost session is not the data's fault: the proof is tried again, not reported as the ALTER failing.
  if (failed && isTransientMysqlError(failed)) throw failed;
  return failed;
}

/** Up to `rows` rows in all, taken in key order after each anchor (null: from the start). */
async function fillSample(conn: PoolConnection, plan: MysqlPlan, probe: string, anchors: (Key | null)[], rows: number): Promise<void> {
  const keys = new KeysetSql(mysqlDialect, plan.keyColumns);
  const columns = plan.original.columns
    .filter((c) => !c.generated)
    .map((c) => ident(c.name))
    .join(', ');
  const each = Math.max(1, Math.ceil(rows / anchors.length));
  for (const anchor of anchors) {
    const where = keys.range({ after: anchor, upTo: null });
    // IGNORE only skips rows already taken after an earlier anchor: `a` has the original's definition.
    await conn.query(
      `INSERT IGNORE INTO ${qualified(plan.database, probe)} (${columns}) SELECT ${columns} FROM ${qualified(plan.database, plan.table)} ` +
        `FORCE INDEX (${ident(plan.keyIndex)}) WHERE ${where.sql} ORDER BY ${keys.orderBy()} LIMIT ${each}`,
      where.params,
    );
  }
}

/**
 * Anchors spread over the table without scanning it: places evenly between the smallest and the
 * largest value of a numeric first key column (one index dive each); otherwise the start and a
 * point just before the end.
 */
async function spreadAnchors(conn: PoolConnection, plan: MysqlPlan): Promise<(Key | null)[]> {
  const table = qualified(plan.database, plan.table);
  const first = ident(plan.keyColumns[0]);
  const keyColumns = plan.keyColumns.map(ident).join(', ');
  const order = plan.keyColumns.map((c) => `${ident(c)} DESC`).join(', ');
  const type = plan.original.columns.find((c) => c.name === plan.keyColumns[0])?.type ?? '';
  const anchors: (Key | null)[] = [null];
  if (NUMERIC_KEY.test(type)) {
    const places = Array.from({ length: SPREAD - 1 }, (_, i) => `MIN(${first}) + (MAX(${first}) - MIN(${first})) * ${i + 1} / ${SPREAD} AS p${i}`);
    const [[bounds]] = await conn.query<RowDataPacket[]>({ sql: `SELECT ${places.join(', ')} FROM ${table}`, rowsAsArray: true });
    for (const place of rowValues(bounds)) {
      if (place === null) continue;
      const [found] = await conn.query<RowDataPacket[]>({
        sql: `SELECT ${keyColumns} FROM ${table} WHERE ${first} < ? ORDER BY ${order} LIMIT 1`,
        values: [place],
        rowsAsArray: true,
      });
      if (found.length) anchors.push(rowValues(found[0]));
    }
  } else {
    const [found] = await conn.query<RowDataPacket[]>({ sql: `SELECT ${keyColumns} FROM ${table} ORDER BY ${order} LIMIT 1 OFFSET 100`, rowsAsArray: true });
    if (found.length) anchors.push(rowValues(found[0]));
  }
  return anchors;
}

/**
 * Column by column over the rows matched on `key`: equal as values (`<=>`) and as bytes (so 'a'
 * never passes for 'A' under a case-insensitive collation, nor 'a ' for 'a'). `copied`: the columns
 * of `y` filled from a value (the others may be filled per row by the server).
 */
async function compare(conn: PoolConnection, plan: MysqlPlan, [a, b]: [string, string], key: string[], copied: Set<string>): Promise<ProbeComparison> {
  const [columns] = await conn.query<RowDataPacket[]>(`SHOW FULL COLUMNS FROM ${qualified(plan.database, a)}`);
  const on = key.map((k) => `x.${ident(k)} <=> y.${ident(k)}`).join(' AND ');
  const differs = (c: string) => `NOT (x.${ident(c)} <=> y.${ident(c)} AND CAST(x.${ident(c)} AS BINARY) <=> CAST(y.${ident(c)} AS BINARY))`;
  const names = columns.map((c) => String(c.Field));
  const [[counts]] = await conn.query<RowDataPacket[]>({
    sql:
      `SELECT COUNT(*), SUM(y.${ident(key[0])} IS NULL)${names.map((c) => `, SUM(${differs(c)})`).join('')} ` +
      `FROM ${qualified(plan.database, a)} x LEFT JOIN ${qualified(plan.database, b)} y ON ${on}`,
    rowsAsArray: true,
  });
  const [[inB]] = await conn.query<RowDataPacket[]>({ sql: `SELECT COUNT(*) FROM ${qualified(plan.database, b)}`, rowsAsArray: true });
  const [total, missing, ...differing] = rowValues(counts).map((v) => Number(v ?? 0));
  const result: ProbeComparison = {
    rows: total,
    unmatched: missing + (Number(inB[0]) - (total - missing)),
    columns: columns.map((c, i) => ({
      name: names[i],
      differing: differing[i],
      // An AUTO_INCREMENT or a default that is a function call (UUID(), a sequence) gives each row its own value.
      generatedByServer: !copied.has(names[i].toLowerCase()) && (/auto_increment/i.test(String(c.Extra)) || /\w\s*\(/.test(String(c.Default ?? ''))),
    })),
  };
  const wrong = result.columns.find((c) => c.differing > 0 && !c.generatedByServer);
  if (wrong) {
    const keyText = key.map((k) => `x.${ident(k)}`).join(', ');
    const [[row]] = await conn.query<RowDataPacket[]>({
      sql:
        `SELECT CONCAT_WS(',', ${keyText}), CAST(x.${ident(wrong.name)} AS CHAR), CAST(y.${ident(wrong.name)} AS CHAR) ` +
        `FROM ${qualified(plan.database, a)} x JOIN ${qualified(plan.database, b)} y ON ${on} WHERE ${differs(wrong.name)} LIMIT 1`,
      rowsAsArray: true,
    });
    if (row) {
      const [k, alter, copy] = rowValues(row) as (string | null)[];
      wrong.example = { key: String(k), alter, copy };
    }
  }
  return result;
}
