import type pg from 'pg';
import { isTrue } from './sql.js';

/** The current role's attributes that lift the privilege checks (superuser, REPLICATION, BYPASSRLS). */
export async function currentRole(pool: pg.Pool): Promise<{ superuser: boolean; replication: boolean; bypassRls: boolean }> {
  const { rows } = await pool.query('SELECT rolsuper, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = current_user');
  return { superuser: isTrue(rows[0].rolsuper), replication: isTrue(rows[0].rolreplication), bypassRls: isTrue(rows[0].rolbypassrls) };
}
