import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../src/core/migrate/runner.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { startExtraMariadb, type ExtraMariadb } from './support/extra-mariadb.js';
import { background, runState, waitFor } from './support/run.js';

/**
 * lower_case_table_names=1 stores and logs names in lower case. A database or table named in
 * another case in the URL or --table must still match the binlog's row events.
 */
describe('lower_case_table_names=1 (MariaDB)', () => {
  let server: ExtraMariadb;
  let root: mysql.Connection;
  beforeAll(async () => {
    server = await startExtraMariadb(['--lower-case-table-names=1']);
    root = await server.root();
  }, 60_000);
  afterAll(async () => {
    await root?.end();
    await server?.stop();
  });

  it('follows the writes to a table named in mixed case, in a database named in mixed case', async () => {
    await root.query('CREATE DATABASE ShopLc; USE ShopLc');
    for (const t of ['Orders', 'OrdersMirror']) {
      await root.query(`CREATE TABLE ${t} (id INT PRIMARY KEY, v VARCHAR(20))`);
      await root.query(`INSERT INTO ${t} SELECT seq, 'x' FROM seq_1_to_3000`);
    }
    const alter = 'ADD COLUMN note INT NULL';
    const url = server.url('ShopLc');
    const state = runState('Orders', alter, 'mysql');
    const engine = await createMysqlEngine(url);
    const migration = migrate(engine, { url, table: 'Orders', alter }, { execute: true, forceCopy: true, state, postponeCutover: true }).finally(() =>
      engine.close(),
    );
    const run = background(migration);
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    for (const t of ['Orders', 'OrdersMirror']) {
      await root.query(`UPDATE ${t} SET v = 'changed' WHERE id <= 100`);
      await root.query(`DELETE FROM ${t} WHERE id > 2900`);
      await root.query(`INSERT INTO ${t} VALUES (9000, 'new')`);
    }
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null, 30_000);
    expect(run.error).toBeUndefined();
    const result = await migration;
    // Followed through the binlog, not found and repaired by a checksum round.
    expect(result.changesApplied).toBeGreaterThanOrEqual(201);
    expect(result.checksumRounds).toBe(1);
    await root.query(`ALTER TABLE OrdersMirror ${alter}`);
    const [diff] = await root.query<mysql.RowDataPacket[]>(
      `SELECT (SELECT COUNT(*) FROM (SELECT * FROM orders EXCEPT SELECT * FROM ordersmirror) a) + (SELECT COUNT(*) FROM (SELECT * FROM ordersmirror EXCEPT SELECT * FROM orders) b) AS n`,
    );
    expect(Number(diff[0].n)).toBe(0);
  });
});
