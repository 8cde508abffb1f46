import type pg from 'pg';
import { ident } from '../../server/sql.js';

/**
 * The stream's publication of `tables`. One of the name that our role owns was made by an attempt
 * that a lost session (a restart, a killed connection) cut before its slot: it is made again. One
 * another role owns is left for CREATE to refuse: its tables are not ours to trust.
 */
export async function makePublication(pool: pg.Pool, name: string, tables: string[]): Promise<void> {
  const ours = await pool.query(
    'SELECT FROM pg_catalog.pg_publication WHERE pubname = $1 AND pubowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)',
    [name],
  );
  if (ours.rowCount) await pool.query(`DROP PUBLICATION ${ident(name)}`);
  await pool.query(`CREATE PUBLICATION ${ident(name)} FOR TABLE ${tables.join(', ')}`);
}
