import type { Engine } from '../../src/core/engine/types.js';

/** A server's URL as the vitest global setup (or the caller) put it in the environment. */
export function serverUrl(variable: string): string {
  const url = process.env[variable];
  if (!url) throw new Error(`${variable} is not set; the vitest global setup starts the servers`);
  return url;
}

/**
 * Which server of an engine a fixture opens: the one with the change stream (default), the plain
 * one, as it comes, or another database of the one with the change stream (a fleet's targets).
 */
export type ServerChoice = { plain: true } | { database: string } | { url: string };

/** `url` naming another database of the same server. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

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
  /** The replica (MariaDB) or standby (PostgreSQL) that follows this server. The plain servers have none: reading it throws. */
  readonly replica: Replica;
  close(): Promise<void>;
}

export interface Session {
  query(sql: string, values?: unknown[]): Promise<unknown[][]>;
  /** Back to the pool; with `destroy`, closed instead (a connection the server has ended). */
  release(destroy?: boolean): void;
}

export interface Replica {
  readonly url: string;
  /** Stops applying what the primary writes (the SQL thread, WAL replay), so its lag grows. */
  pause(): Promise<void>;
  /** Applies again, and returns once everything the primary wrote so far is applied. */
  resume(): Promise<void>;
}
