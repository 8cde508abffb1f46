import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import type { ColumnBackup } from '../../../core/engine/ports/contract.js';
import { LockTimeoutError, UserError, SESSION_RESET, ignoreFailure } from '../../../core/engine/errors.js';
import { helperComment } from '../../../core/engine/helper-objects.js';
import { KeysetSql } from '../../../core/engine/keyset.js';
import { connectOne } from '../server/connect.js';
import type { MysqlTarget } from '../server/target.js';
import { nextKey } from '../copy/copy.js';
import { uniqueKey, type MysqlColumn, type TableShape } from '../schema/inspect.js';
import { lockTables, quickDdl } from '../server/lock.js';
import { ident, mysqlDialect, qualified } from '../server/sql.js';
import { NOT_SUPPORTED } from './in-place-alter.js';

// A contract's column backup (`--backup-to`): the dropped columns kept, chunk by chunk and through
// triggers, until the DROP makes it final; and the triggers a killed contract left behind.

/** A backup chunk waits this long (seconds, InnoDB's unit) for a row a writer holds, then is retried (rolled back). */
const CHUNK_LOCK_WAIT_SECONDS = 2;

/** A column backup and the DROP that makes it final, for the table's `drop`. */
export interface MysqlColumnBackup extends ColumnBackup {
  /** Under LOCK TABLES on `conn`: the capture's triggers go (then the caller drops the columns). */
  dropCapture(conn: Connection): Promise<void>;
  /** What LOCK TABLES must name: the table and the backup its triggers write. */
  readonly lockList: string;
}

/**
 * The table's key and the dropped columns, with their types, kept equal to the table by three
 * triggers until the DROP, and filled chunk by chunk.
 * - The triggers (AFTER each row, with their definer's rights) write the new row's values into the
 *   backup (and delete the old key's row when the key moved, or the row was deleted), in the
 *   writer's transaction.
 * - A chunk is a locking read (LOCK IN SHARE MODE): it waits for a writer of its rows, reads their
 *   latest committed version, and overwrites what a trigger wrote for them; a writer after it waits
 *   for its commit, and its trigger then writes over it.
 * - CREATE TRIGGER waits for every transaction holding the table's metadata lock (every writer) to
 *   end, so no write before the capture commits after the chunk that read its row.
 * - The DROP holds LOCK TABLES ... WRITE on one connection, drops the triggers and the columns there:
 *   no write falls between the backup's last and the DROP.
 */
export function columnBackup(
  target: MysqlTarget,
  pool: Pool,
  database: string,
  table: string,
  shape: TableShape,
  columns: string[],
  backup: string,
): MysqlColumnBackup {
  const key = uniqueKey(shape);
  if (!key)
    throw new UserError(
      `${database}.${table} has no PRIMARY KEY or NOT NULL UNIQUE key to keep the backup's rows by; add one first, or contract without --backup-to`,
    );
  const keyed = key.columns.filter((k) => !columns.includes(k));
  if (keyed.length !== key.columns.length)
    throw new UserError(
      `column(s) ${key.columns.filter((k) => columns.includes(k)).join(', ')} are the table's key (${key.name}); a contract step does not drop keys`,
    );
  const triggers = (['INSERT', 'UPDATE', 'DELETE'] as const).map((event) => ({ event, name: `${backup}__${event[0].toLowerCase()}` }));
  if (triggers.some((t) => t.name.length > 64))
    throw new UserError(`--backup-to ${backup} is too long to name its capture triggers (${backup}__i); at most 61 characters`);
  const kept = [...key.columns, ...columns];
  const def = (c: MysqlColumn) => `${ident(c.name)} ${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''}${c.nullable ? ' NULL' : ' NOT NULL'}`;
  const byName = (n: string) => shape.columns.find((c) => c.name === n)!;
  const source = qualified(database, table);
  const copy = qualified(database, backup);
  const list = kept.map(ident).join(', ');
  const overwrite = columns.map((c) => `${ident(c)} = VALUES(${ident(c)})`).join(', ');
  const keys = new KeysetSql(mysqlDialect, key.columns);
  // Equality on the unique key, so a writer's trigger locks one backup row (or one gap), never a range.
  const deleteOld = `DELETE FROM ${copy} WHERE ${key.columns.map((k) => `${ident(k)} = OLD.${ident(k)}`).join(' AND ')}`;
  const upsertNew = `INSERT INTO ${copy} (${list}) VALUES (${kept.map((c) => `NEW.${ident(c)}`).join(', ')}) ON DUPLICATE KEY UPDATE ${overwrite}`;
  const keyMoved = key.columns.map((k) => `NOT (OLD.${ident(k)} <=> NEW.${ident(k)})`).join(' OR ');
  const bodies = { INSERT: upsertNew, UPDATE: `BEGIN IF ${keyMoved} THEN ${deleteOld}; END IF; ${upsertNew}; END`, DELETE: deleteOld };
  const created: string[] = [];
  let tableMade = false;
  const dropTriggers = async (conn: Connection | Pool, timeoutMs?: number) => {
    for (const name of [...created]) {
      const sql = `DROP TRIGGER IF EXISTS ${qualified(database, name)}`;
      if (timeoutMs === undefined) await conn.query(sql);
      else await quickDdl(target, pool, sql, timeoutMs);
      created.splice(created.indexOf(name), 1);
    }
  };
  return {
    table: `${database}.${backup}`,
    lockList: `${source} WRITE, ${copy} WRITE`,
    async create(lockTimeoutMs) {
      // Made once, by this run (no IF NOT EXISTS: a table someone made meanwhile is not written into); a retry makes only the triggers still missing.
      if (!tableMade)
        await pool.query(
          `CREATE TABLE ${copy} (${kept.map((n) => def(byName(n))).join(', ')}, PRIMARY KEY (${key.columns.map(ident).join(', ')})) ENGINE=InnoDB COMMENT=?`,
          // The mark restore asks for: MySQL keeps no owner, so it is how a backup is known to be shadowcut's.
          [helperComment(`contract backup of ${database}.${table}`)],
        );
      tableMade = true;
      for (const t of triggers.filter((x) => !created.includes(x.name))) {
        await quickDdl(
          target,
          pool,
          `CREATE TRIGGER ${qualified(database, t.name)} AFTER ${t.event} ON ${source} FOR EACH ROW ${bodies[t.event]}`,
          lockTimeoutMs,
        );
        created.push(t.name);
      }
    },
    nextBoundary: (after, rows) => nextKey(pool, source, key.name, keys, after, rows),
    async copyRange(range) {
      const w = keys.range(range);
      const conn = await pool.getConnection();
      try {
        // A chunk waiting long for a row would keep writers of the rows it already holds waiting too.
        await conn.query(`SET SESSION innodb_lock_wait_timeout = ${CHUNK_LOCK_WAIT_SECONDS}`);
        // READ COMMITTED for this statement only: its locking read takes the rows, not the gaps
        // between them, so writers' inserts and their triggers are not held up by the chunk.
        // (A server logging statements cannot log it so, and keeps its own level.)
        const [[format]] = await conn.query<RowDataPacket[]>('SELECT @@SESSION.binlog_format AS f');
        if (String(format.f).toUpperCase() !== 'STATEMENT') await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
        const [res] = await conn.query(
          `INSERT INTO ${copy} (${list}) SELECT ${list} FROM ${source} FORCE INDEX (${ident(key.name)}) WHERE ${w.sql} LOCK IN SHARE MODE ON DUPLICATE KEY UPDATE ${overwrite}`,
          w.params,
        );
        return (res as { affectedRows: number }).affectedRows;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_LOCK_DEADLOCK')
          throw new LockTimeoutError(`a backup chunk's row locks: ${(error as Error).message}`);
        throw error;
      } finally {
        await conn.query('SET SESSION innodb_lock_wait_timeout = DEFAULT').catch(ignoreFailure(SESSION_RESET));
        conn.release();
      }
    },
    async remove(lockTimeoutMs) {
      // The triggers first: while one is left, it writes the backup, which must stay.
      await dropTriggers(pool, lockTimeoutMs);
      if (tableMade) await pool.query(`DROP TABLE IF EXISTS ${copy}`);
    },
    dropCapture: (conn) => dropTriggers(conn),
  };
}

/**
 * The backup made final: LOCK TABLES ... WRITE (the wait bounded as for any DROP), the capture's
 * triggers dropped and the columns dropped on that connection, then UNLOCK. Only ALGORITHM=INSTANT:
 * a rebuild under LOCK TABLES would block writers for all of it, so that is refused instead.
 */
export async function dropWithBackup(target: MysqlTarget, pool: Pool, backup: MysqlColumnBackup, alter: string, timeoutMs: number): Promise<string> {
  const conn = await connectOne(target);
  try {
    await lockTables(conn, pool, `LOCK TABLES ${backup.lockList}`, timeoutMs);
    await backup.dropCapture(conn);
    try {
      await conn.query(`${alter}, ALGORITHM=INSTANT`);
    } catch (error) {
      if (!NOT_SUPPORTED.has((error as { code?: string }).code ?? '')) throw error;
      throw new UserError(
        `the server cannot drop these columns instantly, and a rebuild under the backup's lock would block writes throughout: ${(error as Error).message}; contract without --backup-to, or copy the columns yourself first`,
      );
    }
    await conn.query('UNLOCK TABLES');
    return 'ALGORITHM=INSTANT, with the backup made final under LOCK TABLES';
  } finally {
    conn.destroy();
  }
}

/**
 * The triggers a contract killed while filling its backup left on `table` (for `shadowcut cleanup`):
 * `<backup>__i`, `__u`, `__d`, AFTER their event, writing into a table marked as this table's
 * contract backup. MySQL keeps no owner, so the mark and the bodies are how they are known to be
 * ours, never the names alone. The backup table itself is the user's data and stays.
 */
export async function contractBackupTriggers(pool: Pool, database: string, table: string): Promise<string[]> {
  const [backups] = await pool.query<RowDataPacket[]>('SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_COMMENT = ?', [
    database,
    helperComment(`contract backup of ${database}.${table}`),
  ]);
  if (backups.length === 0) return [];
  const [triggers] = await pool.query<RowDataPacket[]>(
    `SELECT TRIGGER_NAME AS name, EVENT_MANIPULATION AS event, ACTION_TIMING AS timing, ACTION_STATEMENT AS body
       FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?`,
    [database, database, table],
  );
  const found: string[] = [];
  for (const { name: backup } of backups) {
    const writes = qualified(database, String(backup));
    for (const event of ['INSERT', 'UPDATE', 'DELETE']) {
      const name = `${String(backup)}__${event[0].toLowerCase()}`;
      const t = triggers.find((r) => String(r.name) === name);
      if (t && String(t.event) === event && String(t.timing) === 'AFTER' && String(t.body).includes(writes)) found.push(name);
    }
  }
  return found;
}
