import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { AbortedError } from '../src/core/engine/errors.js';
import { runState, untilHeldFor, waitFor } from './support/run.js';
import { inWindow, parseWindow } from '../src/core/run/throttler.js';
import { adminPool, differences, helperTables, migrateMysql, mysqlUrl, runCli, schemaOf } from './support/mysql.js';
import { withMigration } from './support/wrap.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { migrate } from '../src/core/migrate/runner.js';

let db: mysql.Pool;
const dir = mkdtempSync(join(tmpdir(), 'shadowcut-throttle-'));

beforeAll(() => {
  db = adminPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS th_t, th_t__new, th_t__old, th_t__state, th_copy');
  await db.end();
  rmSync(dir, { recursive: true, force: true });
});

async function seed() {
  await db.query('DROP TABLE IF EXISTS th_t, th_t__new, th_t__old, th_t__state, th_copy');
  await db.query('CREATE TABLE th_t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB');
  await db.query('INSERT INTO th_t SELECT seq, seq FROM seq_1_to_5000');
}

const newState = () => runState('th_t', 'ADD COLUMN x INT', 'mysql');

/** Polls until `done` or the deadline; returns whether it happened. */
function eventually(done: () => boolean, ms = 15_000): Promise<boolean> {
  return waitFor('the condition', done, null, ms).then(
    () => true,
    () => done(),
  );
}

describe('windows', () => {
  it('reads HH:MM-HH:MM, also across midnight', () => {
    const at = (h: number, m: number) => new Date(2026, 0, 1, h, m);
    const night = parseWindow('23:30-02:00');
    expect([inWindow(night, at(23, 45)), inWindow(night, at(1, 59)), inWindow(night, at(2, 0)), inWindow(night, at(12, 0))]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    const day = parseWindow('01:00-05:00');
    expect([inWindow(day, at(0, 59)), inWindow(day, at(1, 0)), inWindow(day, at(4, 59)), inWindow(day, at(5, 0))]).toEqual([false, true, true, false]);
    expect(() => parseWindow('1-5')).toThrow(/HH:MM-HH:MM/);
    // Several ranges: a lunch hour and a night across midnight; seconds where a test needs them.
    const split = parseWindow('12:00-13:30, 22:00-06:00');
    expect([at(11, 59), at(12, 0), at(13, 30), at(21, 59), at(23, 0), at(5, 59), at(6, 0)].map((t) => inWindow(split, t))).toEqual([
      false,
      true,
      false,
      false,
      true,
      true,
      false,
    ]);
    expect(parseWindow('10:00:05-10:00:10,10:00:20-10:00:40')).toEqual([
      { from: 36_005, to: 36_010 },
      { from: 36_020, to: 36_040 },
    ]);
    expect(() => parseWindow('01:00-05:00,')).toThrow(/HH:MM-HH:MM/);
  });

  it('a closed window holds the copy back (the stream is still followed), and the run can be aborted cleanly', async () => {
    await seed();
    const now = new Date();
    const closed = `${String((now.getHours() + 2) % 24).padStart(2, '0')}:00-${String((now.getHours() + 3) % 24).padStart(2, '0')}:00`;
    const state = newState();
    const run = migrateMysql('th_t', 'ADD COLUMN x INT', { state, window: closed });
    run.catch(() => {}); // awaited below
    expect(await eventually(() => state.status.state === 'throttled')).toBe(true);
    await db.query('UPDATE th_t SET v = v + 1 WHERE id <= 10'); // changes are followed while held back
    await untilHeldFor(state, 'window', 1000, null);
    expect(state.status.throttleReason).toBe(`outside the window ${closed}`);
    expect(state.status.rowsCopied).toBe(0);
    // Read into the (bounded) buffer while held back, applied once the copy goes on or the buffer fills.
    expect(await eventually(() => state.status.backlog >= 10)).toBe(true);
    state.abortReason = 'test is done';
    await expect(run).rejects.toBeInstanceOf(AbortedError);
    expect(await helperTables(db, 'th_t')).toEqual([]);
    expect(await schemaOf(db, 'th_t')).not.toMatch(/`x`/);
  });
});

describe('--max-rows-per-sec', () => {
  it('makes the copy wait between chunks, and the run still ends with parity', async () => {
    await seed();
    await db.query('CREATE TABLE th_copy AS SELECT * FROM th_t');
    const state = newState();
    state.settings.maxRowsPerSec = 4000; // the state's settings are the live ones (also changed by "shadowcut set")
    const result = await migrateMysql('th_t', 'ADD COLUMN x INT', { state });
    expect(result.rowsCopied).toBe(5000);
    expect(state.status.throttledMs.rate).toBeGreaterThan(0);
    await db.query('ALTER TABLE th_copy ADD PRIMARY KEY (id), ADD COLUMN x INT');
    expect(await differences(db, 'th_t', 'th_copy')).toEqual([]);
  });

  it('takes chunks of a quarter second of the limit at most, on every thread together, and the last one too', async () => {
    await seed();
    const state = newState();
    state.settings.maxRowsPerSec = 2000;
    const chunks: number[] = [];
    const counted = (copied: Promise<number>) => copied.then((rows) => (chunks.push(rows), rows));
    const engine = withMigration(await createMysqlEngine(mysqlUrl()), (m) => ({
      copyRange: (range) => counted(m.copyRange(range)),
      copyAndChecksum: (range) => m.copyAndChecksum(range).then((r) => (chunks.push(r.rows), r)),
    }));
    try {
      const request = { url: mysqlUrl(), table: 'th_t', alter: 'ADD COLUMN x INT' };
      const result = await migrate(engine, request, { execute: true, forceCopy: true, state, copyThreads: 2 });
      expect(result.rowsCopied).toBe(5000);
    } finally {
      await engine.close();
    }
    // 2,000 rows a second on 2 threads: at most 250 rows on each thread at once (before the limit: thousands).
    expect(chunks.length).toBeGreaterThanOrEqual(20);
    expect(Math.max(...chunks)).toBeLessThanOrEqual(250);
  });

  it('without a limit the copy never waits for it, nor rests', async () => {
    await seed();
    const state = newState();
    await migrateMysql('th_t', 'ADD COLUMN x INT', { state });
    expect(state.status.throttledMs.rate).toBeUndefined();
    expect(state.status.throttledMs.nice).toBeUndefined();
  });
});

describe('--nice-ratio', () => {
  it('rests after each chunk, can be changed while running, and the run still ends with parity', async () => {
    await seed();
    await db.query('CREATE TABLE th_copy AS SELECT * FROM th_t');
    const state = newState();
    state.set('nice-ratio', '2');
    expect(() => state.set('nice-ratio', '-1')).toThrow(/non-negative/);
    expect(state.settings.niceRatio).toBe(2);
    const result = await migrateMysql('th_t', 'ADD COLUMN x INT', { state });
    expect(result.rowsCopied).toBe(5000);
    expect(state.status.throttledMs.nice).toBeGreaterThan(0);
    await db.query('ALTER TABLE th_copy ADD PRIMARY KEY (id), ADD COLUMN x INT');
    expect(await differences(db, 'th_t', 'th_copy')).toEqual([]);
  });
});

describe('flag file', () => {
  it('holds the copy back while it exists; once removed the run finishes with parity', async () => {
    await seed();
    const flag = join(dir, 'hold');
    writeFileSync(flag, '');
    const state = newState();
    const run = migrateMysql('th_t', 'ADD COLUMN x INT', { state, flagFile: flag });
    expect(await eventually(() => state.status.throttleReason === `flag file ${flag} exists`)).toBe(true);
    await untilHeldFor(state, 'flag', 500, null);
    expect(state.status.rowsCopied).toBe(0);
    await db.query('CREATE TABLE th_copy AS SELECT * FROM th_t');
    rmSync(flag);
    const result = await run;
    expect(result.rowsCopied).toBe(5000);
    expect(state.status.throttledMs.flag).toBeGreaterThan(0);
    await db.query('ALTER TABLE th_copy ADD PRIMARY KEY (id), ADD COLUMN x INT');
    expect(await differences(db, 'th_t', 'th_copy')).toEqual([]);
  });
});

describe('panic flag file', () => {
  it('stops a run at once when it appears, even one held back, removing every helper table', async () => {
    await seed();
    const hold = join(dir, 'hold-for-panic');
    const panic = join(dir, 'panic');
    writeFileSync(hold, '');
    const before = await schemaOf(db, 'th_t');
    const state = newState();
    const run = migrateMysql('th_t', 'ADD COLUMN x INT', { state, flagFile: hold, panicFlagFile: panic });
    expect(await eventually(() => state.status.state === 'throttled')).toBe(true);
    writeFileSync(panic, '');
    try {
      await expect(run).rejects.toThrow(AbortedError);
      await expect(run).rejects.toThrow(`panic flag file ${panic} exists`);
    } finally {
      rmSync(hold, { force: true });
      rmSync(panic, { force: true });
    }
    expect(await helperTables(db, 'th_t')).toEqual([]);
    expect(await schemaOf(db, 'th_t')).toEqual(before);
  });
});

describe('--throttle-query', () => {
  // How it holds a run back and lets it go: test/throttle.test.ts, for both engines.
  it.each([
    ['one that fails', 'SELECT nothing FROM nowhere_at_all', /--throttle-query fails: .*nowhere_at_all/],
    ['one that returns no number', "SELECT 'open'", /--throttle-query fails: it must return one row with one number/],
  ])('%s is refused with one line and exit 2, leaving nothing behind', async (_what, sql, message) => {
    await seed();
    const r = runCli(['migrate', '--force-copy', '--url', '$URL', '--table', 'th_t', '--alter', 'ADD COLUMN x INT', '--throttle-query', sql, '--execute']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([expect.stringMatching(message)]);
    expect(await helperTables(db, 'th_t')).toEqual([]);
  });
});
