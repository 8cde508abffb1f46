import type mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExtraMariadb, type ExtraMariadb } from './support/extra-mariadb.js';
import { runCli } from './support/mysql.js';

/**
 * With performance_schema ON, contract refuses a column (or an index) the statement digests (or
 * index statistics) show in use, and --force overrides that, never a view. The shared servers run
 * without performance_schema (there, the check says it could not look: contract.test.ts).
 */
describe('contract with performance_schema (MariaDB)', () => {
  let server: ExtraMariadb;
  let root: mysql.Connection;
  beforeAll(async () => {
    server = await startExtraMariadb(['--performance-schema=ON']);
    root = await server.root();
    await root.query('CREATE DATABASE usage_db; USE usage_db');
    await root.query('CREATE TABLE cu_orders (id INT PRIMARY KEY, legacy INT, unused INT, n INT, KEY k_n (n), KEY k_unused (unused))');
    // No column list: the insert names none of the columns.
    await root.query('INSERT INTO cu_orders SELECT seq, seq, seq, seq FROM seq_1_to_500');
    // The application still reads `legacy`, and reads through k_n.
    for (let i = 1; i <= 5; i++) await root.query('SELECT legacy FROM cu_orders WHERE id = ?', [i]);
    for (let i = 1; i <= 5; i++) await root.query('SELECT id FROM cu_orders FORCE INDEX (k_n) WHERE n = ?', [i]);
  }, 60_000);
  afterAll(async () => {
    await root?.end();
    await server?.stop();
  });

  const contract = (args: string[]) => runCli(['contract', '--url', '$URL', '--table', 'cu_orders', ...args], server.url('usage_db'));

  it('refuses a column queries still use, unless --force; lets an unused one go', async () => {
    const used = contract(['--drop-column', 'legacy', '--no-backup', '--execute']);
    expect(used.code).toBe(2);
    expect(used.stderr).toMatch(
      /^shadowcut: 1 statement digest\(s\) use legacy of usage_db\.cu_orders, e\.g\. "SELECT `legacy` FROM `cu_orders`.*--force if that code is retired\n$/,
    );
    const unused = contract(['--drop-column', 'unused', '--no-backup']);
    expect(unused.code).toBe(0);
    expect(unused.stdout).toMatch(/ok {3}query statistics: no statement using unused seen since the server started/);
    expect(unused.stdout).toMatch(/index k_unused \(unused\) goes too/);

    const forced = contract(['--drop-column', 'legacy', '--no-backup', '--execute', '--force']);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toMatch(/overridden by --force: 1 statement digest/);
    const [cols] = await root.query<mysql.RowDataPacket[]>(
      "SELECT COLUMN_NAME c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'usage_db' AND TABLE_NAME = 'cu_orders' ORDER BY ORDINAL_POSITION",
    );
    expect(cols.map((r) => r.c)).toEqual(['id', 'unused', 'n']);
  });

  it('refuses an index reads go through, unless --force', async () => {
    const used = contract(['--drop-index', 'k_n', '--execute']);
    expect(used.code).toBe(2);
    expect(used.stderr).toMatch(/row read\(s\) through index k_n/);
    expect(contract(['--drop-index', 'k_n', '--execute', '--force']).code).toBe(0);
  });
});
