import type { Pool } from 'mysql2/promise';
import type { BackupColumn, RestoreTarget } from '../../../core/engine/ports/restore.js';
import { checkHelper } from '../server/helper-tables.js';
import { quickDdl } from '../server/lock.js';
import type { MysqlTarget } from '../server/target.js';
import { describeTable, tableExists, tableFacts } from '../schema/inspect.js';
import { parseTableName } from '../schema/plan.js';
import { ident, qualified } from '../server/sql.js';
import { backupIdentity } from './contract.js';
import { inPlace } from './in-place-alter.js';

interface Server {
  target: MysqlTarget;
  pool: Pool;
  flavor: 'mariadb' | 'mysql';
}

/** `shadowcut restore` on MySQL/MariaDB: the table and the backup as SHOW COLUMNS and SHOW INDEX describe them. */
export async function prepareMysqlRestore(server: Server, fold: (name: string) => string, request: { table: string; backup: string }): Promise<RestoreTarget> {
  const { pool, target } = server;
  const database = target.database;
  const table = parseTableName(fold(request.table), database);
  const backup = parseTableName(fold(request.backup), database);
  const [tableShape, backupShape] = await Promise.all([shapeOf(pool, database, table), shapeOf(pool, database, backup)]);
  const name = qualified(database, table);
  const copy = qualified(database, backup);
  return {
    table: `${database}.${table}`,
    backup: `${database}.${backup}`,
    tableColumns: tableShape?.columns.map((c) => c.name) ?? null,
    // The server's own words for the type, from its catalog: the backup was made with the dropped column's type and collation.
    backupColumns: backupShape?.columns.map((c) => ({ name: c.name, definition: `${c.type}${c.collation ? ` COLLATE ${c.collation}` : ''}` })) ?? null,
    backupKey: backupShape?.indexes.find((i) => i.name === 'PRIMARY')?.columns ?? [],
    backupRows: backupShape ? ((await tableFacts(pool, database, backup))?.estimatedRows ?? 0) : 0,
    backupIdentity: await backupIdentity(pool, server.flavor, database, backup),
    // MySQL keeps no owner: the mark and the absence of triggers prove a helper, and the identity the contract recorded this backup.
    checkOwn: () => checkHelper(pool, database, backup).then(() => {}),
    sql: { table: name, tableAlias: ident(table), backup: copy, ident },
    addColumns: (columns: BackupColumn[], lockTimeoutMs: number) =>
      inPlace(target, pool, `ALTER TABLE ${name} ${columns.map((c) => `ADD COLUMN ${ident(c.name)} ${c.definition} NULL`).join(', ')}`, lockTimeoutMs),
    renameBack: (lockTimeoutMs: number) => quickDdl(target, pool, `RENAME TABLE ${copy} TO ${name}`, lockTimeoutMs),
  };
}

async function shapeOf(pool: Pool, database: string, table: string) {
  return (await tableExists(pool, database, table)) ? describeTable(pool, database, table) : null;
}
