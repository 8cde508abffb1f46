import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import mysql from 'mysql2/promise';
import { createMysqlEngine } from '../../src/engines/mysql/index.js';
import { migrate, type MigrateOptions } from '../../src/core/runner.js';
import type { MigrationRequest } from '../../src/core/types.js';

export function mysqlUrl(): string {
  const url = process.env.SHADOWCUT_MYSQL_URL;
  if (!url) throw new Error('SHADOWCUT_MYSQL_URL is not set; the vitest global setup starts the servers');
  return url;
}

/** A pool that keeps values exact, like shadowcut's own connections. */
export function adminPool(): mysql.Pool {
  const u = new URL(mysqlUrl());
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
  });
}

export async function migrateMysql(table: string, alter: string, options: Partial<MigrateOptions> = {}, request: Omit<MigrationRequest, 'url' | 'table' | 'alter'> = {}) {
  const engine = await createMysqlEngine(mysqlUrl());
  try {
    return await migrate(engine, { url: mysqlUrl(), table, alter, ...request }, { execute: true, ...options });
  } finally {
    await engine.close();
  }
}

const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

/** Runs the built CLI as an operator would. */
export function runCli(args: string[], url = mysqlUrl()) {
  const r = spawnSync(process.execPath, [cli, ...args.map((a) => a.replace('$URL', url))], { encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Helper tables shadowcut would leave behind if it misbehaved. */
export async function helperTables(db: mysql.Pool, table: string): Promise<string[]> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    "SELECT TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (?, ?)",
    [`${table}__new`, `${table}__old`],
  );
  return rows.map((r) => String(r.t));
}

/** CREATE TABLE text without the name and AUTO_INCREMENT counter, for schema equality. */
export async function schemaOf(db: mysql.Pool, table: string): Promise<string> {
  const [[row]] = await db.query<mysql.RowDataPacket[]>(`SHOW CREATE TABLE \`${table}\``);
  return String(row['Create Table']).replace(/^CREATE TABLE `[^`]+`/, 'CREATE TABLE t').replace(/ AUTO_INCREMENT=\d+/, '');
}

/**
 * Rows of `a` with no identical row in `b` and vice versa, comparing every column NULL-safely
 * (so NULL differs from a default, and '' from NULL). Returns up to 20 as `table:key`; empty means equal.
 */
export async function differences(db: mysql.Pool, a: string, b: string, key: string[] = ['id']): Promise<string[]> {
  const [cols] = await db.query<mysql.RowDataPacket[]>(
    'SELECT COLUMN_NAME c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
    [a],
  );
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
