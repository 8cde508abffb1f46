// A set's swap that fails between its tables' RENAMEs (issue 50, item 6), on MariaDB: the foreign
// keys between the set's tables are enforced on the live tables at every instant, and the run, its
// --resume or cleanup finishes or undoes the swap, leaving the database the natively altered twin's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { adminPool, runCliAsync } from './support/mysql.js';
import { A, TWIN, SET, urlOf, fresh, expectLikeNative } from './support/mysql-order-set.js';
import { catalogDifferences } from './support/mysql-catalog-oracle.js';

let root: mysql.Pool;

beforeAll(() => {
  root = adminPool();
});

afterAll(async () => {
  await root.query(`DROP DATABASE IF EXISTS ${A}; DROP DATABASE IF EXISTS ${TWIN}`);
  await root.end();
});

const ORPHAN = `INSERT INTO ${A}.order_items (id, order_id, qty) VALUES (999999, 987654321, 1)`;

/** An order_items row whose order does not exist: refused while the key is enforced on the live table. */
async function orphanRefused(): Promise<string> {
  try {
    await root.query(ORPHAN);
  } catch (error) {
    return (error as { code?: string }).code ?? String(error);
  }
  await root.query(`DELETE FROM ${A}.order_items WHERE id = 999999`);
  return 'accepted';
}

/**
 * The orphan tried over and over, as an application's write would come at any instant; stop() says
 * how often it was accepted (each acceptance is taken back at once, so later attempts try again).
 */
function orphanWriter(): { stop: () => Promise<string[]> } {
  let stopped = false;
  const outcomes = new Set<string>();
  const running = (async () => {
    while (!stopped) {
      const outcome = await orphanRefused().catch((error: { code?: string }) => `error ${error.code}`);
      outcomes.add(outcome);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await running;
      return [...outcomes].sort();
    },
  };
}

/** Where each of the set's keys is, and what it references. */
async function keys(): Promise<string[]> {
  const [rows] = await root.query<mysql.RowDataPacket[]>(
    'SELECT TABLE_NAME AS t, CONSTRAINT_NAME AS k, REFERENCED_TABLE_NAME AS p FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? ORDER BY 2',
    [A],
  );
  return rows.map((r) => `${r.t}.${r.k} -> ${r.p}`);
}

const ENFORCED = ['order_items.order_items_order_fk -> orders', 'payments.payments_order_fk -> orders'];

const ARGS = ['--url', urlOf(A), ...SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]), '--chunk-time-ms', '20'];

describe('MariaDB: a set whose swap fails in its RENAME', () => {
  it("a RENAME that fails after the unlock, a child's pair named: nothing is swapped, every key stays on the live tables, and the next attempt swaps the set", async () => {
    await fresh(root);
    const orphans = orphanWriter();
    // The seam makes the set's RENAME fail once it runs, after the unlock (the pair it adds is order_items').
    const first = await runCliAsync(['migrate', ...ARGS, '--execute'], urlOf(A), { SHADOWCUT_TEST_FAIL_AT: 'rename-after-unlock@order_items__new' });
    // Right after the run, and at every instant during it: an order_items row without its order is refused.
    expect(await orphanRefused()).toBe('ER_NO_REFERENCED_ROW_2');
    expect(await orphans.stop()).toEqual(['ER_NO_REFERENCED_ROW_2']);
    expect({ code: first.code, stderr: first.code === 0 ? '' : first.stderr }).toEqual({ code: 0, stderr: '' });
    expect(first.stderr).toMatch(/attempt 1 failed \(the RENAME failed/);
    expect(await keys()).toEqual(ENFORCED);
    await expectLikeNative(root);
  });

  it('killed while the RENAME waits at a gate, after it took the first table: the swap is made whole or not at all, and --resume ends it like the native ALTERs', async () => {
    await fresh(root);
    const orphans = orphanWriter();
    const killed = await runCliAsync(['migrate', ...ARGS, '--execute'], urlOf(A), { SHADOWCUT_TEST_KILL_AT: 'rename-at-gate' });
    expect({ code: killed.code, stderr: killed.stderr.match(/^shadowcut: .*/m) }).toEqual({ code: null, stderr: null });
    expect(await orphanRefused()).toBe('ER_NO_REFERENCED_ROW_2');
    // Each table either all old or all new: never a new parent beside an old child.
    const [columns] = await root.query<mysql.RowDataPacket[]>(
      "SELECT TABLE_NAME AS t, DATA_TYPE AS d FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND COLUMN_NAME IN ('id', 'order_id') AND TABLE_NAME IN ('orders', 'order_items', 'payments') AND NOT (TABLE_NAME <> 'orders' AND COLUMN_NAME = 'id')",
      [A],
    );
    expect(new Set(columns.map((c) => c.d)).size).toBe(1);
    const resumed = await runCliAsync(['migrate', ...ARGS, '--resume', '--execute'], urlOf(A));
    expect(await orphans.stop()).toEqual(['ER_NO_REFERENCED_ROW_2']);
    expect({ code: resumed.code, stderr: resumed.code === 0 ? '' : resumed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await keys()).toEqual(ENFORCED);
    await expectLikeNative(root);
  });

  it('killed while the RENAME waits at a gate, then cleaned up table by table: cleanup says one line each, the keys stay enforced, and the set is the twin altered or untouched', async () => {
    await fresh(root);
    const orphans = orphanWriter();
    const killed = await runCliAsync(['migrate', ...ARGS, '--execute'], urlOf(A), { SHADOWCUT_TEST_KILL_AT: 'rename-at-gate' });
    expect(killed.code).toBe(null);
    for (const { table } of SET) {
      const cleaned = await runCliAsync(['cleanup', '--url', urlOf(A), '--table', table, '--drop-old'], urlOf(A));
      expect({ table, code: cleaned.code, stderr: cleaned.stderr }).toEqual({ table, code: 0, stderr: '' });
    }
    expect(await orphans.stop()).toEqual(['ER_NO_REFERENCED_ROW_2']);
    expect(await keys()).toEqual(ENFORCED);
    const [[orders]] = await root.query<mysql.RowDataPacket[]>(
      "SELECT DATA_TYPE AS d FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'orders' AND COLUMN_NAME = 'id'",
      [A],
    );
    // The RENAME, left alone on the server, either ran whole or not at all.
    if (orders.d === 'bigint') await expectLikeNative(root);
    else expect(await catalogDifferences(root, A, TWIN)).toEqual([]);
  });

  it("killed under the lock with the set's keys on the shadows, then cleaned up parent first: each key goes back to its live child before the parent's shadow is dropped", async () => {
    await fresh(root);
    const killed = await runCliAsync(['migrate', ...ARGS, '--execute'], urlOf(A), { SHADOWCUT_TEST_KILL_AT: 'after-children-pointed' });
    expect(killed.code).toBe(null);
    expect(await keys()).toEqual(['order_items__new.order_items_order_fk -> orders__new', 'payments__new.payments_order_fk -> orders__new']);
    const cleaned = await runCliAsync(['cleanup', '--url', urlOf(A), '--table', 'orders'], urlOf(A));
    expect({ code: cleaned.code, stderr: cleaned.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await keys()).toEqual(ENFORCED);
    expect(await orphanRefused()).toBe('ER_NO_REFERENCED_ROW_2');
    for (const { table } of SET.slice(1)) expect((await runCliAsync(['cleanup', '--url', urlOf(A), '--table', table], urlOf(A))).code).toBe(0);
    expect(await catalogDifferences(root, A, TWIN)).toEqual([]);
  });
});
