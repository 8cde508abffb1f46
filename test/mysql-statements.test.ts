import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../src/core/engine/errors.js';
import { adminPool, differences, helperTables, migrateMysql } from './support/mysql.js';
import { background, runState, waitFor } from './support/run.js';

const alter = 'ADD COLUMN note INT NULL';

/**
 * What reaches the binlog as a statement instead of row events: a write from a session that logs
 * statements, or someone else's DDL in any spelling. Either must stop the run; skipping it would
 * lose a change silently.
 */
describe('statements on the table in the binlog (MariaDB)', () => {
  let db: mysql.Pool;
  beforeAll(() => {
    db = adminPool();
  });
  afterAll(() => db.end());

  async function postponedRun(t: string) {
    await db.query(`DROP TABLE IF EXISTS ${t}, ${t}__new, ${t}__old, ${t}__state, ${t}__hb`);
    await db.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20))`);
    await db.query(`INSERT INTO ${t} SELECT seq, 'x' FROM seq_1_to_2000`);
    const state = runState(t, alter, 'mysql');
    const run = background(migrateMysql(t, alter, { state, postponeCutover: true }));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    return { state, run };
  }

  async function expectStopped(t: string, run: { settled: boolean; error?: unknown }, message: RegExp) {
    await waitFor('the run to stop', () => run.settled, null, 30_000);
    expect(run.error).toBeInstanceOf(UserError);
    expect((run.error as Error).message).toMatch(message);
    expect(await helperTables(db, t)).toEqual([]);
    const [columns] = await db.query<mysql.RowDataPacket[]>(`SHOW COLUMNS FROM ${t} LIKE 'note'`);
    expect(columns).toEqual([]);
  }

  it('stops on a write logged as a statement by a session with binlog_format=STATEMENT', async () => {
    const t = 'stmt_write';
    const { run } = await postponedRun(t);
    const conn = await db.getConnection();
    try {
      await conn.query(`SET SESSION binlog_format = 'STATEMENT'`);
      await conn.query(`UPDATE ${t} SET v = 'by statement' WHERE id <= 10`);
    } finally {
      await conn.query(`SET SESSION binlog_format = 'ROW'`);
      conn.release();
    }
    await expectStopped(t, run, /a write to the table was logged as a statement, not as rows/);
  });

  it.each([
    ['a comment before the verb', (t: string) => `/* app */ TRUNCATE TABLE ${t}`],
    ['lower case and leading blanks', (t: string) => `   alter table \`${t}\` comment 'x'`],
    ['CREATE INDEX', (t: string) => `CREATE INDEX v_idx ON ${t} (v)`],
    ['CREATE TRIGGER', (t: string) => `CREATE TRIGGER ${t}_trg BEFORE INSERT ON ${t} FOR EACH ROW SET NEW.v = UPPER(NEW.v)`],
  ])('stops on DDL from another session: %s', async (_what, ddl) => {
    const t = 'stmt_ddl';
    const { run } = await postponedRun(t);
    await db.query(ddl(t));
    await expectStopped(t, run, /the table was changed by another session during the run/);
    await db.query(`DROP TRIGGER IF EXISTS ${t}_trg`);
  });

  it('follows sessions with binlog_row_image=MINIMAL, updates of the key included', async () => {
    const t = 'stmt_minimal';
    await db.query(`DROP TABLE IF EXISTS ${t}_mirror`);
    const { state, run } = await postponedRun(t);
    await db.query(`CREATE TABLE ${t}_mirror LIKE ${t}`);
    await db.query(`INSERT INTO ${t}_mirror SELECT * FROM ${t}`);
    const conn = await db.getConnection();
    try {
      await conn.query(`SET SESSION binlog_row_image = 'MINIMAL'`);
      for (const table of [t, `${t}_mirror`]) {
        await conn.query(`UPDATE ${table} SET v = 'minimal' WHERE id BETWEEN 100 AND 150`);
        await conn.query(`UPDATE ${table} SET id = id + 10000 WHERE id BETWEEN 200 AND 210`);
        await conn.query(`DELETE FROM ${table} WHERE id BETWEEN 300 AND 320`);
        await conn.query(`INSERT INTO ${table} (id, v) VALUES (5000, 'new')`);
      }
    } finally {
      await conn.query(`SET SESSION binlog_row_image = 'FULL'`);
      conn.release();
    }
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null, 30_000);
    expect(run.error).toBeUndefined();
    await db.query(`ALTER TABLE ${t}_mirror ${alter}`);
    expect(await differences(db, t, `${t}_mirror`)).toEqual([]);
  });
});
