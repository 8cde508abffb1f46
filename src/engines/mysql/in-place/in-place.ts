import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { InPlaceStep } from '../../../core/engine/ports/in-place.js';
import { localFreeSpace } from '../../../core/engine/disk.js';
import type { DiskSpace, TableSize } from '../../../core/engine/ports/sizing.js';
import { connectOne } from '../server/connect.js';
import type { MysqlTarget } from '../server/target.js';
import { withDeadline } from '../server/lock.js';
import { STATS_EXPIRY_MYSQL_8 } from '../server/sql.js';
import { ignoreFailure } from '../../../core/engine/errors.js';

/**
 * One in-place ALTER on a connection of its own. Its metadata lock queues every reader and writer
 * behind it while it waits, so the wait gets the cut-over's millisecond deadline (lock.ts); the
 * statement is atomic, so a cancelled one changed nothing.
 */
export async function runMysqlStep(target: MysqlTarget, killer: Pool, step: InPlaceStep, timeoutMs: number): Promise<void> {
  const conn = await connectOne(target);
  try {
    for (const sql of step.sql) await withDeadline(conn, killer, sql, timeoutMs);
  } finally {
    // A watchdog's KILL QUERY may still be on its way: this connection runs nothing else.
    conn.destroy();
  }
}

export async function mysqlTableSize(pool: Pool, database: string, table: string): Promise<TableSize> {
  await pool.query('SET SESSION information_schema_stats_expiry = 0').catch(ignoreFailure(STATS_EXPIRY_MYSQL_8));
  const [rows] = await pool.query<RowDataPacket[]>(
    'SELECT TABLE_ROWS r, DATA_LENGTH d, INDEX_LENGTH i FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [database, table],
  );
  const r = rows[0] ?? {};
  return { rows: Number(r.r ?? 0), dataBytes: Number(r.d ?? 0), indexBytes: Number(r.i ?? 0) };
}

export async function mysqlDiskSpace(pool: Pool, target: MysqlTarget): Promise<DiskSpace> {
  const [[row]] = await pool.query<RowDataPacket[]>('SELECT @@datadir AS d');
  return localFreeSpace(target.config.socketPath ? undefined : target.config.host, String(row.d));
}
