import type pg from 'pg';
import { runChecks } from '../../core/check.js';
import type { ColumnBackup, Contraction, ContractRequest } from '../../core/contract/types.js';
import { UserError } from '../../core/errors.js';
import { KeysetSql } from '../../core/keyset.js';
import { contractChecks, type Dropped } from './checks/contract/index.js';
import { asLockTimeout, dialect, ident, inTransaction, parseTableName, qualified } from './connect.js';
import { nextKey } from './copy.js';
import { inspectTable, type TableInfo } from './inspect.js';

/** `shadowcut contract` on PostgreSQL: bad input is refused here, before any check runs. */
export async function preparePgContract(pool: pg.Pool, request: ContractRequest): Promise<Contraction> {
  const { schema, name } = parseTableName(request.table);
  const t = await inspectTable(pool, schema, name);
  const dropped = await resolve(pool, t, request);
  const backupName = request.backupTo ? await freeBackupName(pool, schema, request.backupTo) : null;
  const table = qualified(schema, name);
  const summary = [`${describe(dropped)}${dropped.kind === 'table' ? '' : ' of'} ${schema}.${name}`];
  let indexDefinition: string | undefined;
  if (dropped.kind === 'index') {
    indexDefinition = dropped.definition;
    summary.push(`to create it again: ${dropped.definition}`);
  }
  const backup = backupName && dropped.kind === 'column' ? columnBackup(pool, t, dropped.columns, backupName) : undefined;
  if (backup) summary.push(`the dropped data is kept in ${backup.table} first`);
  if (backupName && dropped.kind === 'table') summary.push(`${schema}.${name} is renamed to ${schema}.${backupName} instead of dropped`);
  return {
    table: `${schema}.${name}`,
    summary,
    indexDefinition,
    backup,
    checks: () => runChecks(contractChecks, { pool, t, dropped }),
    async drop(lockTimeoutMs) {
      if (dropped.kind === 'table') {
        await withLockTimeout(pool, backupName ? `ALTER TABLE ${table} RENAME TO ${ident(backupName)}` : `DROP TABLE ${table}`, lockTimeoutMs);
        return backupName ? 'ALTER TABLE ... RENAME' : 'DROP TABLE';
      }
      if (dropped.kind === 'index') {
        // Writers are never blocked; a failed attempt may leave the index invalid, and the next one drops it.
        await withLockTimeout(pool, `DROP INDEX CONCURRENTLY ${qualified(schema, dropped.index)}`, lockTimeoutMs);
        return 'DROP INDEX CONCURRENTLY';
      }
      await withLockTimeout(pool, `ALTER TABLE ${table} ${dropped.columns.map((c) => `DROP COLUMN ${ident(c)}`).join(', ')}`, lockTimeoutMs);
      return 'DROP COLUMN, catalog only (no rewrite)';
    },
  };
}

async function resolve(pool: pg.Pool, t: TableInfo, request: ContractRequest): Promise<Dropped> {
  const drop = request.drop;
  const table = `${t.schema}.${t.name}`;
  if (drop.kind === 'table') return drop;
  if (drop.kind === 'index') {
    if (request.backupTo) throw new UserError('--backup-to keeps data, and an index has none: its definition is printed and recorded instead');
    const { rows } = await pool.query(
      `SELECT c.oid, c.relname, pg_get_indexdef(c.oid) AS def FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = $1 AND c.relname IN ($2::text, lower($2::text))`,
      [t.oid, drop.index],
    );
    if (!rows.length) throw new UserError(`index ${drop.index} does not exist on ${table}`);
    return { kind: 'index', index: rows[0].relname, oid: rows[0].oid, definition: `${rows[0].def}` };
  }
  const columns = drop.columns.map((c) => {
    const found = t.columns.find((x) => x.name === c) ?? t.columns.find((x) => x.name === c.toLowerCase());
    if (!found) throw new UserError(`column ${c} does not exist in ${table}`);
    return found;
  });
  if (new Set(columns).size !== columns.length) throw new UserError('--drop-column names a column twice');
  if (columns.length === t.columns.length) throw new UserError(`--drop-column names every column of ${table}; use --drop-table`);
  return { kind: 'column', columns: columns.map((c) => c.name), attnums: columns.map((c) => c.attnum) };
}

function describe(d: Dropped): string {
  return d.kind === 'table' ? 'drops table' : d.kind === 'index' ? `drops index ${d.index}` : `drops column(s) ${d.columns.join(', ')}`;
}

async function freeBackupName(pool: pg.Pool, schema: string, input: string): Promise<string> {
  const target = parseTableName(input);
  if (target.schema !== schema && input.includes('.')) throw new UserError(`--backup-to ${input} must be in schema ${schema}, with the table`);
  const { rows } = await pool.query('SELECT to_regclass($1) IS NOT NULL AS e', [qualified(schema, target.name)]);
  if (rows[0].e === 't') throw new UserError(`--backup-to ${schema}.${target.name} already exists; drop it or choose another name`);
  return target.name;
}

/** The table's key and the dropped columns, types and all (CREATE TABLE AS ... WITH NO DATA), copied chunk by chunk, each chunk committed. */
function columnBackup(pool: pg.Pool, t: TableInfo, columns: string[], backup: string): ColumnBackup {
  if (!t.key) throw new UserError(`${t.noKeyReason}; or contract without --backup-to`);
  const key = t.key.columns;
  if (key.some((k) => columns.includes(k))) throw new UserError(`column(s) ${key.filter((k) => columns.includes(k)).join(', ')} are the table's key (${t.key.index}); a contract step does not drop keys`);
  const source = qualified(t.schema, t.name);
  const target = qualified(t.schema, backup);
  const list = [...key, ...columns].map(ident).join(', ');
  const keys = new KeysetSql(dialect, key);
  return {
    table: `${t.schema}.${backup}`,
    create: () =>
      inTransaction(pool, async (client) => {
        await client.query(`CREATE TABLE ${target} AS SELECT ${list} FROM ${source} WITH NO DATA`);
        await client.query(`ALTER TABLE ${target} ADD PRIMARY KEY (${key.map(ident).join(', ')})`);
      }),
    nextBoundary: (after, rows) => nextKey(pool, source, keys, after, rows),
    async copyRange(range) {
      const w = keys.range(range);
      const result = await pool.query(`INSERT INTO ${target} (${list}) SELECT ${list} FROM ${source} WHERE ${w.sql}`, w.params);
      return result.rowCount ?? 0;
    },
    async remove() {
      await pool.query(`DROP TABLE IF EXISTS ${target}`);
    },
  };
}

/** One statement, waiting at most `ms` for each lock it needs (55P03 becomes LockTimeoutError), on a session of its own. */
async function withLockTimeout(pool: pg.Pool, sql: string, ms: number): Promise<void> {
  const client = await pool.connect();
  let failure: Error | undefined;
  try {
    await client.query(`SET lock_timeout = ${Math.max(1, Math.round(ms))}`);
    await client.query(sql);
    await client.query('RESET lock_timeout');
  } catch (error) {
    failure = error as Error;
    throw asLockTimeout(error, 'the DROP');
  } finally {
    // Released with its error, the client is discarded: its lock_timeout is not lent out.
    client.release(failure);
  }
}
