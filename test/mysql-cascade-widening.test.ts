// A cascading key widened (issue 60, item 6): the rows a parent's delete reaches are found in the new
// table by the parent's values, which a widening keeps (INT to BIGINT, a longer VARCHAR, a DECIMAL with
// more digits), and a change of value or comparison does not (capture/same-rows.ts). Alone, the key
// discarded as the server requires, and the usual reason to touch them at once: orders.id and its
// children's order_id widened in one set, under writes that delete orders (the children go by
// ON DELETE CASCADE, with no row event of theirs), plain and killed and resumed, against a twin
// database given the native ALTERs.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, runCli, runCliAsync } from './support/mysql.js';
import { createFkTree, dropFkTree, fkTree, FkTreeWriter } from './support/fk-tree.js';
import { A, TWIN, SET, urlOf, fresh, expectLikeNative, setWriters } from './support/mysql-order-set.js';
import { killDuringPhase } from './support/kill.js';
import { waitFor } from './support/run.js';
import { catalogDifferences } from './support/mysql-catalog-oracle.js';

let db: mysql.Pool;
const pool = () => (db ??= adminPool());
const t = fkTree('fkw');

afterAll(async () => {
  await dropFkTree(pool(), t);
  await pool().query('SET foreign_key_checks = 0; DROP TABLE IF EXISTS fkw_cc__old, fkw_types_c, fkw_types_p; SET foreign_key_checks = 1');
  await pool().query(`DROP DATABASE IF EXISTS ${A}; DROP DATABASE IF EXISTS ${TWIN}`);
  await pool().end();
});

describe('MariaDB: a cascading key whose type changes', () => {
  it('a widening that keeps every value and comparison is followed; one that changes values, sign, collation or character set is refused', async () => {
    await pool().query('SET foreign_key_checks = 0; DROP TABLE IF EXISTS fkw_types_c, fkw_types_p; SET foreign_key_checks = 1');
    await pool().query(`CREATE TABLE fkw_types_p (id INT PRIMARY KEY, s SMALLINT NOT NULL UNIQUE, u INT UNSIGNED NOT NULL UNIQUE,
      code VARCHAR(20) NOT NULL UNIQUE, d DECIMAL(8,2) NOT NULL UNIQUE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`);
    const keys = [
      ['pid', 'id'],
      ['sid', 's'],
      ['uid', 'u'],
      ['code', 'code'],
      ['d', 'd'],
    ];
    await pool().query(`CREATE TABLE fkw_types_c (id INT PRIMARY KEY, pid INT NOT NULL, sid SMALLINT NOT NULL, uid INT UNSIGNED NOT NULL,
      code VARCHAR(20) NOT NULL, d DECIMAL(8,2) NOT NULL,
      ${keys.map(([c, p]) => `CONSTRAINT fkw_types_${c} FOREIGN KEY (${c}) REFERENCES fkw_types_p (${p}) ON DELETE CASCADE`).join(', ')})
      ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci`);
    const cases: [string, boolean][] = [
      ['MODIFY pid BIGINT NOT NULL', true],
      ['MODIFY sid INT NOT NULL', true],
      ['MODIFY uid BIGINT UNSIGNED NOT NULL', true],
      ['MODIFY uid BIGINT NOT NULL', true],
      ['MODIFY code VARCHAR(40) NOT NULL', true],
      ['MODIFY d DECIMAL(12,4) NOT NULL', true],
      ['MODIFY pid INT UNSIGNED NOT NULL', false],
      ['MODIFY uid INT NOT NULL', false],
      ['MODIFY sid TINYINT NOT NULL', false],
      ['MODIFY pid DOUBLE NOT NULL', false],
      ['MODIFY code VARCHAR(10) NOT NULL', false],
      ['MODIFY code VARCHAR(40) COLLATE utf8mb4_bin NOT NULL', false],
      ['MODIFY code VARCHAR(40) CHARACTER SET latin1 NOT NULL', false],
      ['MODIFY d DECIMAL(12,1) NOT NULL', false],
      ['MODIFY d DECIMAL(8,4) NOT NULL', false],
    ];
    const outcomes = cases.map(([alter]) => {
      const r = runCli(['migrate', '--url', '$URL', '--table', 'fkw_types_c', '--alter', alter, '--force-copy', '--discard-foreign-keys']);
      if (r.code === 0) return [alter, true];
      expect(r.stderr).toMatch(/so the rows a cascade reaches could not be found there by the parent's values/);
      return [alter, false];
    });
    expect(outcomes).toEqual(cases);
  });

  it('alone, its key discarded, under writes that delete its parents: every cascaded delete reaches the new table, as the mirror', async () => {
    await pool().query(`DROP TABLE IF EXISTS ${t.real.cascade}__old`);
    await createFkTree(pool(), t, 20_000);
    const alter = 'MODIFY pid BIGINT NOT NULL';
    // The new table takes no key (MariaDB changes no type a key uses): writes stop before the swap,
    // where the tree and its mirror part ways.
    const dir = mkdtempSync(join(tmpdir(), 'fkw-'));
    const flag = join(dir, 'hold');
    writeFileSync(flag, '');
    const writer = new FkTreeWriter(pool(), t, 20_000);
    writer.start();
    const args = ['migrate', '--force-copy', '--url', '$URL', '--table', t.real.cascade, '--alter', alter, '--discard-foreign-keys'];
    const run = runCliAsync([...args, '--execute', '--max-rows-per-sec', '3000', '--postpone-cutover-flag-file', flag]);
    try {
      const status = async () => (await runCliAsync(['status', '--table', t.real.cascade])).stdout;
      await waitFor('the postponed cut-over', async () => /postponed/.test(await status()), null, 180_000);
    } finally {
      const stats = await writer.stop();
      expect(stats.errors).toEqual([]);
      expect(stats.mismatches).toEqual([]);
      rmSync(dir, { recursive: true });
    }
    const done = await run;
    expect(done.code, done.stderr).toBe(0);
    const [[gone]] = await pool().query<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) n FROM seq_1_to_20000 s LEFT JOIN ${t.mirror.parent} p ON p.id = s.seq WHERE p.id IS NULL`,
    );
    expect(Number(gone.n)).toBeGreaterThan(0);
    await pool().query(`ALTER TABLE ${t.mirror.cascade} DROP FOREIGN KEY ${t.mirror.cascade}_fk, ${alter}`);
    expect(await differences(pool(), t.real.cascade, t.mirror.cascade)).toEqual([]);
    await pool().query(`DROP TABLE ${t.real.cascade}__old`);
  });
});

describe('MariaDB: orders and its cascading children widened together', () => {
  const pairs = SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]);
  const args = ['--url', urlOf(A), ...pairs, '--chunk-time-ms', '20', '--max-rows-per-sec', '20000'];

  /** Orders the writers deleted, each taking its items and payments by cascade: none, and the test proves nothing. */
  async function deletedOrders(): Promise<number> {
    const [[row]] = await pool().query<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) n FROM seq_1_to_20000 s LEFT JOIN ${TWIN}.orders o ON o.id = s.seq WHERE o.id IS NULL`,
    );
    return Number(row.n);
  }

  it('under writes that delete orders, through the copy and the cut-over: every table as the twin altered natively', async () => {
    await fresh(pool(), true);
    const load = setWriters(pool(), true);
    const done = await runCliAsync(['migrate', ...args, '--execute'], urlOf(A));
    expect(await load.stop()).toBeGreaterThan(20);
    expect({ code: done.code, stderr: done.code === 0 ? '' : done.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await deletedOrders()).toBeGreaterThan(0);
    await expectLikeNative(pool(), true);
  });

  it.each(['copy', 'cutover'])('killed in the %s under the same writes and resumed: every table as the twin altered natively', async (phase) => {
    await fresh(pool(), true);
    const load = setWriters(pool(), true);
    const crash = await killDuringPhase(args, phase, 200);
    expect({ killed: crash.killed, stderr: crash.stderr }).toEqual({ killed: true, stderr: '' });
    const resumed = await runCliAsync(['migrate', ...args, '--resume', '--execute'], urlOf(A));
    expect(await load.stop()).toBeGreaterThan(20);
    expect({ code: resumed.code, stderr: resumed.code === 0 ? '' : resumed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await deletedOrders()).toBeGreaterThan(0);
    await expectLikeNative(pool(), true);
  });

  // The way back follows the new tables by triggers, which InnoDB's cascades do not fire.
  it('with a revert window, refused in one line, every table as it was', async () => {
    await fresh(pool(), true);
    // ALTERs a revert window takes otherwise, so that only the cascades refuse it.
    const plain = [
      '--table',
      'orders',
      '--alter',
      'ADD COLUMN placed_at DATETIME(6) NULL',
      '--table',
      'order_items',
      '--alter',
      'ADD COLUMN y INT NULL',
      '--table',
      'payments',
      '--alter',
      'ADD COLUMN z INT NULL',
    ];
    const r = await runCliAsync(['migrate', '--url', urlOf(A), ...plain, '--force-copy', '--revert-window', '10m', '--execute'], urlOf(A));
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/changes cascade into the table \((order_items|payments)_order_fk -> orders\): the way back's triggers would not see them/);
    expect(await catalogDifferences(pool(), A, TWIN)).toEqual([]);
  });
});
