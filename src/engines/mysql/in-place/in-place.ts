import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../../core/errors.js';
import type { InPlaceStep } from '../../../core/in-place/types.js';
import { localFreeSpace } from '../../../core/plan/disk.js';
import type { CopySample, DiskSpace, TableSize } from '../../../core/plan/types.js';
import { KeysetSql } from '../../../core/keyset.js';
import { connectOne, type MysqlTarget } from '../server/connect.js';
import { columnLists } from '../copy/copy.js';
import { withDeadline } from '../server/lock.js';
import { helperNames, type MysqlPlan } from '../schema/plan.js';
import { createMarkedProbe } from '../schema/probe.js';
import { ident, mysqlDialect, qualified } from '../server/sql.js';

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
  await pool.query('SET SESSION information_schema_stats_expiry = 0').catch(() => {});
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

/**
 * The first `rows` rows in key order, through the copy's own INSERT ... SELECT into a real probe
 * with the new schema (as the shadow would get them), then read back once as a checksum does.
 */
export async function timeMysqlSample(pool: Pool, p: MysqlPlan, alter: string, rows: number): Promise<CopySample> {
  const name = helperNames(p.table).probes[2];
  const probe = qualified(p.database, name);
  const conn = await pool.getConnection();
  let made = false;
  try {
    await createMarkedProbe(conn, p.database, p.table, name);
    made = true;
    await conn.query(`ALTER TABLE ${probe} ${alter}`);
    const { targets, sources } = columnLists(p);
    const order = new KeysetSql(mysqlDialect, p.keyColumns).orderBy();
    let start = performance.now();
    const [done] = await conn
      .query<ResultSetHeader>(
        `INSERT INTO ${probe} (${targets}) SELECT ${sources} FROM ${qualified(p.database, p.table)} FORCE INDEX (${ident(p.keyIndex)}) ORDER BY ${order} LIMIT ${rows}`,
      )
      .catch((error: Error & { errno?: number }) => {
        // The probe is ours and the read takes no locks: a server's refusal here is about the rows.
        if (error.errno === undefined) throw error;
        throw new UserError(`the copy fails on the table's first rows: ${error.message.replaceAll(name, p.table)}`);
      });
    const copyMs = performance.now() - start;
    start = performance.now();
    await conn.query(`CHECKSUM TABLE ${probe} EXTENDED`);
    const readMs = performance.now() - start;
    return { rows: done.affectedRows, copyMs, readMs };
  } finally {
    if (made) await conn.query(`DROP TABLE IF EXISTS ${probe}`).catch(() => {});
    conn.release();
  }
}
