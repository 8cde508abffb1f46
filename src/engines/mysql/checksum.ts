import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { KeysetSql } from '../../core/keyset.js';
import type { CatchUp, ConsistentView, KeyRange, RangeDigest } from '../../core/types.js';
import { binlogHead } from './binlog.js';
import { connectOne, type MysqlTarget } from './connect.js';
import type { RowMover } from './copy.js';
import { LockedSession, lockTables } from './lock.js';
import type { MysqlPlan } from './plan.js';
import { ident, mysqlDialect, qualified } from './sql.js';


/**
 * Opens one read view of both tables in which the shadow has caught up with the original:
 * writers are held off by LOCK TABLES ... READ just long enough to apply the last changes and start
 * a consistent snapshot; the checksums then read that snapshot while writes go on.
 */
export async function openConsistentView(
  target: MysqlTarget,
  pool: Pool,
  plan: MysqlPlan,
  mover: RowMover,
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
    plan: MysqlPlan,
    private readonly mover: RowMover,
    crc32c: boolean,
  ) {
    const pairs = plan.columns.filter((c) => c.checksum !== null);
    this.origKeys = new KeysetSql(mysqlDialect, plan.keyColumns);
    this.shadowKeys = new KeysetSql(mysqlDialect, plan.shadowKeyColumns);
    this.origSql = digestQuery(crc32c, qualified(plan.database, plan.table), pairs.map((p) => p.checksum![0]), pairs.map((p) => p.source));
    this.shadowSql = digestQuery(crc32c, qualified(plan.database, plan.shadow), pairs.map((p) => p.checksum![1]), pairs.map((p) => p.target));
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
 * is in the hashed text; ISNULL flags tell NULL from ''.
 */
function digestQuery(crc32c: boolean, table: string, exprs: string[], columns: string[]): string {
  const nulls = columns.map((c) => `ISNULL(${ident(c)})`).join(', ');
  const row = `CONCAT_WS('#', ${exprs.join(', ')}, CONCAT(${nulls}))`;
  const second = crc32c ? `CRC32C(${row})` : `CRC32(REVERSE(${row}))`;
  return `SELECT COUNT(*) AS n, COALESCE(SUM((CRC32(${row}) << 32) | ${second}), 0) AS a FROM ${table} WHERE ?WHERE`;
}

function toDigest(row: RowDataPacket): RangeDigest {
  return { rows: Number(row.n), digest: String(row.a) };
}
