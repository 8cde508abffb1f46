// Several tables, one cut-over on MariaDB (issue 36): orders.id widened to BIGINT with the children
// that reference it, under writes to every table. Each table exact against a twin database that got
// the same writes and the server's own ALTERs, the whole catalog the twin's, and a reader joining the
// tables never sees an INT key beside a BIGINT one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import { migrateSet } from '../src/core/migrate/set.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { adminPool, mysqlUrl, runCliAsync } from './support/mysql.js';
import { catalogDifferences } from './support/mysql-catalog-oracle.js';
import { killDuringPhase } from './support/kill.js';
import { abortLastTableDuringCopy, runState } from './support/run.js';
import { orderWriters, type Statement } from './support/order-writes.js';

const A = 'sc_set';
const TWIN = 'sc_set_twin';
let root: mysql.Pool;

const urlOf = (db: string) => {
  const u = new URL(mysqlUrl());
  u.pathname = `/${db}`;
  return u.toString();
};

const SCHEMA = [
  'CREATE TABLE orders (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, note VARCHAR(40)) ENGINE=InnoDB',
  `CREATE TABLE order_items (id INT NOT NULL PRIMARY KEY, order_id INT NOT NULL, qty INT NOT NULL, KEY order_items_order (order_id),
     CONSTRAINT order_items_order_fk FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB`,
  `CREATE TABLE payments (id INT NOT NULL PRIMARY KEY, order_id INT NOT NULL, amount DECIMAL(14,2), KEY payments_order (order_id),
     CONSTRAINT payments_order_fk FOREIGN KEY (order_id) REFERENCES orders (id)) ENGINE=InnoDB`,
  'INSERT INTO orders (id, note) SELECT seq, CONCAT("n", seq) FROM seq_1_to_20000',
  'INSERT INTO order_items SELECT seq, (seq % 20000) + 1, seq % 7 FROM seq_1_to_40000',
  'INSERT INTO payments SELECT seq, seq, seq * 1.25 FROM seq_1_to_20000',
];

const SET = [
  { table: 'orders', alter: 'MODIFY id BIGINT NOT NULL AUTO_INCREMENT, ADD COLUMN placed_at DATETIME(6) NULL' },
  { table: 'order_items', alter: 'MODIFY order_id BIGINT NOT NULL' },
  { table: 'payments', alter: 'MODIFY order_id BIGINT NOT NULL, MODIFY amount DECIMAL(18,4)' },
];

const KEYS = [
  ['order_items', 'order_items_order_fk'],
  ['payments', 'payments_order_fk'],
];

beforeAll(() => {
  root = adminPool();
});

afterAll(async () => {
  await root.query(`DROP DATABASE IF EXISTS ${A}; DROP DATABASE IF EXISTS ${TWIN}`);
  await root.end();
});

async function fresh(): Promise<void> {
  for (const db of [A, TWIN]) {
    await root.query(`DROP DATABASE IF EXISTS ${db}`);
    await root.query(`CREATE DATABASE ${db}`);
    const conn = await root.getConnection();
    try {
      await conn.query(`USE ${db}`);
      for (const sql of SCHEMA) await conn.query(sql);
    } finally {
      conn.destroy();
    }
  }
}

/** The application's writes, on the migrated database and then on the twin. */
function writers(): { stop: () => Promise<number> } {
  // As an application does: a transaction the server chose as a deadlock's victim is made again.
  const inDb = async (db: string, statements: Statement[]): Promise<void> => {
    const conn = await root.getConnection();
    try {
      await conn.query(`USE ${db}`);
      await conn.query('BEGIN');
      for (const [sql, values] of statements) await conn.query(sql, values);
      await conn.query('COMMIT');
    } catch (error) {
      await conn.query('ROLLBACK').catch(() => {});
      if ((error as { errno?: number }).errno === 1213) return inDb(db, statements);
      throw error;
    } finally {
      conn.release();
    }
  };
  return orderWriters(2, 'mysql', (d, statements) => inDb(d === 0 ? A : TWIN, statements));
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

async function expectLikeNative(): Promise<void> {
  const conn = await root.getConnection();
  try {
    await conn.query(`USE ${TWIN}`);
    // MariaDB changes no type a foreign key uses, whatever foreign_key_checks says: natively the keys
    // go, the three ALTERs run, and the keys come back as they were.
    for (const [table, key] of KEYS) await conn.query(`ALTER TABLE ${table} DROP FOREIGN KEY ${key}`);
    for (const { table, alter } of SET) await conn.query(`ALTER TABLE ${table} ${alter}`);
    for (const [table, key] of KEYS) await conn.query(`ALTER TABLE ${table} ADD CONSTRAINT ${key} FOREIGN KEY (order_id) REFERENCES orders (id)`);
  } finally {
    conn.destroy();
  }
  for (const { table } of SET) {
    const sums = [];
    for (const db of [A, TWIN]) {
      const [[row]] = await root.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE ${db}.${table} EXTENDED`);
      const [[count]] = await root.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${db}.${table}`);
      sums.push(`${row.Checksum} ${count.n}`);
    }
    expect({ table, ours: sums[0] }).toEqual({ table, ours: sums[1] });
  }
  expect(await catalogDifferences(root, A, TWIN)).toEqual([]);
}

describe.each(['stream', 'trigger'] as const)('MariaDB, %s capture: several tables in one cut-over', (capture) => {
  it('under writes to every table, each is exact against a natively altered twin, foreign keys join the new tables, and a joining reader never sees old and new at once', async () => {
    await fresh();
    const load = writers();
    const reader = joiningReader();
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

  it('a revert window for a set is refused in one line before anything is made (its keys would have to move back under the lock set)', async () => {
    await fresh();
    const pairs = SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]);
    const refused = await runCliAsync(['migrate', '--url', urlOf(A), ...pairs, '--revert-window', '1h', '--execute'], urlOf(A));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toBe(
      'shadowcut: --revert-window for several tables in one cut-over is supported on PostgreSQL only, not yet on MySQL/MariaDB; change them without a window\n',
    );
    const [[tables]] = await root.query<mysql.RowDataPacket[]>(
      `SELECT GROUP_CONCAT(TABLE_NAME ORDER BY TABLE_NAME) AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = '${A}'`,
    );
    expect(tables.t).toBe('orders,order_items,payments');
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

  it('a RENAME that fails after the unlock leaves the set swapped in part; nothing is cleaned up, and --resume swaps the rest', async () => {
    await fresh();
    const args = ['--url', urlOf(A), ...SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]), '--chunk-time-ms', '20'];
    // No writers here: between the two runs the application would see new children beside the old
    // parent (their keys referencing its shadow), which is what the resume is for.
    // The seam fails the first table's RENAME (orders, the parent) once it runs: its children are swapped, it is not.
    const first = await runCliAsync(['migrate', ...args, '--execute'], urlOf(A), { SHADOWCUT_TEST_FAIL_AT: 'rename-after-unlock' });
    expect({ code: first.code, stderr: first.stderr.trim().split('\n').pop() }).toEqual({
      code: 2,
      stderr: expect.stringMatching(/swapped only in part \(order_items, payments swapped, orders not\).*--resume/),
    });
    const resumed = await runCliAsync(['migrate', ...args, '--resume', '--execute'], urlOf(A));
    expect({ code: resumed.code, stderr: resumed.code === 0 ? '' : resumed.stderr }).toEqual({ code: 0, stderr: '' });
    await expectLikeNative();
  });
});
