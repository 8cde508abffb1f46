import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { checkHelper, ensureHelperTable } from './helper-tables.js';
import { qualified } from './sql.js';

type Queryable = Pool | PoolConnection | Connection;

/**
 * `<table>__state`: one row holding the checkpoint of the run on the table, migrate's or a
 * backfill's; refused when not shadowcut's own. Created once per run, not at every save: each
 * CREATE ... IF NOT EXISTS is DDL, written to the binlog and replayed by every replica.
 */
export async function createStateTable(db: Pool, database: string, name: string): Promise<void> {
  await ensureHelperTable(db, database, name, 'id TINYINT PRIMARY KEY, checkpoint LONGTEXT NOT NULL', 'the checkpoint of a run on the table');
}

/** On the caller's connection, so a backfill saves it in its batch's own transaction. */
export async function writeState(db: Queryable, database: string, name: string, checkpoint: string): Promise<void> {
  await db.query(`REPLACE INTO ${qualified(database, name)} (id, checkpoint) VALUES (1, ?)`, [checkpoint]);
}

/** Read only once the table is proven shadowcut's own: another account's table would feed the run its data. */
export async function readState(pool: Pool, database: string, name: string): Promise<string | null> {
  if (!(await checkHelper(pool, database, name))) return null;
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT checkpoint FROM ${qualified(database, name)} WHERE id = 1`);
  return rows.length ? String(rows[0].checkpoint) : null;
}
