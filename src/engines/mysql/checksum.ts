import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { KeysetSql } from '../../core/keyset.js';
import type { CatchUp, ConsistentView, Key, KeyRange, RangeDigest } from '../../core/types.js';
import { binlogHead } from './binlog.js';
import { connectOne, type MysqlTarget } from './connect.js';
import type { Copier } from './copy.js';
import { LockedSession, lockTables } from './lock.js';
import type { MysqlPlan } from './plan.js';
import { ident, mysqlDialect, qualified } from './sql.js';

type Queryable = Connection | PoolConnection;

/**
 * Opens one read view of both tables in which the shadow has caught up with the original:
 * writers are held off by LOCK TABLES ... READ just long enough to apply the last changes and start
 * a consistent snapshot; the checksums then read that snapshot while writes go on.
 */
export async function openConsistentView(
  target: MysqlTarget,
  pool: Pool,
  plan: MysqlPlan,
  mover: Copier,
  catchUp: CatchUp,
  lockTimeoutMs: number,
): Promise<ConsistentView> {
  const locker = await connectOne(target);
  // Readers with snapshots started under the same lock see the same instant, so the original and the
  // shadow are checksummed at once, on two cores, while a third finds the next chunk's boundary.
  const readers = [await connectOne(target), await connectOne(target), await connectOne(target)] as const;
  try {
    for (const reader of readers) await reader.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await lockTables(
      locker,
      pool,
      `LOCK TABLES ${qualified(plan.database, plan.table)} READ, ${qualified(plan.database, plan.shadow)} WRITE`,
      lockTimeoutMs,
    );
    try {
      await catchUp(await binlogHead(locker), new LockedSession(locker));
      for (const reader of readers) await reader.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
    } finally {
      await locker.query('UNLOCK TABLES');
    }
  } catch (error) {
    for (const reader of readers) reader.destroy();
    throw error;
  } finally {
    await locker.end().catch(() => locker.destroy());
  }
  // CRC32C exists on MariaDB 10.8 and later only.
  const crc32c = await readers[0].query("SELECT CRC32C('')").then(() => true, () => false);
  return new MysqlView(readers, plan, mover, crc32c);
}

class MysqlView implements ConsistentView {
  private readonly origSql: string;
  private readonly shadowSql: string;
  private readonly origKeys: KeysetSql;
  private readonly shadowKeys: KeysetSql;

  constructor(
    private readonly readers: readonly [Connection, Connection, Connection],
    private readonly plan: MysqlPlan,
    private readonly mover: Copier,
    crc32c: boolean,
  ) {
    this.origKeys = new KeysetSql(mysqlDialect, plan.keyColumns);
    this.shadowKeys = new KeysetSql(mysqlDialect, plan.shadowKeyColumns);
    const rows = rowTexts(plan);
    this.origSql = digestQuery(crc32c, qualified(plan.database, plan.table), rows.original);
    this.shadowSql = digestQuery(crc32c, qualified(plan.database, plan.shadow), rows.shadow);
  }

  compareKeys(keys: Key[]): Promise<Key[]> {
    return differingKeys(this.readers[0], this.plan, keys);
  }

  nextBoundary(after: KeyRange['after'], rows: number) {
    return this.mover.nextBoundary(this.readers[2], after, rows);
  }

  async checksum(range: KeyRange): Promise<[RangeDigest, RangeDigest]> {
    const o = this.origKeys.range(range);
    const s = this.shadowKeys.range(range);
    const [[[a]], [[b]]] = await Promise.all([
      this.readers[0].query<RowDataPacket[]>(this.origSql.replace('?WHERE', o.sql), o.params),
      this.readers[1].query<RowDataPacket[]>(this.shadowSql.replace('?WHERE', s.sql), s.params),
    ]);
    return [toDigest(a), toDigest(b)];
  }

  async close(): Promise<void> {
    for (const reader of this.readers) {
      await reader.query('COMMIT').catch(() => {});
      await reader.end().catch(() => reader.destroy());
    }
  }
}

/**
 * An order-independent digest: the exact (DECIMAL) sum of a 64-bit hash of each row. The hash is
 * two CRC32s of the row's text, which cost half of one MD5 here. CRC is linear, so the rows' hashes
 * are summed rather than XORed: under XOR, two rows that swapped a value would cancel out. The
 * second CRC is CRC32C where the server has it (MariaDB 10.8+) and the CRC32 of the reversed
 * text otherwise (MySQL), so the pair is not a function of the first. Rows are unique by key and the key
 * is in the hashed text.
 */
function digestQuery(crc32c: boolean, table: string, row: string): string {
  const second = crc32c ? `CRC32C(${row})` : `CRC32(REVERSE(${row}))`;
  return `SELECT COUNT(*) AS n, COALESCE(SUM((CRC32(${row}) << 32) | ${second}), 0) AS a FROM ${table} WHERE ?WHERE`;
}

/** Each side's row as one text over the checksummed columns; ISNULL flags tell NULL from ''. */
function rowTexts(plan: MysqlPlan): { original: string; shadow: string } {
  const pairs = plan.columns.filter((c) => c.checksum !== null);
  const text = (exprs: string[], columns: string[]) =>
    `CONCAT_WS('#', ${exprs.join(', ')}, CONCAT(${columns.map((c) => `ISNULL(${ident(c)})`).join(', ')}))`;
  return {
    original: text(pairs.map((p) => p.checksum![0]), pairs.map((p) => p.source)),
    shadow: text(pairs.map((p) => p.checksum![1]), pairs.map((p) => p.target)),
  };
}

/** Keys per statement; each appears twice among the parameters. */
const KEYS_PER_COMPARISON = 1000;

/**
 * The keys among `keys` whose rows differ, compared row by row on the checksum's row text (as bytes):
 * on a view's reader, or on the session holding the cut-over lock (base tables are named once per
 * statement and never aliased, as LOCK TABLES requires).
 */
export async function differingKeys(db: Queryable, plan: MysqlPlan, keys: Key[]): Promise<Key[]> {
  const rows = rowTexts(plan);
  const width = plan.keyColumns.length;
  const origKeys = new KeysetSql(mysqlDialect, plan.keyColumns);
  const shadowKeys = new KeysetSql(mysqlDialect, plan.shadowKeyColumns);
  const alias = (columns: string[]) => columns.map((k, i) => `${ident(k)} AS k${i}`).join(', ');
  const on = Array.from({ length: width }, (_, i) => `o.k${i} <=> s.k${i}`).join(' AND ');
  const found: Key[] = [];
  for (let i = 0; i < keys.length; i += KEYS_PER_COMPARISON) {
    const batch = keys.slice(i, i + KEYS_PER_COMPARISON);
    const o = origKeys.keyIn(batch);
    const s = shadowKeys.keyIn(batch);
    const original = `(SELECT ${alias(plan.keyColumns)}, ${rows.original} AS r FROM ${qualified(plan.database, plan.table)} WHERE ${o.sql}) o`;
    const shadow = `(SELECT ${alias(plan.shadowKeyColumns)}, ${rows.shadow} AS r FROM ${qualified(plan.database, plan.shadow)} WHERE ${s.sql}) s`;
    const pick = (side: string) => Array.from({ length: width }, (_, j) => `${side}.k${j}`).join(', ');
    // No FULL JOIN: rows of the original missing or different in the shadow, then shadow rows the original lacks.
    const [differ] = await db.query<RowDataPacket[]>({
      sql: `SELECT ${pick('o')} FROM ${original} LEFT JOIN ${shadow} ON ${on} WHERE s.k0 IS NULL OR NOT (CAST(o.r AS BINARY) <=> CAST(s.r AS BINARY))`,
      values: [...o.params, ...s.params],
      rowsAsArray: true,
    });
    const [extra] = await db.query<RowDataPacket[]>({
      sql: `SELECT ${pick('s')} FROM ${shadow} LEFT JOIN ${original} ON ${on} WHERE o.k0 IS NULL`,
      values: [...s.params, ...o.params],
      rowsAsArray: true,
    });
    found.push(...(differ as unknown as Key[]), ...(extra as unknown as Key[]));
  }
  return found;
}

function toDigest(row: RowDataPacket): RangeDigest {
  return { rows: Number(row.n), digest: String(row.a) };
}
