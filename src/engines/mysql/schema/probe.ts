import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../../core/engine/errors.js';
import { isTransientMysqlError } from '../server/errors.js';
import { qualified } from '../server/sql.js';
import { columnsWithoutDefault, describeTable, type TableShape } from './inspect.js';

export type ProbeKind = 'temporary' | 'real';

/** What creating, altering and dropping a probe of either kind takes. */
export const PROBE_PRIVILEGES = ['SELECT', 'CREATE', 'ALTER', 'DROP', 'CREATE TEMPORARY TABLES'];

/**
 * An empty copy of a table's definition for the server to try things on. TEMPORARY where the
 * table allows it: not replicated in ROW format, invisible to other sessions, gone with the
 * session. Partitioned and FULLTEXT/spatial tables cannot be temporary; they get a real table,
 * marked as a probe, which the caller drops at once. `real`: a real one at once (the ALTER makes
 * something a temporary table cannot be: `probeAlter` says so).
 */
export async function createProbe(conn: PoolConnection, database: string, like: string, name: string, real = false): Promise<ProbeKind> {
  try {
    if (!real) {
      await conn.query(`CREATE TEMPORARY TABLE ${qualified(database, name)} LIKE ${qualified(database, like)}`);
      return 'temporary';
    }
  } catch (error) {
    if (!notForTemporary(error)) throw copyRefused(error, name, like);
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

/**
 * Errors that may only say "not as a temporary table" (partitioning, FULLTEXT and spatial indexes,
 * compressed rows, and on MySQL a TABLESPACE or ENCRYPTION clause; MariaDB's ENCRYPTED=YES where
 * temporary tables are not encrypted is "Wrong create options"). Trying a real probe next is never
 * wrong in itself: what it refuses, the table would refuse.
 */
const CANNOT_BE_TEMPORARY = new Set([
  'ER_CANT_CREATE_TABLE',
  'ER_PARTITION_NO_TEMPORARY',
  'ER_INNODB_NO_FT_TEMP_TABLE',
  'ER_TABLE_CANT_HANDLE_SPKEYS',
  'ER_ILLEGAL_HA_CREATE_OPTION',
  'ER_TABLE_CANT_HANDLE_FT',
  'ER_UNSUPPORT_COMPRESSED_TEMPORARY_TABLE',
]);

/**
 * The same by number, where MariaDB's number means something else to mysql2 (whose names are
 * MySQL's): 4047 is MariaDB's "InnoDB refuses to write tables with ROW_FORMAT=COMPRESSED", which
 * it says of every temporary table and of none other while innodb_read_only_compressed is off.
 */
const MARIADB_CANNOT_BE_TEMPORARY = new Set([4047]);

function notForTemporary(error: unknown): boolean {
  const { code, errno, sqlMessage } = error as { code?: string; errno?: number; sqlMessage?: string };
  if (errno !== undefined && MARIADB_CANNOT_BE_TEMPORARY.has(errno) && /COMPRESSED/i.test(sqlMessage ?? '')) return true;
  return CANNOT_BE_TEMPORARY.has(code ?? '');
}

/**
 * The table's own definition is not accepted in this session (e.g. zero-date defaults under a strict
 * sql_mode). A lost session is not the definition's doing: it stays what it is, for the run's retry.
 */
function copyRefused(error: unknown, probe: string, table: string): unknown {
  if (isTransientMysqlError(error)) return error;
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

/** What the server made of the ALTER: the new table's shape, its SHOW CREATE TABLE, its columns NOT NULL without a DEFAULT. */
export interface ProbedAlter {
  shape: TableShape;
  createSql: string;
  withoutDefault: string[];
}

/**
 * Tries the ALTER on an empty probe copy of the table: the server validates the clause and reports
 * the resulting columns, and nothing persistent is created. An ALTER that makes what a temporary
 * table cannot be (partitioned, a FULLTEXT index, compressed rows), which the server accepts on the
 * table itself, is tried again on a real probe; `real` says the later probes must be real too.
 */
export async function probeAlter(pool: Pool, database: string, table: string, shadow: string, alter: string): Promise<ProbedAlter & { real: boolean }> {
  const conn = await pool.getConnection();
  try {
    const first = await tryAlter(conn, database, table, shadow, alter, false);
    if ('shape' in first) return { ...first, real: false };
    if (!notForTemporary(first.failed)) throw alterFails(first.failed, shadow, table);
    const second = await tryAlter(conn, database, table, shadow, alter, true);
    if ('shape' in second) return { ...second, real: true };
    throw alterFails(second.failed, shadow, table);
  } finally {
    conn.release();
  }
}

/** The ALTER on a fresh probe of the kind asked for, dropped whatever happens; the server's error is returned. */
async function tryAlter(
  conn: PoolConnection,
  database: string,
  table: string,
  probe: string,
  alter: string,
  real: boolean,
): Promise<ProbedAlter | { failed: unknown }> {
  const kind = await createProbe(conn, database, table, probe, real);
  try {
    await conn.query(`ALTER TABLE ${qualified(database, probe)} ${alter}`);
    const [[created]] = await conn.query<RowDataPacket[]>(`SHOW CREATE TABLE ${qualified(database, probe)}`);
    return {
      shape: await describeTable(conn, database, probe),
      createSql: String(created['Create Table']),
      withoutDefault: await columnsWithoutDefault(conn, database, probe),
    };
  } catch (error) {
    return { failed: error };
  } finally {
    await dropProbe(conn, database, probe, kind);
  }
}

/** The ALTER refused on the probe; a lost session (retried by the run) is not a refusal. */
const alterFails = (error: unknown, probe: string, table: string) =>
  isTransientMysqlError(error) ? error : new UserError(`the ALTER fails: ${(error as Error).message.replaceAll(probe, table)}`);

/** Why a probe's DROP may fail: the reason given where it is ignored. */
export const PROBE_LEFT_IS_FOUND =
  'a probe left behind is temporary (gone with its session) or marked as ours, and the next run or "shadowcut cleanup" drops it';
