import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';

// What the current user is granted, read by one set of functions for the privileges check
// (checks/privileges.ts), the plan's probe (prepare/build-plan.ts) and the helper tables, so they agree.

/** TRIGGER: information_schema.TRIGGERS lists a table's triggers only to a user who has it, and helper tables are checked for them. */
const NEEDED_ON_DB = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'CREATE', 'DROP', 'ALTER', 'LOCK TABLES', 'CREATE TEMPORARY TABLES', 'TRIGGER'];

type Queryable = Pool | PoolConnection;

export function privilegesRefusal(missing: string[], database: string): string {
  return `missing privileges: ${missing.join(', ')}; GRANT them on ${database}.* to the user shadowcut connects as`;
}

/**
 * What the current user is granted globally and on the database, or null under a role, whose
 * grants are trusted (they do not show in these views).
 */
export async function grantsOn(pool: Queryable, database: string): Promise<Set<string> | null> {
  const [[me]] = await pool
    .query<RowDataPacket[]>("SELECT CURRENT_USER() AS u, IFNULL(CURRENT_ROLE(), 'NONE') AS r")
    .catch(() => pool.query<RowDataPacket[]>("SELECT CURRENT_USER() AS u, 'NONE' AS r"));
  if (String(me.r) !== 'NONE') return null;
  const [user, host] = String(me.u).split('@');
  const grantee = `'${user}'@'${host}'`;
  const [global] = await pool.query<RowDataPacket[]>('SELECT PRIVILEGE_TYPE p FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = ?', [grantee]);
  const [db] = await pool.query<RowDataPacket[]>(
    'SELECT PRIVILEGE_TYPE p FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = ? AND ? LIKE TABLE_SCHEMA',
    [grantee, database],
  );
  return new Set([...global, ...db].map((r) => String(r.p)));
}

/** What the run needs on the database; `stream` adds what reading the binlog needs (trigger capture needs only TRIGGER, already listed). */
export async function missingPrivileges(pool: Pool, database: string, stream: boolean): Promise<string[]> {
  const have = await grantsOn(pool, database);
  if (have === null) return [];
  const missing = NEEDED_ON_DB.filter((p) => !have.has(p));
  if (stream) return [...missing, ...missingReplicationPrivileges(have)];
  // Trigger capture sees a TRUNCATE of the table (which fires no trigger) only in InnoDB's table ids.
  return have.has('PROCESS') ? missing : [...missing, 'PROCESS (globally: trigger capture reads InnoDB table ids)'];
}

export function missingReplicationPrivileges(have: Set<string>): string[] {
  const missing: string[] = [];
  if (!have.has('REPLICATION SLAVE')) missing.push('REPLICATION SLAVE');
  if (!have.has('REPLICATION CLIENT') && !have.has('BINLOG MONITOR')) missing.push('REPLICATION CLIENT (BINLOG MONITOR on MariaDB)');
  return missing;
}
