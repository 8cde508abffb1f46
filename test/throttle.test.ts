import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { AbortedError } from '../src/core/engine/errors.js';
import { databases, expectMirrored, migrateOn, useDatabase, type Database } from './support/fixture.js';
import { mysqlDatabase } from './support/mysql.js';
import { background, runState, untilHeldFor, waitFor } from './support/run.js';
import { MirrorWorkload, OwnedIds, type Statement } from './support/workload.js';

// Each engine's words for the same table and ALTER. Both seeds are large enough that the copy
// outlasts --max-lag-ms several times over even on a fast, idle machine (at 40k rows a MariaDB run
// finished in 0.9 s, before the lag from a fresh heartbeat, which starts at 0, passed 500 ms).
const dialects = {
  mysql: {
    seed: 250_000,
    alter: 'ADD COLUMN note VARCHAR(100) NULL, MODIFY qty BIGINT NOT NULL',
    create: (t: string) => `CREATE TABLE ${t} (id INT PRIMARY KEY, qty INT NOT NULL, label VARCHAR(64), at DATETIME(6) NOT NULL) ENGINE=InnoDB`,
    at: `'2024-01-01 00:00:00.000001' + INTERVAL g SECOND`,
    zone: '',
  },
  postgres: {
    seed: 300_000,
    alter: `ADD COLUMN note text DEFAULT 'none', ALTER COLUMN qty TYPE bigint`,
    create: (t: string) => `CREATE TABLE ${t} (id int8 PRIMARY KEY, qty int NOT NULL, label text, at timestamptz NOT NULL)`,
    at: `'2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1.000001 second'`,
    zone: '+00',
  },
};

async function freshTable(db: Database, name: string, rows: number): Promise<void> {
  const dialect = dialects[db.kind];
  await db.drop(name);
  await db.query(dialect.create(name));
  await db.query(`INSERT INTO ${name} SELECT g, g % 13, CONCAT('row ', g), ${dialect.at} FROM (${db.series(rows)}) s`);
}

/** Updates, inserts, deletes and key changes; worker w owns the ids congruent to w mod 3. */
function writes(db: Database, seed: number): (worker: number) => Statement {
  const zone = dialects[db.kind].zone;
  const p = (n: number) => db.param(n);
  const ids = new OwnedIds(seed, 1_000_000);
  return (w) => {
    const r = Math.random();
    if (r < 0.4 && ids.size(w)) {
      // A client-side value: a server function would differ between the table and its mirror.
      const micros = String(Math.floor(Math.random() * 1_000_000)).padStart(6, '0');
      return { sql: `UPDATE {t} SET qty = qty + 1, at = ${p(1)} WHERE id = ${p(2)}`, values: [`2025-06-01 12:00:00.${micros}${zone}`, ids.pick(w)] };
    }
    if (r < 0.65 || ids.size(w) < 100) {
      return { sql: `INSERT INTO {t} (id, qty, label, at) VALUES (${p(1)}, 1, 'new', '2025-01-01 00:00:00.000002${zone}')`, values: [ids.fresh(w)] };
    }
    if (r < 0.8) return { sql: `DELETE FROM {t} WHERE id = ${p(1)}`, values: [ids.remove(w)] };
    const from = ids.remove(w);
    return { sql: `UPDATE {t} SET id = ${p(1)} WHERE id = ${p(2)}`, values: [ids.fresh(w), from] };
  };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe.each(databases)('$name: replica lag', ({ open, kind }) => {
  const db = useDatabase(open, 'th_orders', 'th_orders_mirror', 'th_small');
  const { seed, alter, create } = dialects[kind];

  it('holds back without cutting over while the replica stops applying, then finishes with parity under writes', async () => {
    await freshTable(db, 'th_orders', seed);
    await db.drop('th_orders_mirror');
    await db.query(create('th_orders_mirror'));
    await db.query('INSERT INTO th_orders_mirror SELECT * FROM th_orders');
    const schemaBefore = await db.schema('th_orders');
    const state = runState('th_orders', alter, db.kind, { maxLagMs: 500 });
    const load = new MirrorWorkload(db, ['th_orders', 'th_orders_mirror'], writes(db, seed));

    await db.replica.pause();
    try {
      load.start();
      const run = migrateOn(db, 'th_orders', alter, { replicas: [db.replica.url], state, chunkTimeMs: 50, checksumChunkRows: 5000 });
      const outcome = background(run);
      await waitFor('a throttle on replica lag', () => state.status.state === 'throttled', outcome);
      expect(state.status.throttleReason).toMatch(/^replica lag \d+ ms > 500 ms$/);

      // Held: for as long as the replica stays paused, nothing is copied and nothing is cut over.
      const copied = state.status.rowsCopied;
      await untilHeldFor(state, 'replica', 3000, outcome);
      expect(outcome.settled).toBe(false);
      expect(state.status.state).toBe('throttled');
      expect(state.status.rowsCopied).toBe(copied);
      expect(await db.schema('th_orders')).toBe(schemaBefore);
      expect(await db.helpers('th_orders')).toContain('th_orders__hb');

      await db.replica.resume();
      const result = await run;
      await load.untilMoreWrites(); // writes after the cut-over land in the new table
      const stats = await load.stop();

      await db.query(`ALTER TABLE th_orders_mirror ${alter}`);
      expect(stats.errors).toEqual([]);
      expect(result.changesApplied).toBeGreaterThan(0);
      expect(state.status.state).toBe('done');
      expect(state.status.maxLagSeenMs).toBeGreaterThan(500);
      expect(state.status.throttledMs.replica).toBeGreaterThan(0);
      await expectMirrored(db, 'th_orders', 'th_orders_mirror');
    } finally {
      await load.stop();
      await db.replica.resume();
    }
  });

  it('fails closed on a replica it cannot reach, naming it, and an abort then leaves nothing behind', async () => {
    await freshTable(db, 'th_small', 5000);
    const schemaBefore = await db.schema('th_small');
    const port = await closedPort();
    const unreachable = new URL(db.url);
    unreachable.password = 'secret';
    unreachable.host = `127.0.0.1:${port}`;
    const state = runState('th_small', alter, db.kind, {});
    const run = migrateOn(db, 'th_small', alter, { replicas: [unreachable.href], state });
    const outcome = background(run);
    await waitFor('a throttle on the unreachable replica', () => state.status.state === 'throttled', outcome);
    const shown = `${unreachable.protocol}//${unreachable.username}:***@127.0.0.1:${port}${unreachable.pathname}`;
    expect(state.status.throttleReason).toMatch(new RegExp(`^replica ${shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} cannot be measured \\(.*ECONNREFUSED`));

    state.abortReason = 'operator gave up';
    await expect(run).rejects.toThrow(/aborted: operator gave up/);
    expect(await db.helpers('th_small')).toEqual([]);
    expect(await db.schema('th_small')).toBe(schemaBefore);
  });
});

describe.each(databases)('$name: --throttle-query', ({ open, kind }) => {
  const db = useDatabase(open, 'th_small', 'th_small_copy', 'th_gate');
  const alter = dialects[kind].alter;

  it('holds the copy back while it returns more than 0; once it returns 0 the run finishes with parity', async () => {
    await freshTable(db, 'th_small', 5_000);
    await db.drop('th_gate', 'th_small_copy');
    await db.query('CREATE TABLE th_gate (closed INT NOT NULL)');
    await db.query('INSERT INTO th_gate VALUES (1)');
    await db.query('CREATE TABLE th_small_copy AS SELECT * FROM th_small');
    const state = runState('th_small', alter, db.kind);
    const run = migrateOn(db, 'th_small', alter, { state, throttleQuery: 'SELECT SUM(closed) FROM th_gate' });
    const watch = background(run);
    try {
      await waitFor('the throttle query to hold the copy back', () => state.status.throttleReason === 'throttle query returned 1', watch);
      expect(state.status.rowsCopied).toBe(0);
      await db.query('UPDATE th_gate SET closed = 0');
      expect((await run).rowsCopied).toBe(5_000);
    } finally {
      await db.drop('th_gate');
    }
    await db.query(`ALTER TABLE th_small_copy ADD PRIMARY KEY (id), ${alter}`);
    expect(await db.differences('th_small', 'th_small_copy')).toEqual([]);
  });
});

describe('MariaDB server load', () => {
  const db = useDatabase(mysqlDatabase, 'th_small');
  const alter = dialects.mysql.alter;

  // Threads_running counts the SHOW STATUS that reads it, so it is never below 1: a limit of 1 always applies.
  it('critical load aborts cleanly, leaving the original as it was and no helper table', async () => {
    await freshTable(db, 'th_small', 5000);
    const schemaBefore = await db.schema('th_small');
    const run = migrateOn(db, 'th_small', alter, { criticalLoad: { Threads_running: 1 } });
    await expect(run).rejects.toThrow(AbortedError);
    await expect(run).rejects.toThrow(/aborted: critical load: Threads_running=\d+ reached 1/);
    expect(await db.helpers('th_small')).toEqual([]);
    expect(await db.schema('th_small')).toBe(schemaBefore);
  });

  it('with --critical-load-hibernate-seconds, critical load holds the copy back instead, and the run goes on once it passes', async () => {
    await freshTable(db, 'th_small', 5000);
    const state = runState('th_small', alter, 'mysql', { criticalLoad: { Threads_running: 1 } });
    const run = migrateOn(db, 'th_small', alter, { state, criticalLoadHibernateSeconds: 1 });
    const outcome = background(run);
    await waitFor('hibernation', () => state.status.state === 'throttled', outcome);
    expect(state.status.throttleReason).toMatch(/^critical load: Threads_running=\d+ reached 1; hibernating 1 s$/);
    expect(state.status.rowsCopied).toBe(0);
    state.set('critical-load', '');
    await run;
    expect(state.status.state).toBe('done');
    expect(state.status.rowsCopied).toBe(5000);
    expect(state.status.throttledMs.critical).toBeGreaterThan(0);
  });

  it('max load holds back without cutting over, and the run goes on once the limit is lifted', async () => {
    await freshTable(db, 'th_small', 5000);
    const schemaBefore = await db.schema('th_small');
    // The operator's spelling of the name need not match the server's.
    const state = runState('th_small', alter, 'mysql', { maxLoad: { threads_running: 1 } });
    const run = migrateOn(db, 'th_small', alter, { state });
    const outcome = background(run);
    await waitFor('a throttle on load', () => state.status.state === 'throttled', outcome);
    expect(state.status.throttleReason).toMatch(/^load: threads_running=\d+ >= 1$/);
    await untilHeldFor(state, 'load', 1000, outcome);
    expect(state.status.state).toBe('throttled');
    expect(state.status.rowsCopied).toBe(0);
    expect(await db.schema('th_small')).toBe(schemaBefore);

    state.set('max-load', ''); // as `shadowcut set max-load ""` does through the control endpoint
    await run;
    expect(state.status.state).toBe('done');
    const [[n, nulls]] = await db.query('SELECT COUNT(*) n, SUM(note IS NULL) nulls FROM th_small');
    expect([Number(n), Number(nulls)]).toEqual([5000, 5000]);
    expect(await db.helpers('th_small')).toEqual(['th_small__old']);
  });
});

describe.each(databases)('$name: the redo log', ({ open, kind }) => {
  const db = useDatabase(open, 'th_redo');
  const { seed, alter } = dialects[kind];
  it("--max-redo-fill: MariaDB holds the copy back at that fill of InnoDB's redo log, and goes on once the limit is lifted; PostgreSQL has no such wait to keep clear of", async () => {
    await freshTable(db, 'th_redo', seed);
    // 1%: the seed's own writes, or the first chunks', pass it at once.
    const state = runState('th_redo', alter, kind, { maxRedoFill: 1 });
    const run = migrateOn(db, 'th_redo', alter, { state });
    if (kind === 'postgres') {
      await run;
      expect(state.status.throttledMs.redo).toBeUndefined();
      return;
    }
    const outcome = background(run);
    await waitFor('a hold on the redo log', () => state.status.throttleKind === 'redo', outcome);
    expect(state.status.throttleReason).toBe('redo log 1% full: letting the server flush it down to 0%');
    const copied = state.status.rowsCopied;
    await untilHeldFor(state, 'redo', 1000, outcome);
    expect(state.status.throttleKind).toBe('redo');
    expect(state.status.rowsCopied).toBe(copied);
    expect(copied).toBeLessThan(seed);
    state.set('max-redo-fill', '0');
    await run;
    expect(state.status.state).toBe('done');
    expect(Number((await db.query('SELECT COUNT(*) FROM th_redo'))[0][0])).toBe(seed);
  });
});

describe.each(databases)('$name: --max-writer-slowdown', ({ open, kind }) => {
  const db = useDatabase(open, 'th_pace');
  const { seed, alter } = dialects[kind];
  // Each engine's way to make every write of the heartbeat slow: a trigger that sleeps.
  const slowWrites =
    kind === 'mysql'
      ? ['CREATE TRIGGER th_pace_slow BEFORE INSERT ON th_pace__hb FOR EACH ROW SET @slept = SLEEP(0.3)']
      : [
          `CREATE OR REPLACE FUNCTION th_pace_slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.3); RETURN NEW; END $$`,
          'CREATE TRIGGER th_pace_slow BEFORE INSERT OR UPDATE ON th_pace__hb FOR EACH ROW EXECUTE FUNCTION th_pace_slow()',
        ];

  it('with no replica writes the heartbeat, takes its baseline before the copy, rests while its writes are slow, and leaves nothing behind', async () => {
    await freshTable(db, 'th_pace', seed);
    // A copy of at least five seconds, so the stand-in's writes are seen slow while it runs.
    const state = runState('th_pace', alter, kind, { maxWriterSlowdown: 2, maxRowsPerSec: seed / 5 });
    const info: string[] = [];
    const report = { phase() {}, progress() {}, info: (m: string) => void info.push(m), warn: (m: string) => void info.push(m), close() {} };
    const run = migrateOn(db, 'th_pace', alter, { state, reporter: report });
    const outcome = background(run);
    await waitFor('the copy to start', () => state.status.rowsCopied > 0, outcome);
    const said = info.find((m) => m.startsWith('pacing by the writers'));
    expect(said).toMatch(
      /^pacing by the writers: a stand-in write took up to [\d.]+ ms \(90th percentile\) before the copy; the copy keeps it under [\d.]+ ms$/,
    );
    // Every stand-in write now takes 300 ms, over any limit the baseline allows: the copy rests.
    for (const sql of slowWrites) await db.query(sql);
    await waitFor('a rest for the writers', () => (state.status.throttledMs.writers ?? 0) > 0, outcome);
    expect(state.status.rowsCopied).toBeLessThan(seed);
    // A helper with somebody's trigger is not shadowcut's to drop any more: the test takes its own back.
    await db.query(kind === 'mysql' ? 'DROP TRIGGER th_pace_slow' : 'DROP TRIGGER th_pace_slow ON th_pace__hb');
    // Turned off while running: the copy goes on at once and the run ends with every row.
    state.set('max-writer-slowdown', '0');
    state.set('max-rows-per-sec', '0');
    expect((await run).rowsCopied).toBeGreaterThanOrEqual(seed);
    expect(state.status.state).toBe('done');
    expect(Number((await db.query('SELECT COUNT(*) FROM th_pace'))[0][0])).toBe(seed);
    expect(await db.helpers('th_pace')).toEqual(['th_pace__old']);
    if (kind === 'postgres') await db.query('DROP FUNCTION IF EXISTS th_pace_slow()');
  });
});
