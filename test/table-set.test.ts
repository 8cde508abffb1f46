// Several tables, one cut-over (issue 36): a key widened on a parent and on the children that
// reference it, changed together under writes to every table. Each table must be exact against a
// twin that got the same writes and the server's own ALTERs, the catalog the twin's, and a reader
// that joins the tables must never see the old schema of one beside the new schema of another.
import { mostAtOnce } from './support/most-at-once.js';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { migrateSet } from '../src/core/migrate/sets/migrate-set.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import type { MigrateOptions } from '../src/core/migrate/runner.js';
import { catalogTwins, type CatalogTwins } from './support/pg-catalog-oracle.js';
import { killDuringPhase, killWhenReady } from './support/kill.js';
import { abortLastTableDuringCopy, runState, waitFor } from './support/run.js';
import { inTransaction } from './support/pg.js';
import { orderWriters, type OrderWriters } from './support/order-writes.js';
import { adminPool, mysqlUrl, runCliAsync } from './support/mysql.js';

let twins: CatalogTwins | null = null;

afterEach(async () => {
  await twins?.close();
  twins = null;
});

const SCHEMA = `
  CREATE TABLE orders (id int PRIMARY KEY, note text);
  CREATE TABLE order_items (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders (id), qty int NOT NULL);
  CREATE INDEX order_items_order ON order_items (order_id);
  CREATE TABLE payments (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders (id), amount numeric(14, 2));
  INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 30000) g;
  INSERT INTO order_items SELECT g, (g % 30000) + 1, g % 7 FROM generate_series(1, 60000) g;
  INSERT INTO payments SELECT g, g, g * 1.25 FROM generate_series(1, 30000) g;`;

const SET = [
  { table: 'orders', alter: 'ALTER COLUMN id TYPE bigint, ADD COLUMN placed_at timestamptz' },
  { table: 'order_items', alter: 'ALTER COLUMN order_id TYPE bigint' },
  { table: 'payments', alter: 'ALTER COLUMN order_id TYPE bigint, ALTER COLUMN amount TYPE numeric(18, 4)' },
];
const KEPT = SET.map((s) => `${s.table}__old`);

/** The application's writes, on shadowcut's database and then on the twin. */
function writers(mine: pg.Pool, twin: pg.Pool): OrderWriters {
  return orderWriters(2, 'postgres', (d, statements) => inTransaction(d === 0 ? mine : twin, statements));
}

/**
 * Joins the three tables over and over, noting the types each statement saw. One statement reads
 * one catalog state: a mix of integer and bigint keys would be the set half swapped.
 */
function joiningReader(pool: pg.Pool): { stop: () => Promise<Set<string>> } {
  const seen = new Set<string>();
  let stopped = false;
  const running = (async () => {
    // Reads the shadowcut side only; the load's own failure is its to report.
    while (!stopped) {
      const { rows } = await pool.query(
        `SELECT pg_typeof(o.id)::text || ' ' || pg_typeof(i.order_id)::text || ' ' || pg_typeof(p.order_id)::text AS types
           FROM orders o JOIN order_items i ON i.order_id = o.id JOIN payments p ON p.order_id = o.id LIMIT 1`,
      );
      if (rows.length) seen.add(rows[0].types);
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

/** The three tables' relation ids as one statement saw them, each different tuple once, in order. */
function relationIds(pool: pg.Pool): { stop: () => Promise<string[][]> } {
  const seen: string[][] = [];
  let stopped = false;
  const running = (async () => {
    while (!stopped) {
      const { rows } = await pool.query(
        // The tables read in the statement's FROM, as an application reads them: each is locked as it is read, so a swap is before or after.
        `SELECT (SELECT tableoid::oid::text FROM orders LIMIT 1) AS o, (SELECT tableoid::oid::text FROM order_items LIMIT 1) AS i,
                (SELECT tableoid::oid::text FROM payments LIMIT 1) AS p`,
      );
      const ids = [rows[0].o, rows[0].i, rows[0].p].map(String);
      if (!seen.some((s) => s.join() === ids.join())) seen.push(ids);
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

/** The most WAL senders seen at once beyond those there at the start (a standby's). */
function walSenders(pool: pg.Pool): { stop: () => Promise<number> } {
  return mostAtOnce(async () => Number((await pool.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'walsender'`)).rows[0].n));
}

async function rowsOf(pool: pg.Pool, table: string): Promise<string> {
  const { rows } = await pool.query(`SELECT coalesce(json_agg(t ORDER BY t.id)::text, '[]') AS j FROM ${table} t`);
  return rows[0].j;
}

async function expectLikeNative(t: CatalogTwins): Promise<void> {
  for (const { table, alter } of SET) await t.alterTwin(table, alter);
  for (const { table } of SET) expect({ table, same: (await rowsOf(t.pool, table)) === (await rowsOf(t.twin, table)) }).toEqual({ table, same: true });
  expect(await t.difference(KEPT)).toEqual([]);
}

describe.each(['stream', 'trigger'] as const)('PostgreSQL, %s capture: several tables in one cut-over', (capture) => {
  it('a set in its revert window, killed and resumed, goes back together; complete on one table ends every window with the new schema', async () => {
    twins = await catalogTwins(`set_back_kill_${capture}`);
    await twins.setup(SCHEMA);
    const t = twins;
    const pairs = SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]);
    const load = writers(t.pool, t.twin);
    const crash = await killDuringPhase(['--url', t.url, ...pairs, '--capture', capture, '--revert-window', '10m'], 'revert window', 500);
    expect(crash.killed, crash.stderr).toBe(true);
    const resumed = runCliAsync(['migrate', '--url', t.url, ...pairs, '--capture', capture, '--revert-window', '10m', '--resume', '--execute'], t.url);
    const status = async (table: string) => (await runCliAsync(['status', '--table', table], t.url)).stdout;
    try {
      for (const { table } of SET) await waitFor(`${table}'s resumed window`, async () => /revert window/.test(await status(table)), null, 120_000);
      expect((await runCliAsync(['revert', '--table', 'orders'], t.url)).code).toBe(0);
    } finally {
      const done = await resumed;
      expect({ code: done.code, stderr: done.code === 0 ? '' : done.stderr }).toEqual({ code: 0, stderr: '' });
    }
    await load.stop();
    for (const { table } of SET) expect({ table, same: (await rowsOf(t.pool, table)) === (await rowsOf(t.twin, table)) }).toEqual({ table, same: true });
    expect(await t.difference(SET.map((s) => `${s.table}__new`))).toEqual([]);

    // Again, ended by complete on one table: every table keeps its new schema, and the window ends for all.
    await t.pool.query(`DROP TABLE ${SET.map((s) => `${s.table}__new`).join(', ')}`);
    const run = runCliAsync(['migrate', '--url', t.url, ...pairs, '--capture', capture, '--revert-window', '10m', '--execute'], t.url);
    try {
      for (const { table } of SET) await waitFor(`${table}'s revert window`, async () => /revert window/.test(await status(table)), null, 120_000);
      expect((await runCliAsync(['complete', '--table', 'order_items'], t.url)).code).toBe(0);
    } finally {
      const done = await run;
      expect({ code: done.code, stderr: done.code === 0 ? '' : done.stderr }).toEqual({ code: 0, stderr: '' });
    }
    for (const { table, alter } of SET) await t.alterTwin(table, alter);
    for (const { table } of SET) expect({ table, same: (await rowsOf(t.pool, table)) === (await rowsOf(t.twin, table)) }).toEqual({ table, same: true });
    expect(await t.difference(SET.map((s) => `${s.table}__old`))).toEqual([]);
  });

  it("with a revert window, one table's revert takes the whole set back in one swap, under writes: every table equals the twin that never took the ALTERs", async () => {
    twins = await catalogTwins(`set_back_${capture}`);
    await twins.setup(SCHEMA);
    const back = SET;
    const t = twins;
    const load = writers(t.pool, t.twin);
    const ids = relationIds(t.pool);
    const run = runCliAsync(
      [
        'migrate',
        '--url',
        t.url,
        ...back.flatMap((s) => ['--table', s.table, '--alter', s.alter]),
        '--capture',
        capture,
        '--revert-window',
        '10m',
        '--execute',
      ],
      t.url,
    );
    const status = async (table: string) => (await runCliAsync(['status', '--table', table], t.url)).stdout;
    try {
      for (const { table } of back) await waitFor(`${table}'s revert window`, async () => /revert window/.test(await status(table)), null, 120_000);
      // The new tables take writes (twenty transactions), which must follow back.
      const from = load.committed();
      await waitFor('writes on the new tables', () => load.committed() >= from + 20, null, 60_000);
      // One table asked: the set goes back.
      expect((await runCliAsync(['revert', '--table', 'payments'], t.url)).code).toBe(0);
    } finally {
      const done = await run;
      expect({ code: done.code, stderr: done.code === 0 ? '' : done.stderr }).toEqual({ code: 0, stderr: '' });
    }
    await load.stop();
    // Forward and back, each swap one transaction: the three tables' relations change together, never one without the others.
    const seen = await ids.stop();
    expect(seen.length, JSON.stringify(seen)).toBe(2);
    expect(
      seen[0].every((id, i) => id !== seen[1][i]),
      JSON.stringify(seen),
    ).toBe(true);
    for (const { table } of back) expect({ table, same: (await rowsOf(t.pool, table)) === (await rowsOf(t.twin, table)) }).toEqual({ table, same: true });
    expect(await t.difference(back.map((s) => `${s.table}__new`))).toEqual([]);
  });

  it('under writes to every table, every table is exact against natively altered twins and a joining reader never sees old and new at once', async () => {
    twins = await catalogTwins(`set_${capture}`);
    await twins.setup(SCHEMA);
    const load = writers(twins.pool, twins.twin);
    const reader = joiningReader(twins.pool);
    const engine = await createPostgresEngine(twins.url);
    let results;
    try {
      const options: Partial<MigrateOptions> = { execute: true, chunkTimeMs: 20, checksumChunkRows: 2000 };
      results = await migrateSet(
        engine,
        SET.map((s) => ({ url: twins!.url, ...s, capture })),
        SET.map(() => options),
      );
    } finally {
      await engine.close();
    }
    const committed = await load.stop();
    const seen = await reader.stop();
    expect(committed).toBeGreaterThan(20);
    // The reader ran across the swap: it saw both schemas, each whole, and never a mix.
    expect([...seen].sort()).toEqual(['bigint bigint bigint', 'integer integer integer']);
    // One swap: every table reports the same cut-over.
    expect(new Set(results.map((r) => r!.cutoverLockedMs)).size).toBe(1);
    expect(results.map((r) => r!.path)).toEqual(['copy', 'copy', 'copy']);
    await expectLikeNative(twins);
  });
});

describe('PostgreSQL: a set whose before-revert hook says no on one table', () => {
  it('no table goes back and every window goes on; asked again, the set goes back together', async () => {
    twins = await catalogTwins('set_hook_no');
    await twins.setup(SCHEMA);
    const t = twins;
    // Says no once, for whichever table asks first; yes after that.
    const hooks = mkdtempSync(path.join(os.tmpdir(), 'sc-set-hooks-'));
    const said = path.join(hooks, 'said-no');
    writeFileSync(path.join(hooks, 'before-revert'), `#!/bin/sh\nif [ -e '${said}' ]; then exit 0; fi\necho "$SHADOWCUT_TABLE" > '${said}'\nexit 1\n`, {
      mode: 0o755,
    });
    const pairs = SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]);
    const run = runCliAsync(['migrate', '--url', t.url, ...pairs, '--revert-window', '10m', '--hooks-dir', hooks, '--execute'], t.url);
    const status = async (table: string) => (await runCliAsync(['status', '--table', table], t.url)).stdout;
    try {
      for (const { table } of SET) await waitFor(`${table}'s revert window`, async () => /revert window/.test(await status(table)), null, 120_000);
      expect((await runCliAsync(['revert', '--table', 'orders'], t.url)).code).toBe(0);
      await waitFor('the hook to say no', async () => existsSync(said), null, 60_000);
      // The round failed for all: each window is open again, and no table changed hands.
      for (const { table } of SET) await waitFor(`${table}'s window again`, async () => /revert window/.test(await status(table)), null, 60_000);
      for (const { table } of SET) expect({ table, type: await keyType(t.pool, table) }).toEqual({ table, type: 'bigint' });
      expect((await runCliAsync(['revert', '--table', 'order_items'], t.url)).code).toBe(0);
    } finally {
      const done = await run;
      expect({ code: done.code, stderr: done.code === 0 ? '' : done.stderr }).toEqual({ code: 0, stderr: '' });
      expect(done.stderr).toMatch(/did not go back .*nothing was swapped, the revert window goes on/);
      rmSync(hooks, { recursive: true, force: true });
    }
    for (const { table } of SET) expect({ table, same: (await rowsOf(t.pool, table)) === (await rowsOf(t.twin, table)) }).toEqual({ table, same: true });
    expect(await t.difference(SET.map((s) => `${s.table}__new`))).toEqual([]);
  });
});

/** The type of the table's order key column: `id` on orders, `order_id` on the others. */
async function keyType(pool: pg.Pool, table: string): Promise<string> {
  const column = table === 'orders' ? 'id' : 'order_id';
  const { rows } = await pool.query(`SELECT format_type(atttypid, NULL) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2`, [
    table,
    column,
  ]);
  return String(rows[0].t);
}

describe('PostgreSQL: a set fails or resumes as one', () => {
  it('a table the checks refuse leaves every table of the set untouched, with nothing made', async () => {
    twins = await catalogTwins('set_refused');
    await twins.setup(SCHEMA);
    const engine = await createPostgresEngine(twins.url);
    try {
      const refused = migrateSet(
        engine,
        [...SET.slice(0, 2), { table: 'payments', alter: 'ALTER COLUMN no_such_column TYPE bigint' }].map((s) => ({ url: twins!.url, ...s })),
        // Copied without asking the server first: the other tables pass their checks and wait for this one's.
        SET.map(() => ({ execute: true, forceCopy: true })),
      );
      await expect(refused).rejects.toThrow(/no_such_column/);
    } finally {
      await engine.close();
    }
    // Nothing of the run is left: the database is the twin's, which was never touched.
    expect(await twins.difference()).toEqual([]);
  });

  it("an operator's abort of one table during the copy stops the whole set, and every table is left as it was", async () => {
    twins = await catalogTwins('set_aborted');
    await twins.setup(SCHEMA);
    const engine = await createPostgresEngine(twins.url);
    const states = SET.map((s) => runState(`public.${s.table}`, s.alter, 'postgres', { maxRowsPerSec: 20_000 }));
    try {
      await abortLastTableDuringCopy(
        states,
        migrateSet(
          engine,
          SET.map((s) => ({ url: twins!.url, ...s })),
          states.map((state) => ({ execute: true, forceCopy: true, state })),
        ),
      );
    } finally {
      await engine.close();
    }
    // Every table's shadow, capture and checkpoint gone: the database is the untouched twin's.
    expect(await twins.difference()).toEqual([]);
  });

  it.each([
    { name: 'set_cleanup', first: 'payments', checkpoints: true },
    // What a kill between the slot and the first checkpoint leaves: the slot and its publication, no checkpoint naming them.
    { name: 'set_cleanup_early', first: 'order_items', checkpoints: false },
  ])(
    "killed during the copy and cleaned up table by table (checkpoints kept: $checkpoints): the set's one slot and publication go with the first, found by the checkpoint or the publication, and nothing is left",
    async ({ name, first, checkpoints }) => {
      twins = await catalogTwins(name);
      await twins.setup(SCHEMA);
      const args = ['--url', twins.url, ...SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]), '--capture', 'stream', '--chunk-time-ms', '20'];
      const crash = await killDuringPhase(args, 'copy', 200);
      expect({ killed: crash.killed, stderr: crash.stderr }).toEqual({ killed: true, stderr: '' });
      if (!checkpoints) for (const s of SET) await twins.pool.query(`DROP TABLE IF EXISTS ${s.table}__state`);
      const ours = async () =>
        (await twins!.pool.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'shadowcut\\_set\\_%' AND database = current_database()`))
          .rows.length;
      expect(await ours()).toBe(1);
      const cleaned = await runCliAsync(['cleanup', '--url', twins.url, '--table', first], twins.url);
      expect({ code: cleaned.code, stdout: cleaned.stdout }).toEqual({ code: 0, stdout: expect.stringMatching(/replication slot shadowcut_set_/) });
      expect(await ours()).toBe(0);
      for (const { table } of SET.filter((s) => s.table !== first))
        expect((await runCliAsync(['cleanup', '--url', twins.url, '--table', table], twins.url)).code).toBe(0);
      expect(await twins.difference()).toEqual([]);
    },
  );

  it('killed during the copy or at the cut-over and resumed, the set swaps once and every table is exact', async () => {
    for (const [phase, delayMs] of [
      ['verify', 0],
      ['cutover', 0],
    ] as const) {
      twins = await catalogTwins(`set_resume_${phase}`);
      await twins.setup(SCHEMA);
      const args = ['--url', twins.url, ...SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]), '--chunk-time-ms', '20'];
      const load = writers(twins.pool, twins.twin);
      const crash = await killDuringPhase(args, phase, delayMs);
      expect({ phase, killed: crash.killed, stderr: crash.stderr }).toEqual({ phase, killed: true, stderr: '' });
      const resumed = await runCliAsync(['migrate', ...args, '--resume', '--execute'], twins.url);
      await load.stop();
      expect({ phase, code: resumed.code, stdout: resumed.stdout, stderr: resumed.code === 0 ? '' : resumed.stderr }).toEqual({
        phase,
        code: 0,
        stdout: expect.stringMatching(/set: 3 tables swapped in one cut-over/),
        stderr: '',
      });
      await expectLikeNative(twins);
      await twins.close();
      twins = null;
    }
  });

  // A kill while one member had made its shadow and joined the set's stream, but not yet saved its
  // first checkpoint, and the others had theirs (CI saw it with a kill at 'verify'). Dropping that
  // member's checkpoint after a kill in the copy leaves the same, every time; on a slow machine the
  // kill can come before the member saved any, which is the same case.
  it.each(['stream', 'trigger'] as const)(
    "%s capture: killed before one table's first checkpoint and resumed, that table starts afresh, its shadow made again, and the set swaps once",
    async (capture) => {
      const made = await catalogTwins(`set_unsaved_${capture}`);
      twins = made;
      await twins.setup(SCHEMA);
      const args = ['--url', twins.url, ...SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]), '--chunk-time-ms', '20', '--capture', capture];
      const load = writers(twins.pool, twins.twin);
      // Killed once every other member saved a checkpoint: a kill before any, on a slow machine, left
      // the set nothing to resume from (exit 5, EXIT_NO_CHECKPOINT).
      const saved = async (table: string) =>
        made.pool.query(`SELECT COUNT(*) AS n FROM ${table}__state`).then(
          ({ rows }) => Number(rows[0].n) > 0,
          () => false, // not made yet
        );
      const others = SET.filter((s) => s.table !== 'order_items');
      const crash = await killWhenReady(args, 'copy', async () => (await Promise.all(others.map((s) => saved(s.table)))).every(Boolean));
      expect({ killed: crash.killed, stderr: crash.stderr }).toEqual({ killed: true, stderr: '' });
      await twins.pool.query('DROP TABLE IF EXISTS order_items__state');
      const resumed = await runCliAsync(['migrate', ...args, '--resume', '--execute'], twins.url);
      await load.stop();
      expect({ code: resumed.code, stdout: resumed.stdout, stderr: resumed.code === 0 ? '' : resumed.stderr }).toEqual({
        code: 0,
        stdout: expect.stringMatching(/set: 3 tables swapped in one cut-over/),
        stderr: '',
      });
      await expectLikeNative(twins);
    },
  );
});

describe('PostgreSQL: a set planned and operated', () => {
  it('plan prints each table and the set: copied together because one table needs the copy', async () => {
    twins = await catalogTwins('set_plan');
    await twins.setup(SCHEMA);
    const pairs = [
      { table: 'orders', alter: 'ADD COLUMN placed_at timestamptz' },
      { table: 'order_items', alter: 'ALTER COLUMN order_id TYPE bigint' },
    ];
    const planned = await runCliAsync(['plan', '--url', twins.url, ...pairs.flatMap((p) => ['--table', p.table, '--alter', p.alter]), '--json'], twins.url);
    expect({ code: planned.code, stderr: planned.stderr }).toEqual({ code: 0, stderr: '' });
    const events = planned.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; detail?: { table: string; path: string }; path?: string; pathReason?: string; tables?: string[] });
    expect(events.map((e) => [e.event, e.detail?.table ?? e.tables, e.detail?.path ?? e.path])).toEqual([
      ['plan', 'public.orders', 'copy'],
      ['plan', 'public.order_items', 'copy'],
      ['set', ['public.orders', 'public.order_items'], 'copy'],
    ]);
    expect(events[2].pathReason).toMatch(/^public\.order_items needs the copy/);
    expect(await twins.difference()).toEqual([]);
  });

  it('each table answers status naming the set; a postponed set swaps once every table was asked to cut over', async () => {
    twins = await catalogTwins('set_operated');
    await twins.setup(SCHEMA);
    const t = twins;
    const run = runCliAsync(
      ['migrate', '--url', t.url, ...SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]), '--postpone-cutover', '--execute'],
      t.url,
    );
    const status = async (table: string) => (await runCliAsync(['status', '--table', table], t.url)).stdout;
    for (const { table } of SET) await waitFor(`${table} postponed`, async () => /postponed/.test(await status(table)), null, 60_000);
    expect(await status('orders')).toMatch(/set\s+public\.orders, public\.order_items, public\.payments: one cut-over for all/);
    for (const { table } of SET.slice(0, 2)) expect((await runCliAsync(['cutover', '--table', table], t.url)).code).toBe(0);
    // Two of the three asked: they wait at the swap for the third, and nothing is swapped.
    await new Promise((r) => setTimeout(r, 2000));
    expect(
      (await t.pool.query(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'id'`)).rows,
    ).toEqual([{ t: 'integer' }]);
    expect((await runCliAsync(['cutover', '--table', 'payments'], t.url)).code).toBe(0);
    const done = await run;
    expect({ code: done.code, stdout: done.stdout }).toEqual({ code: 0, stdout: expect.stringMatching(/set: 3 tables swapped in one cut-over/) });
    await expectLikeNative(t);
  });
});

describe('a set the server can change in place, every table', () => {
  it('PostgreSQL: each table is changed in place, nothing is copied', async () => {
    twins = await catalogTwins('set_in_place');
    await twins.setup(SCHEMA);
    const engine = await createPostgresEngine(twins.url);
    try {
      const pairs = [
        { table: 'orders', alter: 'ADD COLUMN placed_at timestamptz' },
        { table: 'payments', alter: 'ADD COLUMN settled boolean' },
      ];
      const results = await migrateSet(
        engine,
        pairs.map((p) => ({ url: twins!.url, ...p })),
        pairs.map(() => ({ execute: true })),
      );
      expect(results.map((r) => [r!.path, r!.rowsCopied])).toEqual([
        ['in-place', 0],
        ['in-place', 0],
      ]);
      for (const p of pairs) await twins.alterTwin(p.table, p.alter);
      expect(await twins.difference()).toEqual([]);
    } finally {
      await engine.close();
    }
  });

  it('MySQL/MariaDB: each table is changed in place, nothing is copied', async () => {
    const pool = adminPool();
    const engine = await createMysqlEngine(mysqlUrl());
    try {
      await pool.query('DROP TABLE IF EXISTS set_b, set_a');
      await pool.query('CREATE TABLE set_a (id int PRIMARY KEY)');
      await pool.query('CREATE TABLE set_b (id int PRIMARY KEY, a_id int NOT NULL)');
      const results = await migrateSet(
        engine,
        [
          { url: mysqlUrl(), table: 'set_a', alter: 'ADD COLUMN note varchar(20)' },
          { url: mysqlUrl(), table: 'set_b', alter: 'ADD COLUMN qty int' },
        ],
        [{ execute: true }, { execute: true }],
      );
      expect(results.map((r) => r!.path)).toEqual(['in-place', 'in-place']);
      const [columns] = await pool.query(
        "SELECT concat(TABLE_NAME, '.', COLUMN_NAME) AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('set_a', 'set_b') ORDER BY 1",
      );
      expect((columns as { c: string }[]).map((r) => r.c)).toEqual(['set_a.id', 'set_a.note', 'set_b.a_id', 'set_b.id', 'set_b.qty']);
    } finally {
      await engine.close();
      await pool.query('DROP TABLE IF EXISTS set_b, set_a');
      await pool.end();
    }
  });
});

describe('the command line', () => {
  it('a --table without its --alter is refused in one line before anything is made', async () => {
    const pool = adminPool();
    try {
      await pool.query('DROP TABLE IF EXISTS set_b, set_a');
      await pool.query('CREATE TABLE set_a (id int PRIMARY KEY)');
      await pool.query('CREATE TABLE set_b (id int PRIMARY KEY, a_id int NOT NULL)');
      const cli = await runCliAsync(['migrate', '--url', '$URL', '--table', 'set_a', '--alter', 'MODIFY id BIGINT NOT NULL', '--table', 'set_b', '--execute']);
      expect({ code: cli.code, stderr: cli.stderr.trim() }).toEqual({ code: 2, stderr: expect.stringMatching(/^[^\n]*one --alter for each --table[^\n]*$/) });
      const [tables] = await pool.query("SHOW TABLES LIKE 'set\\_%'");
      expect((tables as object[]).map((r) => Object.values(r)[0]).sort()).toEqual(['set_a', 'set_b']);
    } finally {
      await pool.query('DROP TABLE IF EXISTS set_b, set_a');
      await pool.end();
    }
  });
});

describe('PostgreSQL: a set takes one replication slot and one WAL sender', () => {
  it('with no slot free, --capture stream is refused in one line and auto takes triggers; with one free, stream copies the three tables through it', async () => {
    twins = await catalogTwins('set_slots');
    await twins.setup(SCHEMA);
    const { rows } = await twins.pool.query(`SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)::int AS free`);
    // Physical slots count as logical ones do, and need no WAL sender: all taken, then all but one.
    const fillers = Array.from({ length: Number(rows[0].free) }, (_, i) => `set_slots_filler_${i}`);
    const pairs = SET.flatMap((s) => ['--table', s.table, '--alter', s.alter]);
    try {
      for (const slot of fillers) await twins.pool.query('SELECT pg_create_physical_replication_slot($1)', [slot]);
      const refused = await runCliAsync(['migrate', '--url', twins.url, ...pairs, '--capture', 'stream', '--execute'], twins.url);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr.trim().split('\n').pop()).toMatch(/^shadowcut: .*all \d+ replication slots are in use/);
      expect(refused.stderr).not.toMatch(/\n\s+at /);
      expect(await twins.difference()).toEqual([]);
      const planned = await runCliAsync(['plan', '--url', twins.url, ...pairs, '--json'], twins.url);
      expect({ code: planned.code, stderr: planned.stderr }).toEqual({ code: 0, stderr: '' });
      const captures = planned.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { event: string; detail?: { capture: { kind: string } | null } })
        .filter((e) => e.event === 'plan')
        .map((e) => e.detail?.capture?.kind);
      expect(captures).toEqual(['trigger', 'trigger', 'trigger']);

      await twins.pool.query('SELECT pg_drop_replication_slot($1)', [fillers.pop()]);
      const senders = walSenders(twins.pool);
      const load = writers(twins.pool, twins.twin);
      const done = await runCliAsync(['migrate', '--url', twins.url, ...pairs, '--capture', 'stream', '--chunk-time-ms', '20', '--execute'], twins.url);
      await load.stop();
      const most = await senders.stop();
      expect({ code: done.code, stdout: done.stdout, stderr: done.code === 0 ? '' : done.stderr }).toEqual({
        code: 0,
        stdout: expect.stringMatching(/set: 3 tables swapped in one cut-over/),
        stderr: '',
      });
      // Three tables followed by one walsender: the old code took one per table (and was refused here).
      expect(most).toBe(1);
      await expectLikeNative(twins);
    } finally {
      for (const slot of fillers) await twins.pool.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => {});
    }
  });
});
