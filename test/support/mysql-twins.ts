import type mysql from 'mysql2/promise';
import { expect } from 'vitest';
import { migrate, type MigrateOptions } from '../../src/core/migrate/runner.js';
import type { Engine } from '../../src/core/engine/types.js';
import { createMysqlEngine } from '../../src/engines/mysql/index.js';
import { withDatabase } from './database.js';
import { catalogDifferences } from './mysql-catalog-oracle.js';
import { mysqlUrl } from './mysql.js';

/** What shadowcut documents it leaves behind after a run: not compared. */
const LEFTOVER = /(__old|^_.+_old|^shadowcut_history)$/;

/**
 * Two databases set up alike on the MariaDB primary: shadowcut migrates a table of the first, the
 * second (the twin) takes the same writes and the server's own ALTER, and the two are then compared
 * as whole databases: the catalog oracle (`mysql-catalog-oracle.ts`) and every table's rows, each
 * column as a value and as bytes.
 */
export class MysqlTwins {
  readonly twin: string;

  constructor(
    private readonly root: mysql.Pool,
    readonly name: string,
  ) {
    this.twin = `${name}_twin`;
  }

  url(): string {
    return withDatabase(mysqlUrl(), this.name);
  }

  async fresh(): Promise<void> {
    for (const db of [this.name, this.twin]) await this.root.query(`DROP DATABASE IF EXISTS ${db}; CREATE DATABASE ${db} CHARACTER SET utf8mb4`);
  }

  async drop(): Promise<void> {
    await this.root.query(`DROP DATABASE IF EXISTS ${this.name}; DROP DATABASE IF EXISTS ${this.twin}`);
  }

  /** Runs the statements in each database, in a session of its own (so session settings stay in it). */
  async inBoth(statements: string[]): Promise<void> {
    for (const db of [this.name, this.twin]) await this.inDatabase(db, statements);
  }

  async inDatabase(db: string, statements: string[]): Promise<void> {
    const conn = await this.root.getConnection();
    try {
      await conn.query(`USE ${db}`);
      for (const s of statements) await conn.query(s);
    } finally {
      conn.destroy(); // its session settings go with it
    }
  }

  /**
   * shadowcut migrates `table` (the copy unless `options` says otherwise) while `writes` are made
   * to it once the copy is done, so they reach the new table through the change stream; the twin
   * takes the same writes, then the native ALTER. `engine` wraps the real one (a test's seam).
   */
  async migrate(
    table: string,
    alter: string,
    { writes = [], options = {}, engine }: { writes?: string[]; options?: Partial<MigrateOptions>; engine?: (e: Engine) => Engine } = {},
  ) {
    const real = await createMysqlEngine(this.url());
    const hook = async (event: string) => {
      if (event === 'before-cutover') await this.inDatabase(this.name, writes);
    };
    try {
      return await migrate(engine ? engine(real) : real, { url: this.url(), table, alter }, { execute: true, forceCopy: true, hook, ...options });
    } finally {
      await real.close();
    }
  }

  /** The twin's side: the same writes, then the server's own ALTER. */
  async alterTwin(table: string, alter: string, writes: string[] = []): Promise<void> {
    await this.inDatabase(this.twin, [...writes, `ALTER TABLE ${table} ${alter}`]);
  }

  /** shadowcut's run succeeds and the database is the twin's, catalog and rows. */
  async expectSameAsNative(table: string, alter: string, run: { writes?: string[]; options?: Partial<MigrateOptions> } = {}): Promise<void> {
    await this.alterTwin(table, alter, run.writes);
    await this.migrate(table, alter, run);
    expect(await this.differences()).toEqual([]);
  }

  /** Catalog differences, then rows of each table that only one side has (`table: only in db: row`). */
  async differences(): Promise<string[]> {
    const out = await catalogDifferences(this.root, this.name, this.twin);
    const [tables] = await this.root.query<mysql.RowDataPacket[]>(
      "SELECT TABLE_NAME n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
      [this.twin],
    );
    for (const t of tables.map((r) => String(r.n)).filter((n) => !LEFTOVER.test(n))) out.push(...(await this.rowDifferences(t)));
    return out;
  }

  private async rowDifferences(table: string): Promise<string[]> {
    const [cols] = await this.root.query<mysql.RowDataPacket[]>(
      'SELECT COLUMN_NAME c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION',
      [this.twin, table],
    );
    const names = cols.map((r) => '`' + String(r.c).replaceAll('`', '``') + '`');
    const same = names.map((c) => `x.${c} <=> y.${c} AND CAST(x.${c} AS BINARY) <=> CAST(y.${c} AS BINARY)`).join(' AND ');
    const row = `CONCAT_WS(',', ${names.map((c) => `IFNULL(HEX(x.${c}), 'NULL')`).join(', ')})`;
    const out: string[] = [];
    for (const [from, to] of [
      [this.name, this.twin],
      [this.twin, this.name],
    ]) {
      const [rows] = await this.root.query<mysql.RowDataPacket[]>(
        `SELECT ${row} r FROM ${from}.\`${table}\` x WHERE NOT EXISTS (SELECT 1 FROM ${to}.\`${table}\` y WHERE ${same}) LIMIT 5`,
      );
      out.push(...rows.map((r) => `${table}: only in ${from}: ${String(r.r)}`));
    }
    return out;
  }
}
