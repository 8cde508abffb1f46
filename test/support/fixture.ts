import { afterAll, expect } from 'vitest';
import { migrate, type MigrateOptions } from '../../src/core/migrate/runner.js';
import type { Engine, MigrationRequest } from '../../src/core/engine/types.js';
import { mysqlDatabase } from './mysql.js';
import { postgresDatabase } from './pg.js';
import type { Database } from './database.js';

export type { Database, Replica, Session } from './database.js';

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

/**
 * The servers as they come, for `describe.each(plainDatabases)`: no binlog, `wal_level=replica`, and
 * a login with a table owner's privileges (no replication, no superuser). They have no replica.
 */
export const plainDatabases = [
  { name: 'MariaDB (no binlog)', kind: 'mysql', open: () => mysqlDatabase({ plain: true }) },
  { name: 'PostgreSQL (wal_level=replica)', kind: 'postgres', open: () => postgresDatabase({ plain: true }) },
] as const;
