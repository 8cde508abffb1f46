import { afterAll, expect } from 'vitest';
import { migrate, type MigrateOptions } from '../../src/core/runner.js';
import type { Engine, MigrationRequest } from '../../src/core/types.js';
import { mysqlDatabase } from './mysql.js';
import { postgresDatabase } from './pg.js';

/**
 * One shape for both engines, so a scenario is written once and run for each with
 * `describe.each(databases)`. SQL in a scenario sticks to what both dialects accept; where they
 * differ (column types, fills, ALTERs) the scenario keeps a small table of each engine's words.
 */
export interface Database {
  readonly kind: 'mysql' | 'postgres';
  readonly url: string;
  /** Runs one statement; rows as arrays. */
  query(sql: string, values?: unknown[]): Promise<unknown[][]>;
  /** The n-th (from 1) bound value's placeholder: `?` or `$n`. */
  param(n: number): string;
  /** A connection of its own, for transactions (the mirror workload's writers). */
  session(): Promise<Session>;
  engine(): Promise<Engine>;
  /** The table, and what a migration of it leaves (`__new`, `__old`, `__state`, `__hb`). */
  drop(...tables: string[]): Promise<void>;
  /** A subquery of one column `g` counting 1..rows, to fill tables with. */
  series(rows: number): string;
  /**
   * Rows of `a` that `b` lacks, then rows of `b` that `a` lacks (up to 10 each, as `table:row`),
   * every column compared exactly; empty means equal.
   */
  differences(a: string, b: string): Promise<string[]>;
  /** The table's definition without its name, to compare two tables'. */
  schema(table: string): Promise<string>;
  /** Every object a run on `table` creates and may leave behind (tables `table__*`; PostgreSQL's slot and publication), sorted. */
  helpers(table: string): Promise<string[]>;
  /** The names of the table's indexes, sorted. */
  indexes(table: string): Promise<string[]>;
  /** Ends a server session by its id (MySQL connection id, PostgreSQL backend pid), as a network cut would. */
  killSession(id: number): Promise<void>;
  /** Runs the built CLI as an operator would; `$URL` in an argument is this database's URL. */
  cli(args: string[]): { code: number | null; stdout: string; stderr: string };
  /** As `cli`, without blocking the test's own sessions: for a run while the test's writers write. */
  cliAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** The replica (MariaDB) or standby (PostgreSQL) that follows this server. */
  readonly replica: Replica;
  close(): Promise<void>;
}

export interface Session {
  query(sql: string, values?: unknown[]): Promise<unknown[][]>;
  release(): void;
}

export interface Replica {
  readonly url: string;
  /** Stops applying what the primary writes (the SQL thread, WAL replay), so its lag grows. */
  pause(): Promise<void>;
  /** Applies again, and returns once everything the primary wrote so far is applied. */
  resume(): Promise<void>;
}

/**
 * Runs the core migrate() with a fresh engine (or the one given), as the CLI would. The suites that
 * use it test the copy, so it takes the copy (`forceCopy`) unless told `forceCopy: false`.
 */
export async function migrateOn(
  db: Database,
  table: string,
  alter: string,
  options: Partial<MigrateOptions> = {},
  { engine, request = {} }: { engine?: Engine; request?: Omit<MigrationRequest, 'url' | 'table' | 'alter'> } = {},
) {
  const own = engine ?? (await db.engine());
  try {
    return await migrate(own, { url: db.url, table, alter, ...request }, { execute: true, forceCopy: true, ...options });
  } finally {
    if (!engine) await own.close();
  }
}

/**
 * A migrated table equals its mirror, which took the same writes and the native ALTER: the same
 * definition and the same rows; of what the run made, only the old table is left.
 */
export async function expectMirrored(db: Database, table: string, mirror: string): Promise<void> {
  expect(await db.schema(table)).toBe(await db.schema(mirror));
  expect(await db.differences(table, mirror)).toEqual([]);
  expect(await db.helpers(table)).toEqual([`${table}__old`]);
}

/**
 * `open()`'s database for the describe block this is called in: afterwards `tables` (and what runs
 * left of them) are dropped and its connections closed. Connections open on first use.
 */
export function useDatabase(open: () => Database, ...tables: string[]): Database {
  const db = open();
  afterAll(async () => {
    if (tables.length) await db.drop(...tables);
    await db.close();
  });
  return db;
}

export const databases = [
  { name: 'MariaDB', kind: 'mysql', open: () => mysqlDatabase() },
  { name: 'PostgreSQL', kind: 'postgres', open: () => postgresDatabase() },
] as const;
