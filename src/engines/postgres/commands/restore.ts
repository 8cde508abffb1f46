import type pg from 'pg';
import { UserError } from '../../../core/engine/errors.js';
import type { BackupColumn, RestoreTarget } from '../../../core/engine/ports/restore.js';
import { ident, parseTableName, qualified } from '../server/sql.js';
import { checkHelper, helperTransaction } from '../server/helper-tables.js';
import { pgTableIdentity } from '../server/identity.js';
import { withLockTimeout } from './contract.js';
import { refuseForeignWrites } from '../server/owner-code.js';

/** `shadowcut restore` on PostgreSQL: the table and the backup (in the table's schema) as pg_attribute describes them. */
export async function preparePgRestore(pool: pg.Pool, request: { table: string; backup: string }): Promise<RestoreTarget> {
  const { schema, name } = parseTableName(request.table);
  const given = parseTableName(request.backup);
  if (given.schema !== schema && request.backup.includes('.')) throw new UserError(`--from ${request.backup} must be in schema ${schema}, with the table`);
  const backup = given.name;
  const [table, copy, identity] = await Promise.all([relation(pool, schema, name), relation(pool, schema, backup), pgTableIdentity(pool, schema, backup)]);
  if (table) await refuseForeignWrites(pool, qualified(schema, name), 'restore');
  const source = qualified(schema, name);
  const target = qualified(schema, backup);
  return {
    table: `${schema}.${name}`,
    backup: `${schema}.${backup}`,
    tableColumns: table?.columns.map((c) => c.name) ?? null,
    backupColumns: copy?.columns ?? null,
    backupKey: copy?.key ?? [],
    backupRows: copy?.rows ?? 0,
    backupIdentity: identity,
    // Owned by the migrating role (and marked, since contract marks its backups), with nothing on it that runs code.
    checkOwn: () => helperTransaction(pool, (client) => checkHelper(client, schema, backup)).then(() => {}),
    sql: { table: source, tableAlias: ident(name), backup: target, ident },
    async addColumns(columns: BackupColumn[], lockTimeoutMs: number) {
      // NULL without a default: a catalog change, no rewrite.
      const alter = `ALTER TABLE ${source} ${columns.map((c) => `ADD COLUMN ${ident(c.name)} ${c.definition}`).join(', ')}`;
      await withLockTimeout(pool, alter, lockTimeoutMs, 'adding the column(s)');
      return 'ADD COLUMN, catalog only (no rewrite)';
    },
    renameBack: (lockTimeoutMs: number) => withLockTimeout(pool, `ALTER TABLE ${target} RENAME TO ${ident(name)}`, lockTimeoutMs, 'the rename'),
  };
}

/** A plain table's columns (type and, where it is not the type's, collation: the catalog's words), primary key and estimated rows; null when there is none. */
async function relation(pool: pg.Pool, schema: string, name: string): Promise<{ columns: BackupColumn[]; key: string[]; rows: number } | null> {
  const { rows } = await pool.query(
    `SELECT c.reltuples,
            (SELECT json_agg(json_build_object('name', a.attname, 'definition',
                      format_type(a.atttypid, a.atttypmod) ||
                      CASE WHEN a.attcollation <> 0 AND a.attcollation <> ty.typcollation
                           THEN ' COLLATE ' || quote_ident(cn.nspname) || '.' || quote_ident(co.collname) ELSE '' END) ORDER BY a.attnum)
               FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid
               LEFT JOIN pg_collation co ON co.oid = a.attcollation LEFT JOIN pg_namespace cn ON cn.oid = co.collnamespace
              WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
            (SELECT json_agg(a.attname ORDER BY k.ord) FROM pg_index i, unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
              WHERE i.indrelid = c.oid AND i.indisprimary) AS key
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [schema, name],
  );
  if (!rows.length) return null;
  const json = (v: unknown) => (v === null ? [] : typeof v === 'string' ? JSON.parse(v) : v);
  return { columns: json(rows[0].columns), key: json(rows[0].key), rows: Math.max(0, Math.round(Number(rows[0].reltuples))) };
}
