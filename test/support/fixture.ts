import type mysql from 'mysql2/promise';
import type pg from 'pg';
import { migrate, type MigrateOptions } from '../../src/core/runner.js';
import type { Engine } from '../../src/core/types.js';
import { createMysqlEngine } from '../../src/engines/mysql/index.js';
import { createPostgresEngine } from '../../src/engines/postgres/index.js';
import { adminPool, differences, mysqlUrl } from './mysql.js';
import { pgPool, pgTextDifferences, pgUrl } from './pg.js';

/**
 * One shape for both engines, so a scenario is written once and run for each with
 * `describe.each(databases)`. SQL in a scenario sticks to what both dialects accept.
 */
export interface Database {
  readonly kind: 'mysql' | 'postgres';
  readonly url: string;
  /** Runs one statement; rows as arrays of the server's text. */
  query(sql: string): Promise<unknown[][]>;
  engine(): Promise<Engine>;
  /** The table, and what a migration of it leaves (`__new`, `__old`, the checkpoint). */
  drop(...tables: string[]): Promise<void>;
  /** A subquery of one column `g` counting 1..rows, to fill tables with. */
  series(rows: number): string;
  /** Rows of `a` that `b` lacks plus rows of `b` that `a` lacks, every column compared exactly. */
  differences(a: string, b: string): Promise<number>;
  /** Ends a server session by its id (MySQL connection id, PostgreSQL backend pid), as a network cut would. */
  killSession(id: number): Promise<void>;
  close(): Promise<void>;
}

/** Runs the core migrate() with a fresh engine, as the CLI would. */
export async function migrateOn(db: Database, table: string, alter: string, options: Partial<MigrateOptions> = {}, engine?: Engine) {
  const own = engine ?? (await db.engine());
  try {
    return await migrate(own, { url: db.url, table, alter }, { execute: true, ...options });
  } finally {
    if (!engine) await own.close();
  }
}

const helpers = (t: string) => [t, `${t}__new`, `${t}__old`, `${t}__state`];

function openMysql(): Database {
  let pool: mysql.Pool | null = null;
  const db = () => (pool ??= adminPool());
  return {
    kind: 'mysql',
    get url() {
      return mysqlUrl();
    },
    async query(sql) {
      const [rows] = await db().query({ sql, rowsAsArray: true });
      return Array.isArray(rows) ? (rows as unknown[][]) : [];
    },
    engine: () => createMysqlEngine(mysqlUrl()),
    async drop(...tables) {
      await db().query(`DROP TABLE IF EXISTS ${tables.flatMap(helpers).map((t) => `\`${t}\``).join(', ')}`);
    },
    series: (rows) => `SELECT seq AS g FROM seq_1_to_${rows}`,
    differences: async (a, b) => (await differences(db(), a, b)).length,
    killSession: async (id) => void (await db().query(`KILL ${Number(id)}`)),
    close: async () => pool?.end(),
  };
}

function openPostgres(): Database {
  let pool: pg.Pool | null = null;
  const db = () => (pool ??= pgPool());
  return {
    kind: 'postgres',
    get url() {
      return pgUrl();
    },
    async query(sql) {
      const { rows } = await db().query({ text: sql, rowMode: 'array' });
      return rows as unknown[][];
    },
    engine: () => createPostgresEngine(pgUrl()),
    async drop(...tables) {
      await db().query(`DROP TABLE IF EXISTS ${tables.flatMap(helpers).join(', ')} CASCADE`);
    },
    series: (rows) => `SELECT generate_series(1, ${rows}) AS g`,
    async differences(a, b) {
      const { onlyA, onlyB } = await pgTextDifferences(db(), a, b);
      return onlyA + onlyB;
    },
    killSession: async (id) => void (await db().query('SELECT pg_terminate_backend($1)', [id])),
    close: async () => pool?.end(),
  };
}

export const databases = [
  { name: 'MariaDB', open: openMysql },
  { name: 'PostgreSQL', open: openPostgres },
];
