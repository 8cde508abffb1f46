import type { Pool, RowDataPacket } from 'mysql2/promise';
import { verdict, type Check } from '../../../core/check.js';
import type { MysqlCheckContext } from './index.js';

const NEEDED_ON_DB = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'ALTER', 'LOCK TABLES', 'CREATE TEMPORARY TABLES'];

export const privileges: Check<MysqlCheckContext> = {
  name: 'privileges',
  async run({ pool, plan }) {
    const missing = await missingPrivileges(pool, plan.database);
    return verdict('privileges', missing.length === 0, 'granted', privilegesRefusal(missing, plan.database));
  },
};

export function privilegesRefusal(missing: string[], database: string): string {
  return `missing privileges: ${missing.join(', ')}; GRANT them on ${database}.* to the user shadowcut connects as`;
}

/** Grants of the current user, globally and on the database; a role-based setup is trusted. */
export async function missingPrivileges(pool: Pool, database: string): Promise<string[]> {
  const [[me]] = await pool.query<RowDataPacket[]>("SELECT CURRENT_USER() AS u, IFNULL(CURRENT_ROLE(), 'NONE') AS r").catch(
    () => pool.query<RowDataPacket[]>("SELECT CURRENT_USER() AS u, 'NONE' AS r"),
  );
  if (String(me.r) !== 'NONE') return [];
  const [user, host] = String(me.u).split('@');
  const grantee = `'${user}'@'${host}'`;
  const [global] = await pool.query<RowDataPacket[]>('SELECT PRIVILEGE_TYPE p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?', [grantee]);
  const [db] = await pool.query<RowDataPacket[]>(
    'SELECT PRIVILEGE_TYPE p FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND ? LIKE TABLE_SCHEMA',
    [grantee, database],
  );
  const have = new Set([...global, ...db].map((r) => String(r.p)));
  const missing = NEEDED_ON_DB.filter((p) => !have.has(p));
  if (!have.has('REPLICATION SLAVE')) missing.push('REPLICATION SLAVE');
  if (!have.has('REPLICATION CLIENT') && !have.has('BINLOG MONITOR')) missing.push('REPLICATION CLIENT (BINLOG MONITOR on MariaDB)');
  return missing;
}
