import type pg from 'pg';
import type { Client } from './connect.js';
import { qualified } from './connect.js';

type Queryable = pg.Pool | Client;

/** `<table>__state`: one row holding the checkpoint of the run on the table, migrate's or a backfill's. */
export async function createStateTable(db: Queryable, schema: string, name: string): Promise<void> {
  await db.query(`CREATE TABLE IF NOT EXISTS ${qualified(schema, name)} (id int PRIMARY KEY, checkpoint text NOT NULL)`);
}

/** On the caller's connection, so a backfill saves it in its batch's own transaction. */
export async function writeState(db: Queryable, schema: string, name: string, checkpoint: string): Promise<void> {
  await db.query(`INSERT INTO ${qualified(schema, name)} VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET checkpoint = EXCLUDED.checkpoint`, [checkpoint]);
}

export async function readState(pool: pg.Pool, schema: string, name: string): Promise<string | null> {
  const table = qualified(schema, name);
  const { rows } = await pool.query('SELECT to_regclass($1) IS NOT NULL AS e', [table]);
  if (rows[0].e !== 't') return null;
  const found = await pool.query(`SELECT checkpoint FROM ${table} WHERE id = 1`);
  return found.rows.length ? String(found.rows[0].checkpoint) : null;
}
