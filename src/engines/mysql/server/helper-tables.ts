import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { HELPER_MARK, HelperRefusedError, helperComment, helperProblems, refuseUnlessOwn, type HelperFacts } from '../../../core/engine/helper-objects.js';
import { grantsOn } from './grants.js';
import { qualified } from './sql.js';

type Queryable = Pool | PoolConnection;

/**
 * The facts about `database.name`, or null when there is none. MariaDB and MySQL keep no owner of a
 * table, so the mark (set by shadowcut's CREATE) and the absence of triggers are all there is to
 * check: a trigger runs with its DEFINER's rights on every row shadowcut writes. Triggers are listed
 * only to a user with the TRIGGER privilege, so without it an existing helper is refused.
 */
async function helperFacts(db: Queryable, database: string, name: string): Promise<HelperFacts | null> {
  const [tables] = await db.query<RowDataPacket[]>(
    'SELECT TABLE_TYPE AS kind, TABLE_COMMENT AS comment FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [database, name],
  );
  if (tables.length === 0) return null;
  const [triggers] = await db.query<RowDataPacket[]>(
    'SELECT TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY 1',
    [database, name],
  );
  const grants = await grantsOn(db, database);
  const kind = String(tables[0].kind);
  return {
    otherKind: kind === 'BASE TABLE' ? null : kind.toLowerCase(),
    marked: String(tables[0].comment).startsWith(HELPER_MARK),
    foreignOwner: null,
    triggers: triggers.map((t) => String(t.name)),
    rules: [],
    policies: [],
    rowSecurity: false,
    // Without TRIGGER the list above is empty whatever is there: no proof, so no use of the table.
    unreadable: grants === null || grants.has('TRIGGER') ? null : 'the user lacks the TRIGGER privilege, without which the server hides them',
    // Not refused on rights: any account with database-wide INSERT (GRANT ... ON db.*) can write every
    // table there, helpers included, and no table-level REVOKE takes that away. What shadowcut reads
    // back from its helpers on MySQL is authenticated instead, and shadowcut grants nothing on them.
    writers: [],
  };
}

/** Refuses `database.name` when it exists and is not shadowcut's own; says whether it exists. */
export async function checkHelper(db: Queryable, database: string, name: string): Promise<boolean> {
  const facts = await helperFacts(db, database, name);
  if (facts === null) return false;
  // No owner to prove authorship: an unmarked table could be anyone's.
  refuseUnlessOwn(`${database}.${name}`, facts, false);
  return true;
}

/**
 * Makes the helper table, marked, when it is missing, and proves it is shadowcut's own either way
 * before anyone writes into it; checked after the CREATE ... IF NOT EXISTS, so a table another
 * account makes in between is seen too. `definition` is the column list and table options.
 */
export async function ensureHelperTable(db: Queryable, database: string, name: string, definition: string, purpose: string): Promise<void> {
  // Escaped by the driver: a purpose naming a table may hold quotes and backslashes.
  await db.query(`CREATE TABLE IF NOT EXISTS ${qualified(database, name)} (${definition}) ${OPTIONS} COMMENT=?`, [helperComment(purpose)]);
  await checkHelper(db, database, name);
  await inUtf8mb4(db, database, name);
}

/**
 * Helpers hold table names, ALTERs and plans, which may be in any script: utf8mb4 whatever the
 * database's default (latin1 on many servers, where a name in Cyrillic was refused or mangled).
 * Key columns copied from the table (the trigger log's) name their own collation, which wins.
 */
const OPTIONS = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin';

/** One an older version made in the database's default character set is converted (losslessly: utf8mb4 holds every character). */
async function inUtf8mb4(db: Queryable, database: string, name: string): Promise<void> {
  const [rows] = await db.query<RowDataPacket[]>('SELECT TABLE_COLLATION AS c FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [
    database,
    name,
  ]);
  if (rows.length && !/^utf8mb4_/i.test(String(rows[0].c))) {
    await db.query(`ALTER TABLE ${qualified(database, name)} CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  }
}

/**
 * Makes a helper that must be new (the trigger capture's log): no IF NOT EXISTS, so a table another
 * account slipped in under the name, marked and empty but with other columns, fails the CREATE
 * instead of being written into by triggers.
 */
export async function createFreshHelperTable(db: Queryable, database: string, name: string, definition: string, purpose: string): Promise<void> {
  try {
    await db.query(`CREATE TABLE ${qualified(database, name)} (${definition}) ${OPTIONS} COMMENT=?`, [helperComment(purpose)]);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ER_TABLE_EXISTS_ERROR') throw error;
    throw new HelperRefusedError(`${database}.${name}`, ['was made by another session while shadowcut was making it']);
  }
}

/** Drops the helper only when it is shadowcut's own: one that was refused is left to whoever made it. */
export async function dropOwnHelper(db: Queryable, database: string, name: string): Promise<void> {
  const facts = await helperFacts(db, database, name);
  if (facts && helperProblems(facts, false).length === 0) await db.query(`DROP TABLE IF EXISTS ${qualified(database, name)}`);
}
