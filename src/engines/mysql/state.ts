import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { tableExists } from './inspect.js';
import { qualified } from './sql.js';

type Queryable = Pool | PoolConnection | Connection;

/**
 * `<table>__state`: one row holding the checkpoint of the run on the table, migrate's or a
 * backfill's. Created once per run, not at every save: each CREATE ... IF NOT EXISTS is DDL,
 * written to the binlog and replayed by every replica.
 */
export async function createStateTable(db: Queryable, database: string, name: string): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${qualified(database, name)} (id TINYINT PRIMARY KEY, checkpoint LONGTEXT NOT NULL) ENGINE=InnoDB`);
}

/** On the caller's connection, so a backfill saves it in its batch's own transaction. */
export async function writeState(db: Queryable, database: string, name: string, checkpoint: string): Promise<void> {
  await db.query(`REPLACE INTO ${qualified(database, name)} (id, checkpoint) VALUES (1, ?)`, [checkpoint]);
}

export async function readState(pool: Pool, database: string, name: string): Promise<string | null> {
  if (!(await tableExists(pool, database, name))) return null;
  const [rows] = await pool.query<RowDataPacket[]>(`SELECT checkpoint FROM ${qualified(database, name)} WHERE id = 1`);
  return rows.length ? String(rows[0].checkpoint) : null;
}
