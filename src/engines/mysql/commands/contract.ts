import type { Pool, RowDataPacket } from 'mysql2/promise';
import { runChecks } from '../../../core/engine/checks/check.js';
import type { Contraction, ContractRequest } from '../../../core/engine/ports/contract.js';
import { UserError } from '../../../core/engine/errors.js';
import type { Dropped } from '../checks/contract/context.js';
import { contractChecks } from '../checks/contract/index.js';
import type { MysqlTarget } from '../server/target.js';
import { describeExisting, tableExists, type TableShape } from '../schema/inspect.js';
import { quickDdl } from '../server/lock.js';
import { parseTableName } from '../schema/plan.js';
import { columnBackup, dropWithBackup } from './contract-backup.js';
import { inPlace } from './in-place-alter.js';
import { ident, qualified } from '../server/sql.js';
import { innodbTableIdentity } from '../schema/innodb-ids.js';
import { galeraNode, galeraOsuRefusal } from '../server/galera-node.js';
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

/**
 * Galera (`server/galera-node.ts`): RSU would drop on one node only; a column's backup is made
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
