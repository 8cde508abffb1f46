import { spawnSync } from 'node:child_process';
import mysql from 'mysql2/promise';
import { sleep } from '../../src/core/engine/retry/backoff.js';
import { createMysqlEngine } from '../../src/engines/mysql/index.js';
import { migrate, type MigrateOptions } from '../../src/core/migrate/runner.js';
import type { MigrationRequest } from '../../src/core/engine/types.js';
import { cli, cliAsync, type CliRun } from './cli.js';
import { serverUrl, withDatabase, type Database, type Replica, type ServerChoice } from './database.js';

export const mysqlUrl = () => serverUrl('SHADOWCUT_MYSQL_URL');
export const mysqlReplicaUrl = () => serverUrl('SHADOWCUT_MYSQL_REPLICA_URL');
/** A MariaDB as it comes: no binlog, and a user with a table owner's privileges only. */
export const mysqlPlainUrl = () => serverUrl('SHADOWCUT_MYSQL_PLAIN_URL');

/**
 * Reads INNODB_TRX through `query` every `everyMs` until the returned stop is called: InnoDB refills
 * that cache only once nobody has read it for 100 ms, so every session's listing stays as it was when
 * this began (as a monitor polling it would keep it).
 */
export function keepTrxListOld(query: (sql: string) => Promise<unknown>, everyMs: number): () => Promise<void> {
  let polling = true;
  const polls = (async () => {
    while (polling) {
      await query('SELECT COUNT(*) FROM information_schema.INNODB_TRX');
      await sleep(everyMs);
    }
  })();
  return () => {
    polling = false;
    return polls;
  };
}

/** A pool that keeps values exact, like shadowcut's own connections. */
export function adminPool(url = mysqlUrl(), extra: mysql.PoolOptions = {}): mysql.Pool {
  const u = new URL(url);
  return mysql.createPool({
    host: u.hostname,
    port: Number(u.port),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: u.pathname.slice(1),
    connectionLimit: 8,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    timezone: 'Z',
    multipleStatements: true,
    ...extra,
  });
}

export async function migrateMysql(
  table: string,
  alter: string,
  options: Partial<MigrateOptions> = {},
  request: Omit<MigrationRequest, 'url' | 'table' | 'alter'> = {},
) {
  const engine = await createMysqlEngine(mysqlUrl());
  try {
    return await migrate(engine, { url: mysqlUrl(), table, alter, ...request }, { execute: true, forceCopy: true, ...options });
  } finally {
    await engine.close();
  }
}

/** Runs the built CLI as an operator would. */
export function runCli(args: string[], url = mysqlUrl()) {
  const r = spawnSync(process.execPath, [cli, ...args.map((a) => a.replace('$URL', url))], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** As runCli, without blocking this process: its own sessions (a test's writers) go on meanwhile. */
export function runCliAsync(args: string[], url = mysqlUrl(), env: Record<string, string> = {}): Promise<CliRun> {
  return cliAsync(args, url, env);
}

/** Helper tables shadowcut would leave behind if it misbehaved. */
export async function helperTables(db: mysql.Pool, table: string): Promise<string[]> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    'SELECT TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?)',
    [`${table}__new`, `${table}__old`],
  );
  return rows.map((r) => String(r.t));
}

/** CREATE TABLE text without the name and AUTO_INCREMENT counter, for schema equality. */
export async function schemaOf(db: mysql.Pool, table: string): Promise<string> {
  const [[row]] = await db.query<mysql.RowDataPacket[]>(`SHOW CREATE TABLE \`${table}\``);
  return String(row['Create Table'])
    .replace(/^CREATE TABLE `[^`]+`/, 'CREATE TABLE t')
    .replace(/ AUTO_INCREMENT=\d+/, '');
}

/**
 * Rows of `a` with no identical row in `b` and vice versa, comparing every column NULL-safely
 * (so NULL differs from a default, and '' from NULL). Returns up to 20 as `table:key`; empty means equal.
 */
export async function differences(db: mysql.Pool, a: string, b: string, named?: string[]): Promise<string[]> {
  const [cols] = await db.query<mysql.RowDataPacket[]>(
    'SELECT COLUMN_NAME c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [a],
  );
  // Rows are shown by these columns: `id` where the table has one, else its first column.
  const key = named ?? (cols.some((r) => r.c === 'id') ? ['id'] : [String(cols[0].c)]);
  const same = cols.map((r) => `x.\`${r.c}\` <=> y.\`${r.c}\``).join(' AND ');
  const missing = async (from: string, to: string) => {
    const [rows] = await db.query<mysql.RowDataPacket[]>(
      `SELECT CONCAT_WS(',', ${key.map((k) => `HEX(x.\`${k}\`)`).join(', ')}) k FROM \`${from}\` x ` +
        `WHERE NOT EXISTS (SELECT 1 FROM \`${to}\` y WHERE ${same}) LIMIT 10`,
    );
    return rows.map((r) => `${from}:${r.k}`);
  };
  return [...(await missing(a, b)), ...(await missing(b, a))];
}

export async function tableChecksum(db: mysql.Pool, table: string): Promise<string> {
  const [[r]] = await db.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE \`${table}\` EXTENDED`);
  return String(r.Checksum);
}

/**
 * The MariaDB primary as a fixture `Database`, on a `shared` pool if given (then left open by
 * close()); with `{ plain: true }` the plain MariaDB, which has no replica.
 */
export function mysqlDatabase(from?: mysql.Pool | ServerChoice): Database {
  const plain = from !== undefined && 'plain' in from;
  const other = from !== undefined && 'database' in from ? from.database : undefined;
  const given = from !== undefined && 'url' in from ? from.url : undefined;
  const shared = plain || other !== undefined || given !== undefined ? undefined : (from as mysql.Pool | undefined);
  const url = plain ? mysqlPlainUrl : other !== undefined ? () => withDatabase(mysqlUrl(), other) : given !== undefined ? () => given : mysqlUrl;
  let own: mysql.Pool | null = null;
  let replicaPool: mysql.Pool | null = null;
  const db = () => shared ?? (own ??= adminPool(url()));
  const replicaConnections = () => (replicaPool ??= mysql.createPool({ uri: mysqlReplicaUrl(), connectionLimit: 2 }));
  const run = async (on: mysql.Pool | mysql.PoolConnection, sql: string, values?: unknown[]) => {
    const [rows] = await on.query({ sql, values, rowsAsArray: true });
    return Array.isArray(rows) ? (rows as unknown[][]) : [];
  };
  const names = async (sql: string, values: unknown[]) => (await run(db(), sql, values)).map((r) => String(r[0])).sort();
  const replica: Replica = {
    get url() {
      return mysqlReplicaUrl();
    },
    pause: async () => void (await replicaConnections().query('STOP SLAVE SQL_THREAD')),
    async resume() {
      await replicaConnections().query('START SLAVE SQL_THREAD');
      const [[primary]] = await db().query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS pos');
      const [[waited]] = await replicaConnections().query<mysql.RowDataPacket[]>('SELECT MASTER_GTID_WAIT(?, 60) AS r', [primary.pos]);
      if (Number(waited.r) !== 0) throw new Error('the replica did not catch up within 60 s');
    },
  };
  return {
    kind: 'mysql',
    get url() {
      return url();
    },
    query: (sql, values) => run(db(), sql, values),
    param: () => '?',
    async session() {
      const conn = await db().getConnection();
      return { query: (sql, values) => run(conn, sql, values), release: (destroy) => (destroy ? conn.destroy() : conn.release()) };
    },
    engine: () => createMysqlEngine(url()),
    async drop(...tables) {
      const all = tables.flatMap((t) => [t, `${t}__new`, `${t}__old`, `${t}__state`, `${t}__hb`, `${t}__log`]);
      await db().query(`DROP TABLE IF EXISTS ${all.map((t) => `\`${t}\``).join(', ')}`);
    },
    series: (rows) => `SELECT seq AS g FROM seq_1_to_${rows}`,
    differences: (a, b) => differences(db(), a, b),
    schema: (table) => schemaOf(db(), table),
    helpers: (table) =>
      names('SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ?', [
        `${table.replaceAll('_', '\\_')}\\_\\_%`,
      ]),
    indexes: async (table) => [...new Set((await run(db(), `SHOW INDEX FROM \`${table}\``)).map((r) => String(r[2])))].sort(),
    killSession: async (id) => void (await db().query(`KILL ${Number(id)}`)),
    cli: (args) => runCli(args, url()),
    cliAsync: (args) => runCliAsync(args, url()),
    get replica() {
      if (plain) throw new Error('the plain MariaDB has no replica');
      return replica;
    },
    async close() {
      await own?.end();
      await replicaPool?.end();
    },
  };
}
