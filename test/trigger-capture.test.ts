import { silentReporter } from '../src/core/report/reporter.js';
import { describe, expect, it } from 'vitest';
import { databases, expectMirrored, migrateOn, plainDatabases, useDatabase, type Database } from './support/fixture.js';
import { keepTrxListOld } from './support/mysql.js';
import { background, runState, waitFor } from './support/run.js';
import { MirrorWorkload } from './support/workload.js';
import { ownedRowsPair, ownedRowWrites } from './support/owned-writes.js';
import { Recorder } from './support/pg.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// The same table and ALTER in each engine's words; the ALTER narrows nothing, so the mirror can take it too.
const dialects = {
  mysql: {
    create: (t: string) =>
      `CREATE TABLE ${t} (id BIGINT PRIMARY KEY, qty INT NOT NULL, label VARCHAR(64), at DATETIME(6) NOT NULL, price DECIMAL(30,10)) ENGINE=InnoDB`,
    alter: 'ADD COLUMN note VARCHAR(100) NULL, MODIFY qty BIGINT NOT NULL',
    at: `'2024-01-01 00:00:00.000001' + INTERVAL g SECOND`,
    zone: '',
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (id int8 PRIMARY KEY, qty int NOT NULL, label text, at timestamptz NOT NULL, price numeric(30,10))`,
    alter: `ADD COLUMN note text DEFAULT 'none', ALTER COLUMN qty TYPE bigint`,
    at: `'2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1.000001 second'`,
    zone: '+00',
  },
};

function freshPair(db: Database, name: string, rows: number): Promise<void> {
  const d = dialects[db.kind];
  return ownedRowsPair(db, name, rows, d.create, d.at);
}

/** The capture's triggers and log are gone from the database (and not left on the old table). */
async function expectNoCapture(db: Database, table: string): Promise<void> {
  const triggers =
    db.kind === 'mysql'
      ? await db.query(`SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME LIKE '${table}\\_\\_t_'`)
      : await db.query(`SELECT tgname FROM pg_trigger WHERE tgname LIKE '${table}\\_\\_%'`);
  expect(triggers).toEqual([]);
  expect(await db.helpers(table)).not.toContain(`${table}__log`);
}

// On the servers with a change stream, triggers are asked for; on the servers as they come, `auto` must choose them.
const servers = [...databases.map((d) => ({ ...d, capture: 'trigger' as const })), ...plainDatabases.map((d) => ({ ...d, capture: 'auto' as const }))];

describe.each(servers)('$name: trigger capture ($capture)', ({ open, kind, capture }) => {
  const db = useDatabase(
    open,
    'tc_rows',
    'tc_rows_mirror',
    'tc_gap',
    'tc_gap_mirror',
    'tc_open',
    'tc_open_mirror',
    'tc_seq',
    'tc_seq_mirror',
    'tc_left',
    'tc_trunc',
    'tc_floor',
    'tc_floor_mirror',
  );
  const { alter } = dialects[kind];
  const trigger = { request: { capture } };

  it('follows inserts, updates, deletes and key changes made during the copy and the cut-over; ends equal to the mirror', async () => {
    const seed = 30_000;
    await freshPair(db, 'tc_rows', seed);
    const load = new MirrorWorkload(db, ['tc_rows', 'tc_rows_mirror'], ownedRowWrites(db, seed));
    load.start();
    try {
      const result = await migrateOn(db, 'tc_rows', alter, { chunkTimeMs: 50 }, trigger);
      await load.untilMoreWrites(); // writes after the cut-over land in the new table
      const stats = await load.stop();
      expect(stats.errors).toEqual([]);
      expect(result.plan?.capture?.kind).toBe('trigger');
      expect(result.state.status.capture).toBe('trigger');
      expect(result.changesApplied).toBeGreaterThan(0);
      await db.query(`ALTER TABLE tc_rows_mirror ${alter}`);
      await expectMirrored(db, 'tc_rows', 'tc_rows_mirror');
      await expectNoCapture(db, 'tc_rows');
    } finally {
      await load.stop();
    }
  });

  // MariaDB fills INNODB_TRX, where the log's horizon lists its writers, only once nobody has read it
  // for 100 ms: a session reading it every few milliseconds keeps it as it was, without the writer.
  it.each([['', false] as const, ...(kind === 'mysql' ? [[' (while another session reads INNODB_TRX every 2 ms)', true] as const] : [])])(
    'delivers a change whose log sequence is lower than one already delivered and removed, once its transaction commits%s',
    async (_, stale) => {
      await freshPair(db, 'tc_seq', 10);
      const engine = await db.engine();
      const migration = await engine.prepare({ url: db.url, table: 'tc_seq', alter, capture });
      const sink = new Recorder();
      const stream = await migration.changes.open(sink, undefined, { lockTimeoutMs: 1000, attempts: 3, warn: () => {} });
      const early = await db.session();
      const poller = await db.session();
      const stopPolling = stale ? keepTrxListOld((sql) => poller.query(sql), 2) : () => Promise.resolve();
      const delivered = (id: number) => sink.received.filter((k) => String(k[0]) === String(id)).length;
      try {
        await sleep(stale ? 300 : 0);
        await early.query('BEGIN');
        await early.query(`INSERT INTO tc_seq (id, qty, at) VALUES (900001, 1, '2025-01-01 00:00:00.000001${dialects[kind].zone}')`);
        await db.query(`INSERT INTO tc_seq (id, qty, at) VALUES (900002, 2, '2025-01-01 00:00:00.000002${dialects[kind].zone}')`);
        await waitFor('the later change', () => delivered(900002) === 1, null);
        // Applied: its entry leaves the log, and the next poll may read past it.
        await stream.acknowledge(sink.seen!);
        // Long enough for several horizons to be taken and, were the writer not listed, to settle.
        await sleep(stale ? 1500 : 0);
        await early.query('COMMIT');
        // No head() under a lock here: only the polls can find it.
        await waitFor('the earlier change', () => delivered(900001) === 1, null, 5000).catch((e: Error) => {
          const floor = (stream as unknown as { floor: string | null }).floor;
          throw new Error(`${e.message} (the stream's failure: ${String(sink.failure)}; its floor: ${floor})`);
        });
        expect(sink.failure).toBeNull();
        expect(delivered(900002)).toBe(1);
      } finally {
        await stopPolling();
        poller.release();
        early.release();
        await stream.stop();
        await migration.cleanup({ dropOld: false, cutOver: false });
        await engine.close();
      }
      await expectNoCapture(db, 'tc_seq');
    },
  );

  it('reads above the entries already applied while an older snapshot keeps them in the log, never above a writer still open', async () => {
    await freshPair(db, 'tc_floor', 10);
    const engine = await db.engine();
    const migration = await engine.prepare({ url: db.url, table: 'tc_floor', alter, capture });
    const sink = new Recorder();
    const stream = await migration.changes.open(sink, undefined, { lockTimeoutMs: 1000, attempts: 3, warn: () => {} });
    const floor = () => (stream as unknown as { floor: string | null }).floor;
    const delivered = (id: number) => sink.received.filter((k) => String(k[0]) === String(id)).length;
    const zone = dialects[kind].zone;
    const insert = (on: { query: (sql: string) => Promise<unknown> }, id: number) =>
      on.query(`INSERT INTO tc_floor (id, qty, at) VALUES (${id}, 1, '2025-01-01 00:00:00.000001${zone}')`);
    // As the applier does: every delivery applied (here: taken as such) and acknowledged.
    const applier = setInterval(() => void (sink.seen && stream.acknowledge(sink.seen)), 50);
    // A verification's snapshot: while it is open the removed entries stay in the log's index.
    const old = await db.session();
    const early = await db.session();
    try {
      await old.query(kind === 'mysql' ? 'START TRANSACTION WITH CONSISTENT SNAPSHOT' : 'BEGIN ISOLATION LEVEL REPEATABLE READ');
      await old.query('SELECT count(*) FROM tc_floor');
      for (let round = 0; round < 6; round++) {
        for (let i = 0; i < 20; i++) await insert(db, 800_000 + round * 100 + i);
        await waitFor(`round ${round} delivered`, () => delivered(800_000 + round * 100 + 19) === 1, null);
        await sleep(300);
      }
      expect(floor(), 'the reads never left the start of the log').not.toBeNull();
      const raised = BigInt(floor()!);
      expect(raised).toBeGreaterThanOrEqual(20n);
      // A writer that took a sequence value and has not committed holds the floor below it.
      await early.query('BEGIN');
      await insert(early, 900_001);
      const log = kind === 'mysql' ? 'tc_floor__log' : 'public.tc_floor__log';
      const [[taken]] = await early.query(`SELECT max(seq) FROM ${log}`);
      // Writes go on long enough for several horizons to be taken and to settle around it.
      for (let burst = 0; burst < 8; burst++) {
        for (let i = 0; i < 5; i++) await insert(db, 900_100 + burst * 10 + i);
        await sleep(200);
      }
      await waitFor('the later writes delivered', () => delivered(900_174) === 1, null);
      await sleep(600);
      expect(BigInt(floor()!)).toBeLessThan(BigInt(String(taken)));
      await early.query('COMMIT');
      await waitFor('the open writer delivered once it committed', () => delivered(900_001) === 1, null, 5000);
      expect(sink.failure).toBeNull();
    } finally {
      clearInterval(applier);
      await old.query('ROLLBACK').catch(() => {});
      // An open writer would hold the triggers' removal below.
      await early.query('ROLLBACK').catch(() => {});
      old.release();
      early.release();
      await stream.stop();
      await migration.cleanup({ dropOld: false, cutOver: false });
      await engine.close();
    }
    await expectNoCapture(db, 'tc_floor');
  });

  it('applies a change whose log sequence is lower than one already applied (its transaction committed later)', async () => {
    await freshPair(db, 'tc_gap', 2000);
    const state = runState('tc_gap', alter, kind);
    const run = migrateOn(db, 'tc_gap', alter, { state, postponeCutover: true }, trigger);
    const outcome = background(run);
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', outcome);
    const early = await db.session();
    const late = await db.session();
    try {
      // `early` takes the lower sequence and stays open; `late` takes the next one and commits first.
      await early.query('BEGIN');
      await early.query(`INSERT INTO tc_gap (id, qty, at) VALUES (900001, 1, '2025-01-01 00:00:00.000001${dialects[kind].zone}')`);
      await late.query(`INSERT INTO tc_gap (id, qty, at) VALUES (900002, 2, '2025-01-01 00:00:00.000002${dialects[kind].zone}')`);
      await waitFor('the later change in the shadow', async () => (await db.query('SELECT 1 FROM tc_gap__new WHERE id = 900002')).length === 1, outcome);
      await early.query('COMMIT');
    } finally {
      early.release();
      late.release();
    }
    state.cutoverRequested = true;
    await run;
    for (const t of ['tc_gap_mirror']) {
      await db.query(`INSERT INTO ${t} (id, qty, at) VALUES (900001, 1, '2025-01-01 00:00:00.000001${dialects[kind].zone}')`);
      await db.query(`INSERT INTO ${t} (id, qty, at) VALUES (900002, 2, '2025-01-01 00:00:00.000002${dialects[kind].zone}')`);
      await db.query(`ALTER TABLE ${t} ${alter}`);
    }
    await expectMirrored(db, 'tc_gap', 'tc_gap_mirror');
  });

  it('waits for a transaction that wrote the table before the triggers existed, and keeps its change', async () => {
    await freshPair(db, 'tc_open', 2000);
    const writer = await db.session();
    const state = runState('tc_open', alter, kind);
    try {
      await writer.query('BEGIN');
      await writer.query(`UPDATE tc_open SET qty = 4242, label = 'written before the triggers' WHERE id = 7`);
      const warned: string[] = [];
      const reporter = { ...silentReporter, warn: (message: string) => void warned.push(message) };
      const run = migrateOn(db, 'tc_open', alter, { state, lockTimeoutMs: 200, reporter }, trigger);
      const outcome = background(run);
      // Held through two attempts to make the triggers, each given up within the lock timeout.
      await waitFor('two attempts at the triggers', () => warned.filter((m) => /^creating .*; retrying in/.test(m)).length >= 2, outcome);
      // The triggers cannot be made while the writer holds the table: nothing is copied yet.
      expect(outcome.settled).toBe(false);
      expect(state.status.rowsCopied).toBe(0);
      await writer.query('COMMIT');
      await run;
    } finally {
      writer.release();
    }
    await db.query(`UPDATE tc_open_mirror SET qty = 4242, label = 'written before the triggers' WHERE id = 7`);
    await db.query(`ALTER TABLE tc_open_mirror ${alter}`);
    await expectMirrored(db, 'tc_open', 'tc_open_mirror');
  });

  it("names the source and why in the dry run; a dead run's capture triggers are refused by name until cleanup removes them", async () => {
    await freshPair(db, 'tc_left', 10);
    const dry = db.cli([
      'migrate',
      '--force-copy',
      '--url',
      '$URL',
      '--table',
      'tc_left',
      '--alter',
      alter,
      ...(capture === 'auto' ? [] : ['--capture', capture]),
    ]);
    expect(dry.code).toBe(0);
    const unavailable = kind === 'mysql' ? 'the binlog is unavailable: binary logging is off' : 'logical decoding is unavailable: wal_level is replica';
    const why = capture === 'auto' ? new RegExp(`changes: triggers recording keys into a log table \\(${unavailable}`) : /\(--capture trigger\)/;
    expect(dry.stdout).toMatch(why);
    // A run that died after making its triggers (and before its checkpoint): they stay on the table, logging every write.
    const engine = await db.engine();
    const migration = await engine.prepare({ url: db.url, table: 'tc_left', alter, capture });
    const stream = await migration.changes.open(new Recorder(), undefined, { lockTimeoutMs: 1000, attempts: 3, warn: () => {} });
    await stream.stop();
    await engine.close();
    const refused = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'tc_left', '--alter', alter, '--execute']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/capture trigger \S+tc_left__ti of an earlier run is still on the table/);
    const cleanup = db.cli(['cleanup', '--url', '$URL', '--table', 'tc_left']);
    expect(cleanup.code).toBe(0);
    expect(cleanup.stdout).toMatch(/tc_left__ti \(capture trigger\)/);
    await expectNoCapture(db, 'tc_left');
    expect(db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'tc_left', '--alter', alter, '--execute']).code).toBe(0);
  });

  // After bursts of writes the log's reads start above a floor (the lock's drain too), and a TRUNCATE writes no entry above it.
  it.each([
    ['with no write before it', 0],
    ["after bursts of writes that moved the log's floor", 6],
  ])('stops with one line, the original untouched, when the table is truncated during the run (%s)', async (_, bursts) => {
    await freshPair(db, 'tc_trunc', 500);
    const state = runState('tc_trunc', alter, kind);
    const run = migrateOn(db, 'tc_trunc', alter, { state, postponeCutover: true }, trigger);
    const outcome = background(run);
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', outcome);
    for (let burst = 0; burst < bursts; burst++) {
      for (let i = 1; i <= 20; i++) await db.query(`UPDATE tc_trunc SET qty = qty + 1 WHERE id = ${burst * 20 + i}`);
      await sleep(400);
    }
    await db.query('TRUNCATE TABLE tc_trunc');
    await db.query(`INSERT INTO tc_trunc (id, qty, at) VALUES (1, 1, '2025-01-01 00:00:00.000001${dialects[kind].zone}')`);
    state.cutoverRequested = true;
    // MySQL sees it by InnoDB's table ids, PostgreSQL by its statement trigger's marker in the log.
    await expect(run).rejects.toThrow(
      kind === 'mysql' ? /tc_trunc was truncated or rebuilt during the migration/ : /truncated during the migration \(public\.tc_trunc__log\)/,
    );
    expect((await db.query('SELECT id FROM tc_trunc')).map((r) => String(r[0]))).toEqual(['1']);
    expect(await db.helpers('tc_trunc')).toEqual([]);
    await expectNoCapture(db, 'tc_trunc');
  });

  it.runIf(kind === 'mysql')("captures what the table's own triggers do to the row (BEFORE triggers that change the key and a column)", async () => {
    await freshPair(db, 'tc_user', 3000);
    await db.drop('tc_user_audit');
    await db.query('CREATE TABLE tc_user_audit (n INT AUTO_INCREMENT PRIMARY KEY, id BIGINT) ENGINE=InnoDB');
    for (const t of ['tc_user', 'tc_user_mirror']) {
      // Rows inserted with a negative id are moved to a key of the trigger's choosing; every update stamps its label.
      await db.query(`CREATE TRIGGER ${t}_bi BEFORE INSERT ON ${t} FOR EACH ROW SET NEW.id = IF(NEW.id < 0, 5000000 - NEW.id, NEW.id)`);
      await db.query(`CREATE TRIGGER ${t}_bu BEFORE UPDATE ON ${t} FOR EACH ROW SET NEW.label = CONCAT('stamped ', NEW.qty)`);
    }
    await db.query(`CREATE TRIGGER tc_user_ai AFTER INSERT ON tc_user FOR EACH ROW INSERT INTO tc_user_audit (id) VALUES (NEW.id)`);
    const state = runState('tc_user', alter, kind);
    const run = migrateOn(
      db,
      'tc_user',
      alter,
      { state, postponeCutover: true },
      { request: { capture, triggers: { suffix: '_sc', removeSuffixIfExists: false } } },
    );
    const outcome = background(run);
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', outcome);
    for (const t of ['tc_user', 'tc_user_mirror']) {
      for (let i = 1; i <= 50; i++) {
        await db.query(`INSERT INTO ${t} (id, qty, at) VALUES (${-i}, ${i}, '2025-01-01 00:00:00.000001')`);
        await db.query(`UPDATE ${t} SET qty = qty + 7 WHERE id = ${i * 11}`);
      }
    }
    state.cutoverRequested = true;
    await run;
    await db.query(`ALTER TABLE tc_user_mirror ${alter}`);
    await expectMirrored(db, 'tc_user', 'tc_user_mirror');
    expect(await db.query('SELECT COUNT(*) FROM tc_user WHERE id > 5000000')).toEqual([['50']]);
    expect(await db.query("SELECT COUNT(*) FROM tc_user WHERE label LIKE 'stamped %'")).toEqual([['50']]);
    expect(await db.query('SELECT COUNT(*) FROM tc_user_audit')).toEqual([['50']]);
  });
});
