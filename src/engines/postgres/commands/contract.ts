import type pg from 'pg';
import { runChecks } from '../../../core/engine/checks/check.js';
import type { ColumnBackup, Contraction, ContractRequest } from '../../../core/engine/ports/contract.js';
import { LockTimeoutError, UserError } from '../../../core/engine/errors.js';
import { helperComment } from '../../../core/engine/helper-objects.js';
import { KeysetSql } from '../../../core/engine/keyset.js';
import type { Dropped } from '../checks/contract/context.js';
import { contractChecks } from '../checks/contract/index.js';
import { asLockTimeout, errorCode } from '../server/errors.js';
import { dialect, ident, isTrue, parseTableName, qualified } from '../server/sql.js';
import { inTransaction } from '../server/transactions.js';
import type { Client } from '../server/connect.js';
import { nextKey } from '../copy/copy.js';
import { inspectTable, type TableInfo } from '../schema/inspect.js';
import { pgTableIdentity } from '../server/identity.js';
import { dollarQuoted } from '../server/dollar-quote.js';
import { functionOwnerVerdict, giveToOwner, givenOwnerSql } from '../capture/owner-function.js';
import { refuseOwnerCode } from '../server/owner-code.js';
import { keyTypes } from '../server/key-types.js';
import { revokeFromOthers } from '../server/helper-tables.js';

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
  const backup =
    backupName && dropped.kind === 'column'
      ? columnBackup(pool, t, dropped.columns, backupName, t.key ? await keyTypes(pool, t.oid, t.key.columns) : [])
      : undefined;
  // The backup's copy reads the key and the dropped columns with our rights: their types' code is the owner's.
  if (backup)
    await refuseOwnerCode(pool, t.oid, [{ sql: backup.reads, what: "the backup's copy", compares: false }], {
      columns: backup.columns,
      keyColumns: t.key?.columns ?? [],
    });
  if (backup) summary.push(`the dropped data is kept in ${backup.table} first`);
  if (backupName && dropped.kind === 'table') summary.push(`${schema}.${name} is renamed to ${schema}.${backupName} instead of dropped`);
  return {
    table: `${schema}.${name}`,
    summary,
    indexDefinition,
    backup,
    checks: async () => [
      ...(await runChecks(contractChecks, { pool, t, dropped })),
      // The backup's capture function is given to the table's owner.
      ...(backup ? [await functionOwnerVerdict(pool, Number(t.oid), `${schema}.${name}`)] : []),
    ],
    keptIdentity:
      backupName && dropped.kind !== 'index'
        ? async () => {
            const identity = await pgTableIdentity(pool, schema, dropped.kind === 'table' ? name : backupName);
            if (identity === null) throw new UserError(`${schema}.${dropped.kind === 'table' ? name : backupName} is gone: nothing to keep`);
            return identity;
          }
        : undefined,
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
      const alter = `ALTER TABLE ${table} ${dropped.columns.map((c) => `DROP COLUMN ${ident(c)}`).join(', ')}`;
      if (!backup) {
        await withLockTimeout(pool, alter, lockTimeoutMs);
        return 'DROP COLUMN, catalog only (no rewrite)';
      }
      // The backup's capture goes in the DROP's own transaction, under its lock: the backup is the data at the DROP.
      await inTransaction(pool, async (client) => {
        await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
        await client.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
        await backup.dropCapture(client);
        await backup.takeBackRights(client);
        await client.query(alter);
      }).catch((error) => {
        throw asLockTimeout(error, 'the DROP');
      });
      return 'DROP COLUMN, catalog only (no rewrite), with the backup made final under its lock';
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

/** A backup chunk waits this long for a row a writer holds, then is retried (rolled back). */
const CHUNK_LOCK_TIMEOUT = '2s';

/** A column backup and the DROP that makes it final, for the table's `drop`. */
interface PgColumnBackup extends ColumnBackup {
  /** What a backup chunk reads, and the columns it reads. */
  reads: string;
  columns: string[];
  /** In the DROP's transaction, under its ACCESS EXCLUSIVE lock: the capture goes, then the columns. */
  dropCapture(client: Client): Promise<void>;
  /** Then the table owner's rights on the backup, which only the capture needed: the backup is final. */
  takeBackRights(client: Client): Promise<void>;
}

/**
 * The table's key and the dropped columns, types and all (CREATE TABLE AS ... WITH NO DATA), kept
 * equal to the table by a capture trigger until the DROP, and filled chunk by chunk.
 * - The trigger (AFTER each row) writes the new row's values into the backup (and deletes the old
 *   key's row when the key moved, or the row was deleted), in the writer's transaction; SECURITY
 *   DEFINER of the table's owner (`../capture/owner-function.ts`), so writers need no rights on
 *   the backup, and the table's code it evaluates (the key's equality) runs with the owner's
 *   rights; ENABLE ALWAYS, so writes of sessions with session_replication_role = replica (logical
 *   subscribers, some loaders) reach the backup too.
 * - A chunk reads with FOR SHARE: it waits for a writer of its rows and reads their latest committed
 *   version (READ COMMITTED re-reads a row changed after its snapshot, and skips a deleted one), and
 *   overwrites what the trigger wrote for them. A writer that comes after waits for the chunk's
 *   commit, and its trigger then writes over it. Either way the backup row is the latest committed.
 * - CREATE TRIGGER waits for every transaction that wrote the table to end (its lock conflicts with
 *   theirs), so no write before the capture commits after the chunk that read its row.
 * - The DROP's transaction locks the table ACCESS EXCLUSIVE, drops the trigger and the columns: no
 *   write falls between the backup's last and the DROP.
 */
/** `types`: the key's, which the keyset's parameters are typed with (server/key-types.ts). */
function columnBackup(pool: pg.Pool, t: TableInfo, columns: string[], backup: string, types: string[]): PgColumnBackup {
  if (!t.key) throw new UserError(`${t.noKeyReason}; or contract without --backup-to`);
  const key = t.key.columns;
  if (key.some((k) => columns.includes(k)))
    throw new UserError(
      `column(s) ${key.filter((k) => columns.includes(k)).join(', ')} are the table's key (${t.key.index}); a contract step does not drop keys`,
    );
  const source = qualified(t.schema, t.name);
  const target = qualified(t.schema, backup);
  const kept = [...key, ...columns];
  const list = kept.map(ident).join(', ');
  const keyList = key.map(ident).join(', ');
  const overwrite = columns.map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`).join(', ');
  const keys = new KeysetSql(dialect, key, false, types);
  // One contract per table at a time (the run claim): the table's oid names its capture.
  const fn = qualified(t.schema, `shadowcut_backup_capture_${t.oid}`);
  const trigger = ident('shadowcut_backup_capture');
  // SECURITY DEFINER runs as the table's owner for whoever fires it: only this table's trigger may,
  // or a role that can make a table and a trigger would write (or delete) backup rows of its choosing.
  // The no-op left by a removal needs no guard, and has no words a later contract's trigger check
  // could take for a column's name.
  const guard = `IF TG_RELID <> ${Number(t.oid)}::oid THEN RAISE EXCEPTION 'shadowcut: capture of %', ${Number(t.oid)}; END IF;`;
  const body = (sql: string) =>
    `CREATE OR REPLACE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS ${dollarQuoted(`
BEGIN
${sql ? `${guard}\n${sql}` : ''}
RETURN NULL;
END `)}`;
  // Exactly what the capture's body does on the backup: deletes by key and upserts (reading EXCLUDED needs SELECT).
  const rights = [`SELECT (${list}), INSERT (${list}), UPDATE (${columns.map(ident).join(', ')}), DELETE ON ${target}`];
  const capture = body(
    `IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND (${key.map((k) => `OLD.${ident(k)}`).join(', ')}, NULL) IS DISTINCT FROM (${key.map((k) => `NEW.${ident(k)}`).join(', ')}, NULL)) THEN DELETE FROM ${target} WHERE ${key.map((k) => `${ident(k)} = OLD.${ident(k)}`).join(' AND ')}; END IF;
IF TG_OP <> 'DELETE' THEN INSERT INTO ${target} (${list}) VALUES (${kept.map((c) => `NEW.${ident(c)}`).join(', ')}) ON CONFLICT (${keyList}) DO UPDATE SET ${overwrite}; END IF;`,
  );
  let made = false;
  const captureLeft = async (client: Client) =>
    (await client.query('SELECT 1 FROM pg_trigger WHERE tgrelid = $1 AND tgname = $2', [t.oid, 'shadowcut_backup_capture'])).rows.length > 0;
  const dropCapture = async (client: Client) => {
    await client.query(`DROP TRIGGER IF EXISTS ${trigger} ON ${source}`);
    await client.query(`DROP FUNCTION IF EXISTS ${fn}()`);
  };
  return {
    table: `${t.schema}.${backup}`,
    create: (lockTimeoutMs) =>
      inTransaction(pool, async (client) => {
        await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
        await client.query(`CREATE TABLE ${target} AS SELECT ${list} FROM ${source} WITH NO DATA`);
        // Restore reads the backup back into the table: nobody but shadowcut (and, until the DROP, the owner's capture) writes it.
        await revokeFromOthers(client, target);
        await client.query(`ALTER TABLE ${target} ADD PRIMARY KEY (${keyList})`);
        // With the owner, the mark restore checks before it reads the backup back.
        await client.query(`COMMENT ON TABLE ${target} IS '${helperComment(`contract backup of ${t.schema}.${t.name}`).replace(/'/g, "''")}'`);
        await client.query(capture);
        // Functions are executable by PUBLIC when made, and CREATE TRIGGER needs only that right.
        await client.query(`REVOKE ALL ON FUNCTION ${fn}() FROM PUBLIC`);
        await giveToOwner(client, `${fn}()`, Number(t.oid), rights);
        // A capture an earlier run could not remove (its function made a no-op) is replaced; looked
        // for first, because DROP TRIGGER locks out readers too.
        if (await captureLeft(client)) await client.query(`DROP TRIGGER ${trigger} ON ${source}`);
        await client.query(`CREATE TRIGGER ${trigger} AFTER INSERT OR UPDATE OR DELETE ON ${source} FOR EACH ROW EXECUTE FUNCTION ${fn}()`);
        await client.query(`ALTER TABLE ${source} ENABLE ALWAYS TRIGGER ${trigger}`);
      }).then(
        () => {
          made = true;
        },
        (error) => {
          throw asLockTimeout(error, "the backup's capture");
        },
      ),
    nextBoundary: (after, rows) => nextKey(pool, source, keys, after, rows),
    copyRange(range) {
      const w = keys.range(range);
      return inTransaction(pool, async (client) => {
        // A chunk waiting long for a row would keep writers of the rows it already holds waiting too.
        await client.query(`SET LOCAL lock_timeout = '${CHUNK_LOCK_TIMEOUT}'`);
        const result = await client.query(
          `INSERT INTO ${target} (${list}) SELECT ${list} FROM ${source} WHERE ${w.sql} FOR SHARE ON CONFLICT (${keyList}) DO UPDATE SET ${overwrite}`,
          w.params,
        );
        return result.rowCount ?? 0;
      }).catch((error) => {
        // 55P03: lock_timeout; 40P01: chosen as a deadlock's victim. Rolled back either way.
        if (errorCode(error) === '55P03' || errorCode(error) === '40P01') throw new LockTimeoutError(`a backup chunk's row locks: ${(error as Error).message}`);
        throw error;
      });
    },
    async remove(lockTimeoutMs) {
      // The backup and its capture are made in one transaction: until it committed, nothing is ours to remove.
      if (!made) return;
      // Writes stop reaching the backup at once (replacing a function takes no lock on the table)...
      await pool.query(body(''));
      await withLockTimeout(pool, `DROP TABLE IF EXISTS ${target}`, lockTimeoutMs);
      // ...and the trigger, which needs the table's lock, goes when it can; a no-op one left is replaced by the next run.
      await inTransaction(pool, async (client) => {
        await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
        await dropCapture(client);
      }).catch((error) => {
        throw asLockTimeout(error, `removing trigger ${t.schema}.${t.name}.shadowcut_backup_capture (it does nothing now)`);
      });
    },
    dropCapture,
    reads: `SELECT ${list} FROM ${source}`,
    columns: kept,
    async takeBackRights(client) {
      const { rows } = await client.query(
        `SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE oid = $1 AND relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)`,
        [t.oid],
      );
      if (rows.length) await client.query(`REVOKE ALL ON ${target} FROM ${ident(String(rows[0].owner))}`);
    },
  };
}

/** One statement, waiting at most `ms` for each lock it needs (55P03 becomes LockTimeoutError), on a session of its own. */
export async function withLockTimeout(pool: pg.Pool, sql: string, ms: number, what = 'the DROP'): Promise<void> {
  const client = await pool.connect();
  let failure: Error | undefined;
  try {
    await client.query(`SET lock_timeout = ${Math.max(1, Math.round(ms))}`);
    await client.query(sql);
    await client.query('RESET lock_timeout');
  } catch (error) {
    failure = error as Error;
    throw asLockTimeout(error, what);
  } finally {
    // Released with its error, the client is discarded: its lock_timeout is not lent out.
    client.release(failure);
  }
}

/**
 * The capture a contract left on `schema.name` when it died while filling its backup (the trigger
 * and its function, named after the table's oid, given to the table's owner by us): for `shadowcut
 * cleanup`. The backup table itself is the user's data and stays.
 */
export async function contractCapture(pool: pg.Pool, schema: string, name: string): Promise<{ fn: string; drop(): Promise<void> } | null> {
  const table = qualified(schema, name);
  // Ours by its function (name and owner), never by the trigger's name alone, which any writer of the table could take.
  const { rows } = await pool.query(
    `SELECT c.oid, EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'shadowcut_backup_capture' AND t.tgfoid = p.oid) AS triggered
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_proc p ON p.pronamespace = n.oid AND p.proname = 'shadowcut_backup_capture_' || c.oid
      WHERE n.nspname = $1 AND c.relname = $2 AND ${givenOwnerSql('p.proowner', '$3')}`,
    [schema, name, table],
  );
  if (!rows.length) return null;
  const fn = qualified(schema, `shadowcut_backup_capture_${String(rows[0].oid)}`);
  const triggered = isTrue(rows[0].triggered);
  return {
    fn,
    drop: () =>
      inTransaction(pool, async (client) => {
        if (triggered) await client.query(`DROP TRIGGER shadowcut_backup_capture ON ${table}`);
        await client.query(`DROP FUNCTION IF EXISTS ${fn}()`);
      }),
  };
}
