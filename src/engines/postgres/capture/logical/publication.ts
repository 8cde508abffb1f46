import type pg from 'pg';
import { ident } from '../../server/sql.js';
import { UserError } from '../../../../core/engine/errors.js';
import { errorCode } from '../../server/errors.js';

/**
 * The stream's publication of `tables`. One of the name that our role owns was made by an attempt
 * that a lost session (a restart, a killed connection) cut before its slot: it is made again. One
 * another role owns is refused (it may have been made since the checks looked): its tables are not
 * ours to trust, and it is not ours to drop.
 */
export async function makePublication(pool: pg.Pool, name: string, tables: string[]): Promise<void> {
  const ours = await pool.query(
    'SELECT FROM pg_catalog.pg_publication WHERE pubname = $1 AND pubowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)',
    [name],
  );
  if (ours.rowCount) await pool.query(`DROP PUBLICATION ${ident(name)}`);
  await pool.query(`CREATE PUBLICATION ${ident(name)} FOR TABLE ${tables.join(', ')}`).catch((error: unknown) => {
    // 42710 duplicate_object: made by another role between our look and our CREATE.
    if (errorCode(error) !== '42710') throw error;
    throw new UserError(
      `a publication named ${name} already exists and another role owns it: shadowcut's run uses that name: its owner must drop it before the run can go on`,
    );
  });
}
