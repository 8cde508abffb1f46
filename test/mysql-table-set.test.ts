// Several tables, one cut-over on MariaDB (issue 36): orders.id widened to BIGINT with the children
// that reference it, under writes to every table. Each table exact against a twin database that got
// the same writes and the server's own ALTERs, the whole catalog the twin's, and a reader joining the
// tables never sees an INT key beside a BIGINT one.
import { mostAtOnce } from './support/most-at-once.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { migrateSet } from '../src/core/migrate/sets/migrate-set.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool, runCliAsync } from './support/mysql.js';
import { A, TWIN, SET, urlOf, fresh as freshSet, sumOf as sumOfTable, expectLikeNative as expectSetLikeNative, setWriters } from './support/mysql-order-set.js';
import { catalogDifferences } from './support/mysql-catalog-oracle.js';
import { killDuringPhase, killWhenReady } from './support/kill.js';
import { abortLastTableDuringCopy, runState, waitFor } from './support/run.js';

let root: mysql.Pool;

beforeAll(() => {
  root = adminPool();
});

afterAll(async () => {
  await root.query(`DROP DATABASE IF EXISTS ${A}; DROP DATABASE IF EXISTS ${TWIN}`);
  await root.end();
});

const fresh = () => freshSet(root);
const sumOf = (db: string, table: string) => sumOfTable(root, db, table);
const expectLikeNative = () => expectSetLikeNative(root);

const writers = () => setWriters(root);

/** The most binlog readers (`Binlog Dump` sessions) seen at once beyond those there at the start. */
function binlogReaders(): { stop: () => Promise<number> } {
  return mostAtOnce(async () => {
    const [rows] = await root.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`);
    return Number(rows[0].n);
  });
}

/** Joins the three tables over and over, noting the key columns' types each statement returned. */
function joiningReader(): { stop: () => Promise<Set<string>> } {
  const seen = new Set<string>();
  let stopped = false;
  const running = (async () => {
    const conn = await mysql.createConnection(urlOf(A));
    try {
      while (!stopped) {
        const [, fields] = await conn.query(
          'SELECT o.id AS o, i.order_id AS i, p.order_id AS p FROM orders o JOIN order_items i ON i.order_id = o.id JOIN payments p ON p.order_id = o.id LIMIT 1',
        );
        seen.add(fields.map((f) => (f.columnType === 8 ? 'bigint' : f.columnType === 3 ? 'int' : String(f.columnType))).join(' '));
      }
    } finally {
      await conn.end();
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await running;
      return seen;
    },
  };
}

describe.each(['stream', 'trigger'] as const)('MariaDB, %s capture: several tables in one cut-over', (capture) => {
  it('under writes to every table, each is exact against a natively altered twin, foreign keys join the new tables, and a joining reader never sees old and new at once', async () => {
    await fresh();
    const load = writers();
    const reader = joiningReader();
    const dumps = binlogReaders();
    const engine = await createMysqlEngine(urlOf(A));
    let results;
    try {
      results = await migrateSet(
        engine,
        SET.map((s) => ({ url: urlOf(A), ...s, capture })),
        SET.map(() => ({ execute: true, chunkTimeMs: 20 })),
      );
    } finally {
      await engine.close();
    }
    const committed = await load.stop();
    const seen = await reader.stop();
    // One binlog reader for the three tables (a replica's own is there before and after).
    expect(await dumps.stop()).toBe(capture === 'stream' ? 1 : 0);
    expect(committed).toBeGreaterThan(20);
    expect([...seen].sort()).toEqual(['bigint bigint bigint', 'int int int']);
    expect(new Set(results.map((r) => r!.cutoverLockedMs)).size).toBe(1);
    await expectLikeNative();
  });
});

describe('MariaDB: a set stopped, killed and resumed', () => {
  it("an operator's abort of one table during the copy stops the whole set, and every table is left as it was", async () => {
    await fresh();
    const engine = await createMysqlEngine(urlOf(A));
    const states = SET.map((s) => runState(`${A}.${s.table}`, s.alter, 'mysql', { maxRowsPerSec: 20_000 }));
    try {
      await abortLastTableDuringCopy(
        states,
        migrateSet(
          engine,
          SET.map((s) => ({ url: urlOf(A), ...s })),
          states.map((state) => ({ execute: true, state })),
        ),
      );
    } finally {
      await engine.close();
    }
    // Every shadow, capture trigger, log and checkpoint gone, every key where it was: the untouched twin's catalog.
    expect(await catalogDifferences(root, A, TWIN)).toEqual([]);
    const [left] = await root.query<mysql.RowDataPacket[]>(
      `SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME LIKE '%\\_\\_%'`,
      [A],
    );
    expect(left.map((r) => r.t)).toEqual([]);
  });

  it('plan knows the set: the parent key and its children widened together are accepted, as migrate accepts them, a child named first', async () => {
    await fresh();
    // A child first: alone, the server refuses its ALTER (a column a key uses); in the set it is the copy's.
    const order = [SET[1], SET[0], SET[2]];
    const pairs = order.flatMap((s) => ['--table', s.table, '--alter', s.alter]);
    const dry = await runCliAsync(['migrate', '--url', urlOf(A), ...pairs], urlOf(A));
    expect({ code: dry.code, stderr: dry.stderr }).toEqual({ code: 0, stderr: '' });
    expect(dry.stdout).toMatch(/path: copy \(sc_set\.order_items needs the copy \(its ALTER cannot be made on the table alone/);
    const planned = await runCliAsync(['plan', '--url', urlOf(A), ...pairs, '--json'], urlOf(A));
    expect({ code: planned.code, stderr: planned.stderr }).toEqual({ code: 0, stderr: '' });
    const events = planned.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; outcome?: string; detail?: { table: string }; tables?: string[] });
    expect(events.map((e) => [e.event, e.detail?.table ?? e.tables, e.outcome ?? null])).toEqual([
      ...order.map((s) => ['plan', `${A}.${s.table}`, 'planned']),
      ['set', order.map((s) => `${A}.${s.table}`), null],
    ]);
    // Alone, the parent's plan is refused: its children could not reference the new table.
    const alone = await runCliAsync(['plan', '--url', urlOf(A), '--table', SET[0].table, '--alter', SET[0].alter, '--force-copy'], urlOf(A));
    expect(alone.code).not.toBe(0);
  });

  it.each(['stream', 'trigger'] as const)(
    "with a revert window (%s capture), one table's revert takes the keyed set back in one swap, under writes: every table and key equal the twin that never took the ALTERs",
    async (capture) => {
      await fresh();
      const pairs = SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]);
      const load = writers();
      const reader = joiningReader();
      const run = runCliAsync(['migrate', '--url', urlOf(A), ...pairs, '--capture', capture, '--revert-window', '10m', '--execute'], urlOf(A));
      const status = async (table: string) => (await runCliAsync(['status', '--table', table], urlOf(A))).stdout;
      let output = '';
      try {
        for (const { table } of SET) await waitFor(`${table}'s revert window`, async () => /revert window/.test(await status(table)), null, 120_000);
        // The new tables take writes (twenty transactions), which must follow back.
        const from = load.committed();
        await waitFor('writes on the new tables', () => load.committed() >= from + 20, null, 60_000);
        expect((await runCliAsync(['revert', '--table', 'payments'], urlOf(A))).code).toBe(0);
      } finally {
        const done = await run;
        output = done.stdout + done.stderr;
        expect({ code: done.code, stderr: done.code === 0 ? '' : done.stderr }).toEqual({ code: 0, stderr: '' });
      }
      // A writer's failure is the application's: shown with the triggers left and the run's own account.
      await load.stop().catch(async (error: Error) => {
        const [triggers] = await root.query(`SELECT EVENT_OBJECT_TABLE AS t, TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?`, [A]);
        throw new Error(`a writer failed: ${error.message}; triggers now ${JSON.stringify(triggers)}\n${output}`);
      });
      // Forward and back: every statement saw the keys all INT or all BIGINT.
      expect([...(await reader.stop())].sort()).toEqual(['bigint bigint bigint', 'int int int']);
      for (const { table } of SET) expect({ table, ours: await sumOf(A, table) }).toEqual({ table, ours: await sumOf(TWIN, table) });
      // The revert keeps the new tables beside the old ones, for the operator to drop.
      await root.query(`DROP TABLE ${SET.map((s) => `${A}.${s.table}__new`).join(', ')}`);
      expect(await catalogDifferences(root, A, TWIN)).toEqual([]);
    },
  );

  it('killed in its revert window and resumed, the keyed set goes back on a request to one table', async () => {
    await fresh();
    const pairs = SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]);
    const load = writers();
    const crash = await killDuringPhase(['--url', urlOf(A), ...pairs, '--revert-window', '10m'], 'revert window', 500);
    expect(crash.killed, crash.stderr).toBe(true);
    const resumed = runCliAsync(['migrate', '--url', urlOf(A), ...pairs, '--revert-window', '10m', '--resume', '--execute'], urlOf(A));
    const status = async (table: string) => (await runCliAsync(['status', '--table', table], urlOf(A))).stdout;
    try {
      for (const { table } of SET) await waitFor(`${table}'s resumed window`, async () => /revert window/.test(await status(table)), null, 120_000);
      expect((await runCliAsync(['revert', '--table', 'orders'], urlOf(A))).code).toBe(0);
    } finally {
      const done = await resumed;
      expect({ code: done.code, stderr: done.code === 0 ? '' : done.stderr }).toEqual({ code: 0, stderr: '' });
    }
    await load.stop();
    for (const { table } of SET) expect({ table, ours: await sumOf(A, table) }).toEqual({ table, ours: await sumOf(TWIN, table) });
    await root.query(`DROP TABLE ${SET.map((s) => `${A}.${s.table}__new`).join(', ')}`);
    expect(await catalogDifferences(root, A, TWIN)).toEqual([]);
  });

  it("a swap back whose RENAME fails after the unlock swaps nothing back: the set's one RENAME is whole or nothing, and the revert's next attempt takes every table back", async () => {
    await fresh();
    const args = ['--url', urlOf(A), ...SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]), '--revert-window', '10m'];
    // The seam fails the swap back's RENAME once it runs (the pair it adds is the parent's, whose shadow is the old table).
    const run = runCliAsync(['migrate', ...args, '--execute'], urlOf(A), { SHADOWCUT_TEST_FAIL_AT: 'rename-after-unlock@__old' });
    const status = async (table: string) => (await runCliAsync(['status', '--table', table], urlOf(A))).stdout;
    for (const { table } of SET) await waitFor(`${table}'s revert window`, async () => /revert window/.test(await status(table)), null, 120_000);
    expect((await runCliAsync(['revert', '--table', 'orders'], urlOf(A))).code).toBe(0);
    const first = await run;
    expect({ code: first.code, stderr: first.code === 0 ? '' : first.stderr }).toEqual({ code: 0, stderr: '' });
    expect(first.stderr).toMatch(/attempt 1 failed \(the RENAME failed/);
    for (const { table } of SET) expect({ table, ours: await sumOf(A, table) }).toEqual({ table, ours: await sumOf(TWIN, table) });
    await root.query(`DROP TABLE ${SET.map((s) => `${A}.${s.table}__new`).join(', ')}`);
    expect(await catalogDifferences(root, A, TWIN)).toEqual([]);
  });

  it('killed at the cut-over and resumed, the set swaps once and every table is exact', async () => {
    for (const delayMs of [0, 30]) {
      await fresh();
      const args = ['--url', urlOf(A), ...SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]), '--chunk-time-ms', '20'];
      const load = writers();
      const crash = await killDuringPhase(args, 'cutover', delayMs);
      expect({ delayMs, killed: crash.killed }).toEqual({ delayMs, killed: true });
      const resumed = await runCliAsync(['migrate', ...args, '--resume', '--execute'], urlOf(A));
      await load.stop();
      expect({ delayMs, code: resumed.code, stderr: resumed.code === 0 ? '' : resumed.stderr }).toEqual({ delayMs, code: 0, stderr: '' });
      await expectLikeNative();
    }
  });

  // A kill while one member had made its shadow (and, with triggers, its capture) but not yet saved
  // its first checkpoint, and the others had theirs. Dropping that member's checkpoint after a kill
  // in the copy leaves the same, every time; on a slow machine the kill can come before the member
  // saved any, which is the same case.
  it.each(['stream', 'trigger'] as const)(
    "%s capture: killed before one table's first checkpoint and resumed, that table starts afresh and the set swaps once",
    async (capture) => {
      await fresh();
      const args = ['--url', urlOf(A), ...SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]), '--chunk-time-ms', '20', '--capture', capture];
      const load = writers();
      const last = SET[SET.length - 1].table;
      // Killed once every other member saved a checkpoint: a kill before any, on a slow machine, left
      // the set nothing to resume from (exit 5, EXIT_NO_CHECKPOINT).
      const saved = async (table: string) =>
        root.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${A}.${table}__state`).then(
          ([rows]) => Number(rows[0].n) > 0,
          () => false, // not made yet
        );
      const others = SET.filter((s) => s.table !== last);
      const crash = await killWhenReady(args, 'copy', async () => (await Promise.all(others.map((s) => saved(s.table)))).every(Boolean));
      expect({ killed: crash.killed, stderr: crash.stderr }).toEqual({ killed: true, stderr: '' });
      await root.query(`DROP TABLE IF EXISTS ${A}.${last}__state`);
      const resumed = await runCliAsync(['migrate', ...args, '--resume', '--execute'], urlOf(A));
      await load.stop();
      expect({ code: resumed.code, stderr: resumed.code === 0 ? '' : resumed.stderr }).toEqual({ code: 0, stderr: '' });
      await expectLikeNative();
    },
  );

  it("killed with the set's keys moved to the parent's shadow and resumed: the parent's stream takes their moves back as the set's own, not as DDL", async () => {
    await fresh();
    const args = ['--url', urlOf(A), ...SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]), '--capture', 'stream', '--chunk-time-ms', '20'];
    const killed = await runCliAsync(['migrate', ...args, '--execute'], urlOf(A), { SHADOWCUT_TEST_KILL_AT: 'after-children-pointed' });
    expect({ code: killed.code, stderr: killed.stderr.match(/^shadowcut: .*/m) }).toEqual({ code: null, stderr: null });
    const parents = async () => {
      const [rows] = await root.query<mysql.RowDataPacket[]>(
        'SELECT CONSTRAINT_NAME AS k, REFERENCED_TABLE_NAME AS p FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? ORDER BY 1',
        [A],
      );
      return rows.map((r) => `${r.k} -> ${r.p}`);
    };
    // The kill came under the lock, after the children's keys moved to the new parent: the resumed run moves them back, which its
    // parent's stream, reading from before, meets in the binlog (a statement naming the parent).
    expect(await parents()).toEqual(['order_items_order_fk -> orders__new', 'payments_order_fk -> orders__new']);
    const resumed = await runCliAsync(['migrate', ...args, '--resume', '--execute'], urlOf(A));
    expect({ code: resumed.code, stderr: resumed.code === 0 ? '' : resumed.stderr }).toEqual({ code: 0, stderr: '' });
    expect(await parents()).toEqual(['order_items_order_fk -> orders', 'payments_order_fk -> orders']);
    await expectLikeNative();
  });
});
