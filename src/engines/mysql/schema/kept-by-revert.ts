import type { Pool, RowDataPacket } from 'mysql2/promise';
import { KEPT_BY_REVERT, keptByRevertComment } from '../../../core/engine/kept-by-revert.js';
import type { MysqlTarget } from '../server/target.js';
import { boundedDdl } from '../server/lock.js';
import { qualified } from '../server/sql.js';

/**
 * Marks the new table a revert kept (`<table>__new`), so that `shadowcut cleanup` never takes it for a
 * dead run's shadow once the revert window's checkpoint is gone. A table comment: metadata only.
 */
export function markKeptByRevert(target: MysqlTarget, pool: Pool, database: string, name: string): Promise<void> {
  const sql = `ALTER TABLE ${qualified(database, name)} COMMENT = ${pool.escape(keptByRevertComment(new Date()))}`;
  return boundedDdl(target, pool, sql, `could not mark ${database}.${name} as the new table a revert kept`);
}

/** Whether `database.name` is the new table a revert kept (its comment says so). */
export async function keptByRevert(pool: Pool, database: string, name: string): Promise<boolean> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT TABLE_COMMENT AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
    database,
    name,
  ]);
  return rows.length > 0 && String(rows[0].c).startsWith(KEPT_BY_REVERT);
}
