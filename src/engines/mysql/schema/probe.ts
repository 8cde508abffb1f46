import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../../core/engine/errors.js';
import { qualified } from '../server/sql.js';
import { describeTable, type TableShape } from './inspect.js';

export type ProbeKind = 'temporary' | 'real';

/** What creating, altering and dropping a probe of either kind takes. */
export const PROBE_PRIVILEGES = ['SELECT', 'CREATE', 'ALTER', 'DROP', 'CREATE TEMPORARY TABLES'];

/**
 * An empty copy of a table's definition for the server to try things on. TEMPORARY where the
 * table allows it: not replicated in ROW format, invisible to other sessions, gone with the
 * session. Partitioned and FULLTEXT/spatial tables cannot be temporary; they get a real table,
 * marked as a probe, which the caller drops at once.
 */
export async function createProbe(conn: PoolConnection, database: string, like: string, name: string): Promise<ProbeKind> {
  try {
    await conn.query(`CREATE TEMPORARY TABLE ${qualified(database, name)} LIKE ${qualified(database, like)}`);
    return 'temporary';
  } catch (error) {
    if (!CANNOT_BE_TEMPORARY.has((error as { code?: string }).code ?? '')) throw copyRefused(error, name, like);
  }
  await conn.query(`CREATE TABLE ${qualified(database, name)} LIKE ${qualified(database, like)}`).catch((e) => {
    // Unlike a TEMPORARY probe, a real one cannot stand in front of a table of its name.
    if ((e as { code?: string }).code === 'ER_TABLE_EXISTS_ERROR') {
      throw new UserError(
        `${database}.${name} already exists (left by an earlier run?): run "shadowcut cleanup --url ... --table ${like}" or DROP TABLE ${qualified(database, name)}`,
      );
    }
    throw copyRefused(e, name, like);
  });
  await conn.query(`ALTER TABLE ${qualified(database, name)} COMMENT = ?`, [PROBE_MARK]);
  return 'real';
}

export async function dropProbe(conn: PoolConnection, database: string, name: string, kind: ProbeKind): Promise<void> {
  await conn.query(`DROP ${kind === 'temporary' ? 'TEMPORARY ' : ''}TABLE IF EXISTS ${qualified(database, name)}`);
}

/** Errors that only say "not as a temporary table" (partitioning, FULLTEXT and spatial indexes). */
const CANNOT_BE_TEMPORARY = new Set([
  'ER_PARTITION_NO_TEMPORARY',
  'ER_INNODB_NO_FT_TEMP_TABLE',
  'ER_TABLE_CANT_HANDLE_SPKEYS',
  'ER_ILLEGAL_HA_CREATE_OPTION',
  'ER_TABLE_CANT_HANDLE_FT',
]);

/** The table's own definition is not accepted in this session (e.g. zero-date defaults under a strict sql_mode). */
function copyRefused(error: unknown, probe: string, table: string): UserError {
  return new UserError(`cannot make a copy of the table's definition: ${(error as Error).message.replaceAll(probe, table)}`);
}

/** Set on every real probe as it is created: only a table that carries it is ever dropped as a probe. */
export const PROBE_MARK = 'shadowcut probe: safe to drop';

/** Whether a real table of a probe's name is absent, a probe shadowcut left (it carries the mark), or anything else. */
export async function probeNameTaken(conn: PoolConnection | Pool, database: string, name: string): Promise<'free' | 'probe' | 'foreign'> {
  const [rows] = await conn.query<RowDataPacket[]>(
    "SELECT TABLE_TYPE AS type, TABLE_COMMENT AS comment FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND TABLE_TYPE <> 'TEMPORARY'",
    [database, name],
  );
  if (rows.length === 0) return 'free';
  return rows[0].type === 'BASE TABLE' && String(rows[0].comment) === PROBE_MARK ? 'probe' : 'foreign';
}

/**
 * Makes way for a real probe: a probe an earlier run left is dropped; anything else of that name (a
 * user's table, a view) stops the command, naming it, and is left as it is.
 */
export async function clearProbeName(conn: PoolConnection | Pool, database: string, name: string): Promise<void> {
  const taken = await probeNameTaken(conn, database, name);
  if (taken === 'foreign') {
    throw new UserError(`${database}.${name} exists and is not a shadowcut probe (shadowcut needs the name for one): rename or drop it`);
  }
  if (taken === 'probe') await conn.query(`DROP TABLE IF EXISTS ${qualified(database, name)}`);
}

/**
 * A real, marked, empty copy of the table's definition. `CREATE TABLE ... LIKE` takes no table
 * options, so the mark follows at once; a run killed in between leaves an unmarked probe, which the
 * next run names instead of dropping.
 */
export async function createMarkedProbe(conn: PoolConnection, database: string, like: string, name: string): Promise<void> {
  await clearProbeName(conn, database, name);
  await conn.query(`CREATE TABLE ${qualified(database, name)} LIKE ${qualified(database, like)}`).catch((error: Error) => {
    throw copyRefused(error, name, like);
  });
  await conn.query(`ALTER TABLE ${qualified(database, name)} COMMENT = ?`, [PROBE_MARK]);
}

/**
 * Tries the ALTER on an empty probe copy of the table: the server validates the clause and reports
 * the resulting columns, and nothing persistent is created.
 */
export async function probeAlter(
  pool: Pool,
  database: string,
  table: string,
  shadow: string,
  alter: string,
): Promise<{ shape: TableShape; createSql: string }> {
  const conn = await pool.getConnection();
  try {
    const kind = await createProbe(conn, database, table, shadow);
    try {
      await conn.query(`ALTER TABLE ${qualified(database, shadow)} ${alter}`);
      const [[created]] = await conn.query<RowDataPacket[]>(`SHOW CREATE TABLE ${qualified(database, shadow)}`);
      return { shape: await describeTable(conn, database, shadow), createSql: String(created['Create Table']) };
    } catch (error) {
      throw new UserError(`the ALTER fails: ${(error as Error).message.replaceAll(shadow, table)}`);
    } finally {
      await dropProbe(conn, database, shadow, kind);
    }
  } finally {
    conn.release();
  }
}

/** Why a probe's DROP may fail: the reason given where it is ignored. */
export const PROBE_LEFT_IS_FOUND =
  'a probe left behind is temporary (gone with its session) or marked as ours, and the next run or "shadowcut cleanup" drops it';
