import type { PoolConnection } from 'mysql2/promise';
import { UserError } from '../../core/errors.js';
import { qualified } from './sql.js';

export type ProbeKind = 'temporary' | 'real';

/** What creating, altering and dropping a probe of either kind takes. */
export const PROBE_PRIVILEGES = ['SELECT', 'CREATE', 'ALTER', 'DROP', 'CREATE TEMPORARY TABLES'];

/**
 * An empty copy of a table's definition for the server to try things on. TEMPORARY where the
 * table allows it: not replicated in ROW format, invisible to other sessions, gone with the
 * session. Partitioned and FULLTEXT/spatial tables cannot be temporary; they get a real table,
 * which the caller drops at once.
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
      throw new UserError(`${database}.${name} already exists (left by an earlier run?): run "shadowcut cleanup --url ... --table ${like}" or DROP TABLE ${qualified(database, name)}`);
    }
    throw copyRefused(e, name, like);
  });
  return 'real';
}

export async function dropProbe(conn: PoolConnection, database: string, name: string, kind: ProbeKind): Promise<void> {
  await conn.query(`DROP ${kind === 'temporary' ? 'TEMPORARY ' : ''}TABLE IF EXISTS ${qualified(database, name)}`);
}

/** Errors that only say "not as a temporary table" (partitioning, FULLTEXT and spatial indexes). */
const CANNOT_BE_TEMPORARY = new Set(['ER_PARTITION_NO_TEMPORARY', 'ER_INNODB_NO_FT_TEMP_TABLE', 'ER_TABLE_CANT_HANDLE_SPKEYS', 'ER_ILLEGAL_HA_CREATE_OPTION', 'ER_TABLE_CANT_HANDLE_FT']);

/** The table's own definition is not accepted in this session (e.g. zero-date defaults under a strict sql_mode). */
function copyRefused(error: unknown, probe: string, table: string): UserError {
  return new UserError(`cannot make a copy of the table's definition: ${(error as Error).message.replaceAll(probe, table)}`);
}
