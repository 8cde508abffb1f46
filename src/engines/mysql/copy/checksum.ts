import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { KeysetSql, type Fragment } from '../../../core/engine/keyset.js';
import type { CatchUp, ConsistentView, Key, KeyRange, RangeDigest } from '../../../core/engine/types.js';
import { connectOne } from '../server/connect.js';
import type { MysqlTarget } from '../server/target.js';
import type { Copier } from './copy.js';
import { LockedSession, lockTables } from '../server/lock.js';
import type { MysqlPlan } from '../schema/plan.js';
import { parentTables } from '../cutover/parent-keys.js';
import type { GaleraGate } from '../galera/gate.js';
import { ident, mysqlDialect, qualified, rowValues } from '../server/sql.js';
import { READ_ONLY_END, ignoreFailure } from '../../../core/engine/errors.js';

type Queryable = Connection | PoolConnection;

/**
 * Opens one read view of both tables in which the shadow has caught up with the original:
 * writers are held off by LOCK TABLES ... READ (on Galera, by the gate: `galera/gate.ts`)
 * just long enough to apply the last changes and start a consistent snapshot; the checksums then
 * read that snapshot while writes go on.
 */
export async function openConsistentView(
  target: MysqlTarget,
  pool: Pool,
  plan: MysqlPlan,
  mover: Copier,
  catchUp: CatchUp,
  lockTimeoutMs: number,
  gate: GaleraGate | null,
): Promise<ConsistentView> {
  // Readers with snapshots started while writers are held see the same instant, so the original and the
  // shadow are checksummed at once, on two cores, while a third finds the next chunk's boundary.
  const readers = [await connectOne(target), await connectOne(target), await connectOne(target)] as const;
  const snapshots = async () => {
    for (const reader of readers) await reader.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
  };
  try {
    for (const reader of readers) await reader.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    if (gate) await underGate(gate, catchUp, snapshots, lockTimeoutMs);
    else await underReadLock(target, pool, plan, catchUp, snapshots, lockTimeoutMs);
  } catch (error) {
    for (const reader of readers) reader.destroy();
    throw error;
  }
  return new MysqlView(readers, plan, mover, await hasCrc32c(readers[0]));
}

async function underReadLock(target: MysqlTarget, pool: Pool, plan: MysqlPlan, catchUp: CatchUp, then: () => Promise<void>, lockTimeoutMs: number) {
  const locker = await connectOne(target);
  try {
    const log = plan.log === undefined ? '' : `, ${qualified(plan.database, plan.log)} READ`;
    // The parents that cascade into the table, as at the cut-over: a cascade still committing when the
    // view opens would change the original after its catch-up with nothing left to say so.
    const parents = [
      ...new Set(parentTables({ database: plan.database, table: plan.table, cascades: plan.cascades }).map((p) => qualified(p.database, p.table))),
    ]
      .map((p) => `, ${p} READ`)
      .join('');
    await lockTables(
      locker,
      pool,
      `LOCK TABLES ${qualified(plan.database, plan.table)} READ, ${qualified(plan.database, plan.shadow)} WRITE${log}${parents}`,
      lockTimeoutMs,
    );
    try {
      await catchUp(new LockedSession(locker));
      await then();
    } finally {
      await locker.query('UNLOCK TABLES');
    }
  } finally {
    await locker.end().catch(() => locker.destroy());
  }
}

async function underGate(gate: GaleraGate, catchUp: CatchUp, then: () => Promise<void>, lockTimeoutMs: number) {
  const closed = await gate.close(lockTimeoutMs);
  try {
    await catchUp(closed.session);
    await then();
  } finally {
    await closed.release();
  }
}

/** Both tables read by three readers; the view with no lock (snapshot-view.ts) reads them the same way. */
export class MysqlView implements ConsistentView {
  protected readonly sides: [RowSide, RowSide];
  private readonly digests: [DigestSql, DigestSql];

  constructor(
    protected readonly readers: readonly [Connection, Connection, Connection],
    plan: MysqlPlan,
    private readonly mover: Copier,
    crc32c: boolean,
  ) {
    this.sides = planSides(plan);
    this.digests = [digestQuery(crc32c, this.sides[0]), digestQuery(crc32c, this.sides[1])];
  }

  compareKeys(keys: Key[]): Promise<Key[]> {
    return differingKeys(this.readers[0], this.sides, keys);
  }

  nextBoundary(after: KeyRange['after'], rows: number) {
    return this.mover.nextBoundary(this.readers[2], after, rows);
  }

  checksum(range: KeyRange): Promise<[RangeDigest, RangeDigest]> {
    return Promise.all([rangeDigest(this.readers[0], this.digests[0], range), rangeDigest(this.readers[1], this.digests[1], range)]);
  }

  async close(): Promise<void> {
    for (const reader of this.readers) {
      await reader.query('COMMIT').catch(ignoreFailure(READ_ONLY_END));
      await reader.end().catch(() => reader.destroy());
    }
  }
}

/**
 * One side of a row-by-row comparison: a table, its key's columns, and each row as one text over the
 * compared columns. The migration's two sides are the original and the shadow; `shadowcut verify
 * --against` compares a table with another one the same way.
 */
export interface RowSide {
  /** Qualified name. */
  table: string;
  keyColumns: string[];
  text: string;
  /** An extra condition on the side's rows (`verify --where`), or none. */
  where?: string;
}

/** The migration's sides: the original's columns as the copy converts them, and the shadow's. */
export function planSides(plan: MysqlPlan): [RowSide, RowSide] {
  const pairs = plan.columns.filter((c) => c.checksum !== null);
  return [
    {
      table: qualified(plan.database, plan.table),
      keyColumns: plan.keyColumns,
      text: rowText(
        pairs.map((p) => p.checksum![0]),
        pairs.map((p) => p.source),
      ),
    },
    {
      table: qualified(plan.database, plan.shadow),
      keyColumns: plan.shadowKeyColumns,
      text: rowText(
        pairs.map((p) => p.checksum![1]),
        pairs.map((p) => p.target),
      ),
    },
  ];
}

/** CRC32C exists on MariaDB 10.8 and later only. */
export function hasCrc32c(db: Queryable | Pool): Promise<boolean> {
  return db.query("SELECT CRC32C('')").then(
    () => true,
    () => false,
  );
}

/** A side's digest query, and its keyset. */
export interface DigestSql {
  side: RowSide;
  keys: KeysetSql;
  sql(where: string): string;
}

/**
 * An order-independent digest: the exact (DECIMAL) sum of a 64-bit hash of each row. The hash is
 * two CRC32s of the row's text, which cost half of one MD5 here. CRC is linear, so the rows' hashes
 * are summed rather than XORed: under XOR, two rows that swapped a value would cancel out. The
 * second CRC is CRC32C where the server has it (MariaDB 10.8+) and the CRC32 of the reversed
 * text otherwise (MySQL), so the pair is not a function of the first. Rows are unique by key and the key
 * is in the hashed text.
 */
export function digestQuery(crc32c: boolean, side: RowSide): DigestSql {
  const row = side.text;
  const second = crc32c ? `CRC32C(${row})` : `CRC32(REVERSE(${row}))`;
  const head = `SELECT COUNT(*) AS n, COALESCE(SUM((CRC32(${row}) << 32) | ${second}), 0) AS a FROM ${side.table} WHERE `;
  return { side, keys: new KeysetSql(mysqlDialect, side.keyColumns), sql: (where) => head + where + (side.where ? ` AND (${side.where})` : '') };
}

/**
 * The digests a checksum round computes, read on the copy's own session right after it copied the
 * range (see core/migrate/copy-proof.ts): the shadow's as written, the original's as committed now.
 */
export function rangeCheck(plan: MysqlPlan, crc32c: boolean): (conn: Queryable, range: KeyRange) => Promise<boolean> {
  const [original, shadow] = planSides(plan).map((side) => digestQuery(crc32c, side));
  return async (conn, range) => {
    const a = await rangeDigest(conn, original, range);
    const b = await rangeDigest(conn, shadow, range);
    return a.rows === b.rows && a.digest === b.digest;
  };
}

/** One side's row count and digest over a key range. */
export async function rangeDigest(db: Queryable, digest: DigestSql, range: KeyRange): Promise<RangeDigest> {
  const w = digest.keys.range(range);
  const [[row]] = await db.query<RowDataPacket[]>(digest.sql(w.sql), w.params);
  return { rows: Number(row.n), digest: String(row.a) };
}

/** A row as one text over the compared columns (`exprs`, each over one of `columns`); ISNULL flags tell NULL from ''. */
export function rowText(exprs: string[], columns: string[]): string {
  return `CONCAT_WS('#', ${exprs.join(', ')}, CONCAT(${columns.map((c) => `ISNULL(${ident(c)})`).join(', ')}))`;
}

/** Keys per statement; each appears twice among the parameters. */
const KEYS_PER_COMPARISON = 1000;

/**
 * The keys among `keys` whose rows differ, compared row by row on the checksum's row text (as bytes):
 * on a view's reader, or on the session holding the cut-over lock (base tables are named once per
 * statement and never aliased, as LOCK TABLES requires).
 */
export async function differingKeys(db: Queryable, sides: [RowSide, RowSide], keys: Key[]): Promise<Key[]> {
  const [a, b] = sides.map((s) => new KeysetSql(mysqlDialect, s.keyColumns));
  const found: Key[] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_COMPARISON) {
    const batch = keys.slice(i, i + KEYS_PER_COMPARISON);
    found.push(...(await differingRows(db, sides, [a.keyIn(batch), b.keyIn(batch)])));
  }
  return found;
}

/** The keys of the rows that differ between the two sides, among the rows each side's filter selects. */
export async function differingRows(db: Queryable, [a, b]: [RowSide, RowSide], [fa, fb]: [Fragment, Fragment], ordered = false): Promise<Key[]> {
  const width = a.keyColumns.length;
  const alias = (columns: string[]) => columns.map((k, i) => `${ident(k)} AS k${i}`).join(', ');
  const on = Array.from({ length: width }, (_, i) => `o.k${i} <=> s.k${i}`).join(' AND ');
  const pick = (side: string) => Array.from({ length: width }, (_, j) => `${side}.k${j}`).join(', ');
  const filter = (side: RowSide, f: Fragment) => f.sql + (side.where ? ` AND (${side.where})` : '');
  const original = `(SELECT ${alias(a.keyColumns)}, ${a.text} AS r FROM ${a.table} WHERE ${filter(a, fa)}) o`;
  const shadow = `(SELECT ${alias(b.keyColumns)}, ${b.text} AS r FROM ${b.table} WHERE ${filter(b, fb)}) s`;
  // No FULL JOIN: rows of the original missing or different in the shadow, then shadow rows the original lacks.
  const differSql = `SELECT ${pick('o')} FROM ${original} LEFT JOIN ${shadow} ON ${on} WHERE s.k0 IS NULL OR NOT (CAST(o.r AS BINARY) <=> CAST(s.r AS BINARY))`;
  const extraSql = `SELECT ${pick('s')} FROM ${shadow} LEFT JOIN ${original} ON ${on} WHERE o.k0 IS NULL`;
  if (ordered) {
    // In key order, for a list a person reads; one statement, so not under LOCK TABLES (it names each table twice).
    const order = Array.from({ length: width }, (_, j) => j + 1).join(', ');
    const [rows] = await db.query<RowDataPacket[]>({
      sql: `(${differSql}) UNION ALL (${extraSql}) ORDER BY ${order}`,
      values: [...fa.params, ...fb.params, ...fb.params, ...fa.params],
      rowsAsArray: true,
    });
    return rows.map(rowValues);
  }
  const [differ] = await db.query<RowDataPacket[]>({
    sql: differSql,
    values: [...fa.params, ...fb.params],
    rowsAsArray: true,
  });
  const [extra] = await db.query<RowDataPacket[]>({
    sql: extraSql,
    values: [...fb.params, ...fa.params],
    rowsAsArray: true,
  });
  return [...differ.map(rowValues), ...extra.map(rowValues)];
}
