import type { Pool, RowDataPacket } from 'mysql2/promise';
import { runChecks } from '../../core/check.js';
import type { ColumnBackup, Contraction, ContractRequest } from '../../core/contract/types.js';
import { LockTimeoutError, UserError } from '../../core/errors.js';
import { KeysetSql } from '../../core/keyset.js';
import { contractChecks, type Dropped } from './checks/contract/index.js';
import { connectOne, type MysqlTarget } from './connect.js';
import { nextKey } from './copy.js';
import { describeExisting, tableExists, uniqueKey, type MysqlColumn, type TableShape } from './inspect.js';
import { withDeadline } from './lock.js';
import { parseTableName } from './plan.js';
import { ident, mysqlDialect, qualified } from './sql.js';

interface Server {
  target: MysqlTarget;
  pool: Pool;
}

/** `shadowcut contract` on MySQL/MariaDB: bad input is refused here, before any check runs. */
export async function prepareMysqlContract(server: Server, fold: (name: string) => string, request: ContractRequest): Promise<Contraction> {
  const { pool, target } = server;
  const database = target.database;
  const table = parseTableName(fold(request.table), database);
  const shape = await describeExisting(pool, database, table);
  const dropped = resolve(shape, request, `${database}.${table}`);
  const backupName = request.backupTo ? await freeBackupName(pool, database, fold(request.backupTo)) : null;
  const name = qualified(database, table);
  const summary = [`${describe(dropped)}${dropped.kind === 'table' ? '' : ' of'} ${database}.${table}`];
  let indexDefinition: string | undefined;
  if (dropped.kind === 'index') {
    indexDefinition = await indexDefinitionOf(pool, database, table, dropped.index.name);
    summary.push(`to create it again: ${indexDefinition}`);
  }
  const backup = backupName && dropped.kind === 'column' ? columnBackup(pool, database, table, shape, dropped.columns, backupName) : undefined;
  if (backup) summary.push(`the dropped data is kept in ${backup.table} first`);
  if (backupName && dropped.kind === 'table') summary.push(`${database}.${table} is renamed to ${database}.${backupName} instead of dropped`);
  return {
    table: `${database}.${table}`,
    summary,
    indexDefinition,
    backup,
    checks: () => runChecks(contractChecks, { pool, database, table, shape, dropped }),
    drop(lockTimeoutMs) {
      if (dropped.kind === 'table') {
        const sql = backupName ? `RENAME TABLE ${name} TO ${qualified(database, backupName)}` : `DROP TABLE ${name}`;
        return quick(target, pool, sql, lockTimeoutMs).then(() => (backupName ? 'RENAME TABLE' : 'DROP TABLE'));
      }
      const clause = dropped.kind === 'column' ? dropped.columns.map((c) => `DROP COLUMN ${ident(c)}`).join(', ') : `DROP INDEX ${ident(dropped.index.name)}`;
      return inPlace(target, pool, `ALTER TABLE ${name} ${clause}`, lockTimeoutMs);
    },
  };
}

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
  return d.kind === 'table' ? 'drops table' : d.kind === 'index' ? `drops index ${d.index.name} (${d.index.columns.join(', ')})` : `drops column(s) ${d.columns.join(', ')}`;
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

/** The table's key and the dropped columns, with their types, copied chunk by chunk (each INSERT ... SELECT commits on its own). */
function columnBackup(pool: Pool, database: string, table: string, shape: TableShape, columns: string[], backup: string): ColumnBackup {
  const key = uniqueKey(shape);
  if (!key) throw new UserError(`${database}.${table} has no PRIMARY KEY or NOT NULL UNIQUE key to keep the backup's rows by; add one first, or contract without --backup-to`);
  const keyed = key.columns.filter((k) => !columns.includes(k));
  if (keyed.length !== key.columns.length) throw new UserError(`column(s) ${key.columns.filter((k) => columns.includes(k)).join(', ')} are the table's key (${key.name}); a contract step does not drop keys`);
  const kept = [...key.columns, ...columns];
  const def = (c: MysqlColumn) => `${ident(c.name)} ${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''}${c.nullable ? ' NULL' : ' NOT NULL'}`;
  const byName = (n: string) => shape.columns.find((c) => c.name === n)!;
  const source = qualified(database, table);
  const target = qualified(database, backup);
  const list = kept.map(ident).join(', ');
  const keys = new KeysetSql(mysqlDialect, key.columns);
  return {
    table: `${database}.${backup}`,
    async create() {
      await pool.query(`CREATE TABLE ${target} (${kept.map((n) => def(byName(n))).join(', ')}, PRIMARY KEY (${key.columns.map(ident).join(', ')})) ENGINE=InnoDB`);
    },
    nextBoundary: (after, rows) => nextKey(pool, source, key.name, keys, after, rows),
    async copyRange(range) {
      const w = keys.range(range);
      const [res] = await pool.query(`INSERT INTO ${target} (${list}) SELECT ${list} FROM ${source} FORCE INDEX (${ident(key.name)}) WHERE ${w.sql}`, w.params);
      return (res as { affectedRows: number }).affectedRows;
    },
    async remove() {
      await pool.query(`DROP TABLE IF EXISTS ${target}`);
    },
  };
}

/** A metadata-only statement (DROP/RENAME TABLE), given the lock for at most `timeoutMs` (see withDeadline). */
async function quick(target: MysqlTarget, pool: Pool, sql: string, timeoutMs: number): Promise<void> {
  const conn = await connectOne(target);
  try {
    await withDeadline(conn, pool, sql, timeoutMs);
  } finally {
    // A watchdog's KILL QUERY may still be on its way: this connection runs nothing else.
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
async function inPlace(target: MysqlTarget, pool: Pool, alter: string, timeoutMs: number): Promise<string> {
  try {
    await quick(target, pool, `${alter}, ALGORITHM=INSTANT`, timeoutMs);
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
    if (code === 'ER_LOCK_WAIT_TIMEOUT') throw new LockTimeoutError('the table\'s metadata lock was not free in time');
    if (NOT_SUPPORTED.has(code)) {
      throw new UserError(`the server can only make this change by copying the table, which blocks writes: ${(error as Error).message}; use shadowcut migrate`);
    }
    throw error;
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}
