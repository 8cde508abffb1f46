import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { freeOldTableName, migratedFrom } from '../../../core/engine/old-table.js';
import { innodbTableIdentity } from './innodb-ids.js';

type Queryable = Pool | PoolConnection;

/** MySQL's and MariaDB's limit on a table name, in characters. */
const NAME_LIMIT = 64;

/**
 * The tables of `table`'s old-table family that exist (`<table>__old`, `<table>__old_<n>`, in any
 * case): the originals earlier runs kept, or a user's tables of those names. Never a leftover to
 * refuse or drop: a dead run's own is known from its checkpoint.
 */
export async function oldTables(db: Queryable, database: string, table: string): Promise<string[]> {
  const like = `${table.replace(/[\\%_]/g, '\\$&')}\\_\\_old%`;
  const [rows] = await db.query<RowDataPacket[]>('SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE ?', [
    database,
    like,
  ]);
  return rows.map((r) => String(r.name)).filter((name) => migratedFrom(name)?.toLowerCase() === table.toLowerCase());
}

/** The name the plan keeps the original under: the first of its family no table (or view) has. */
export async function chooseOldTable(db: Queryable, database: string, table: string): Promise<string> {
  return freeOldTableName(table, await oldTables(db, database, table), (name) => [...name].length <= NAME_LIMIT, `${database}.${table}`);
}

/**
 * What tells the table from another made under its name since (dropped and made again, or rebuilt):
 * InnoDB's table ids, which a RENAME keeps; without the PROCESS privilege they cannot be read, and
 * its CREATE_TIME stands in (which MariaDB's RENAME changes, so it tells only before the swap).
 * Null for a table that is not there. `like`: an identity recorded earlier, read again the same way
 * (a role given PROCESS since would otherwise read as another table).
 */
export async function tableIdentity(db: Pool, flavor: 'mariadb' | 'mysql', database: string, table: string, like?: string): Promise<string | null> {
  if (like === undefined || like.startsWith(INNODB)) {
    const ids = await innodbTableIdentity(db, flavor, database, table);
    if (ids !== null || like !== undefined) return ids === null ? null : `${INNODB}${ids}`;
  }
  const [rows] = await db.query<RowDataPacket[]>(
    'SELECT CAST(CREATE_TIME AS CHAR) AS created FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [database, table],
  );
  return rows.length && rows[0].created !== null ? `created ${String(rows[0].created)}` : null;
}

const INNODB = 'InnoDB ids ';
