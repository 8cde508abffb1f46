import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { runChecks } from '../../../core/check.js';
import type { ColumnBackup, Contraction, ContractRequest } from '../../../core/contract/types.js';
import { LockTimeoutError, UserError } from '../../../core/errors.js';
import { helperComment } from '../../../core/helper-objects.js';
import { KeysetSql } from '../../../core/keyset.js';
import type { Dropped } from '../checks/contract/context.js';
import { contractChecks } from '../checks/contract/index.js';
import { connectOne, type MysqlTarget } from '../server/connect.js';
import { nextKey } from '../copy/copy.js';
import { describeExisting, tableExists, uniqueKey, type MysqlColumn, type TableShape } from '../schema/inspect.js';
import { lockTables, quickDdl } from '../server/lock.js';
import { parseTableName } from '../schema/plan.js';
import { ident, mysqlDialect, qualified } from '../server/sql.js';
import { innodbTableIdentity } from '../in-place/server-work.js';
import { galeraNode, galeraOsuRefusal } from '../server/galera.js';
import { multiPrimaryMember } from '../server/group-replication.js';

interface Server {
  target: MysqlTarget;
  pool: Pool;
  flavor: 'mariadb' | 'mysql';
}

/** `shadowcut contract` on MySQL/MariaDB: bad input is refused here, before any check runs. */
export async function prepareMysqlContract(server: Server, fold: (name: string) => string, request: ContractRequest): Promise<Contraction> {
  const { pool, target } = server;
  const database = target.database;
  const table = parseTableName(fold(request.table), database);
  const shape = await describeExisting(pool, database, table);
  const dropped = resolve(shape, request, `${database}.${table}`);
  const backupName = request.backupTo ? await freeBackupName(pool, database, fold(request.backupTo)) : null;
  await refuseOnGalera(pool, backupName !== null && dropped.kind === 'column');
  const identity = (of: string) => backupIdentity(pool, server.flavor, database, of);
  // Checked before anything changes: a backup restore could not tell from another user's table is no backup.
  if (backupName && dropped.kind !== 'index' && (await identity(table)) === null) throw new UserError(NO_IDENTITY);
  const name = qualified(database, table);
  const summary = [`${describe(dropped)}${dropped.kind === 'table' ? '' : ' of'} ${database}.${table}`];
  let indexDefinition: string | undefined;
  if (dropped.kind === 'index') {
    indexDefinition = await indexDefinitionOf(pool, database, table, dropped.index.name);
    summary.push(`to create it again: ${indexDefinition}`);
  }
  const backup = backupName && dropped.kind === 'column' ? columnBackup(target, pool, database, table, shape, dropped.columns, backupName) : undefined;
  if (backup) summary.push(`the dropped data is kept in ${backup.table} first`);
  if (backupName && dropped.kind === 'table') summary.push(`${database}.${table} is renamed to ${database}.${backupName} instead of dropped`);
  return {
    table: `${database}.${table}`,
    summary,
    indexDefinition,
    backup,
    checks: () => runChecks(contractChecks, { pool, database, table, shape, dropped }),
    keptIdentity:
      backupName && dropped.kind !== 'index'
        ? async () => {
            const id = await identity(dropped.kind === 'table' ? table : backupName);
            if (id === null) throw new UserError(NO_IDENTITY);
            return id;
          }
        : undefined,
    drop(lockTimeoutMs) {
      if (dropped.kind === 'table') {
        const sql = backupName ? `RENAME TABLE ${name} TO ${qualified(database, backupName)}` : `DROP TABLE ${name}`;
        return quickDdl(target, pool, sql, lockTimeoutMs).then(() => (backupName ? 'RENAME TABLE' : 'DROP TABLE'));
      }
      const clause = dropped.kind === 'column' ? dropped.columns.map((c) => `DROP COLUMN ${ident(c)}`).join(', ') : `DROP INDEX ${ident(dropped.index.name)}`;
      if (backup) return dropWithBackup(target, pool, backup, `ALTER TABLE ${name} ${clause}`, lockTimeoutMs);
      return inPlace(target, pool, `ALTER TABLE ${name} ${clause}`, lockTimeoutMs);
    },
  };
}

/** What a backup is known by (`Contraction.keptIdentity`): InnoDB's table id, kept by a RENAME, new for every CREATE; null without PROCESS. */
export async function backupIdentity(pool: Pool, flavor: 'mariadb' | 'mysql', database: string, table: string): Promise<string | null> {
  const id = await innodbTableIdentity(pool, flavor, database, table);
  return id === null ? null : `InnoDB table id ${id}`;
}

const NO_IDENTITY =
  "--backup-to needs InnoDB's table id, which restore checks to know the backup from a table another user put under its name: it takes the PROCESS privilege and ASCII names; grant it, or give --no-backup";

function resolve(shape: TableShape, request: ContractRequest, table: string): Dropped {
  const drop = request.drop;
  if (drop.kind === 'table') return drop;
  if (drop.kind === 'index') {
    if (request.backupTo) throw new UserError('--backup-to keeps data, and an index has none: its definition is printed and recorded instead');
    const index = shape.indexes.find((i) => i.name.toLowerCase() === drop.index.toLowerCase());
    if (!index) throw new UserError(`index ${drop.index} does not exist on ${table}`);
    if (index.name === 'PRIMARY') throw new UserError('dropping the PRIMARY KEY is not a contract step: change keys with shadowcut migrate');
    return { kind: 'index', index };
  }
  const columns = drop.columns.map((c) => {
    const found = shape.columns.find((x) => x.name.toLowerCase() === c.toLowerCase());
    if (!found) throw new UserError(`column ${c} does not exist in ${table}`);
    return found.name;
  });
  if (new Set(columns).size !== columns.length) throw new UserError('--drop-column names a column twice');
  if (columns.length === shape.columns.length) throw new UserError(`--drop-column names every column of ${table}; use --drop-table`);
  return { kind: 'column', columns };
}

function describe(d: Dropped): string {
  return d.kind === 'table'
    ? 'drops table'
    : d.kind === 'index'
      ? `drops index ${d.index.name} (${d.index.columns.join(', ')})`
      : `drops column(s) ${d.columns.join(', ')}`;
}

async function freeBackupName(pool: Pool, database: string, input: string): Promise<string> {
  const name = parseTableName(input, database);
  if (name.length > 64) throw new UserError(`--backup-to ${name} is longer than 64 characters`);
  if (await tableExists(pool, database, name)) throw new UserError(`--backup-to ${database}.${name} already exists; drop it or choose another name`);
  return name;
}

/** The index's own line of SHOW CREATE TABLE (prefixes, FULLTEXT, order and comments included), as an ALTER. */
async function indexDefinitionOf(pool: Pool, database: string, table: string, index: string): Promise<string> {
  const [[row]] = await pool.query<RowDataPacket[]>(`SHOW CREATE TABLE ${qualified(database, table)}`);
  const line = String(row['Create Table'])
    .split('\n')
    .map((l) => l.trim().replace(/,$/, ''))
    .find((l) => l.includes(`KEY ${ident(index)} (`));
  return `ALTER TABLE ${qualified(database, table)} ADD ${line ?? `INDEX ${ident(index)}`}`;
}

/** A backup chunk waits this long (seconds, InnoDB's unit) for a row a writer holds, then is retried (rolled back). */
const CHUNK_LOCK_WAIT_SECONDS = 2;

/** A column backup and the DROP that makes it final, for the table's `drop`. */
interface MysqlColumnBackup extends ColumnBackup {
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
function columnBackup(
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
        await conn.query('SET SESSION innodb_lock_wait_timeout = DEFAULT').catch(() => {});
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
async function dropWithBackup(target: MysqlTarget, pool: Pool, backup: MysqlColumnBackup, alter: string, timeoutMs: number): Promise<string> {
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

const NOT_SUPPORTED = new Set(['ER_ALTER_OPERATION_NOT_SUPPORTED', 'ER_ALTER_OPERATION_NOT_SUPPORTED_REASON']);

/**
 * ALGORITHM=INSTANT where the server can (MariaDB 10.4+ and MySQL 8.0.29+ drop a column so), with a
 * millisecond deadline on its metadata lock. Else INPLACE, LOCK=NONE: it rebuilds the table while
 * writes go on, so no deadline can bound the statement; lock_wait_timeout (whole seconds) bounds
 * each wait for its metadata lock instead. Never a copy, which would block writes throughout.
 */
export async function inPlace(target: MysqlTarget, pool: Pool, alter: string, timeoutMs: number): Promise<string> {
  try {
    await quickDdl(target, pool, `${alter}, ALGORITHM=INSTANT`, timeoutMs);
    return 'ALGORITHM=INSTANT';
  } catch (error) {
    if (!NOT_SUPPORTED.has((error as { code?: string }).code ?? '')) throw error;
  }
  const conn = await connectOne(target);
  try {
    await conn.query(`SET SESSION lock_wait_timeout = ${Math.max(1, Math.ceil(timeoutMs / 1000))}`);
    await conn.query(`${alter}, ALGORITHM=INPLACE, LOCK=NONE`);
    return 'ALGORITHM=INPLACE, LOCK=NONE';
  } catch (error) {
    const code = (error as { code?: string }).code ?? '';
    if (code === 'ER_LOCK_WAIT_TIMEOUT') throw new LockTimeoutError("the table's metadata lock was not free in time");
    if (NOT_SUPPORTED.has(code)) {
      throw new UserError(`the server can only make this change by copying the table, which blocks writes: ${(error as Error).message}; use shadowcut migrate`);
    }
    throw error;
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

/**
 * Galera (`server/galera.ts`): RSU would drop on one node only; a column's backup is made
 * final under node-local LOCK TABLES, which wedges a cluster whose other nodes write the table, and
 * misses the writes of a multi-primary group's other members (`server/group-replication.ts`).
 */
async function refuseOnGalera(pool: Pool, lockedBackup: boolean): Promise<void> {
  if (lockedBackup && (await multiPrimaryMember(pool))) {
    throw new UserError(
      'MySQL Group Replication in multi-primary mode: --backup-to of a column is refused, since its capture is made final under LOCK TABLES, which holds writers on this member only; switch the group to single-primary mode and run against the primary, or drop the column with --no-backup after copying what you need',
    );
  }
  const node = await galeraNode(pool);
  if (!node) return;
  const osu = galeraOsuRefusal(node);
  if (osu) throw new UserError(osu);
  if (lockedBackup) {
    throw new UserError(
      'Galera cluster (wsrep_on=ON): --backup-to of a column is refused, since its capture is made final under LOCK TABLES, which Galera does not replicate and which wedges every node once the other nodes write the table; drop the column with --no-backup after copying what you need, or use a blocking ALTER in a maintenance window',
    );
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
