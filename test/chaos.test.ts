import { describe, expect, it } from 'vitest';
import { mysqlChaos, postgresChaos } from './chaos/database.js';
import { Reader } from './chaos/reader.js';
import { waitFor } from './support/run.js';
import { chaos, summary } from './chaos/run.js';
import { readerBoundMs } from './chaos/scenario.js';

/**
 * The randomized differential tester on a fixed set of seeds, so every change meets random tables,
 * ALTERs, concurrent writes, a reader timed on every query, and faults (SIGKILL and --resume, a
 * killed server session, a paused replica). Seeds 1-6 run on both paths: migrate's default (in
 * place where the server can) and --force-copy. The long run is `npm run test:chaos` (README, Testing).
 */
const BOTH = Array.from({ length: 6 }, (_, i) => 1 + i);
// The seeds that once failed on the copy: PostgreSQL 81 (a session lost during the verification's
// mapping proof); MySQL 108 and 110, PostgreSQL 36, 86 and 94 (the tester's own oracle: rows written
// after the swap, converted by the new table's defaults or not by a USING, unlike the mirror's).
// Their tables, writes and faults are still the ones they failed with, and so is 86's ALTER; 36, 94
// and 110 now have a CHECK added to theirs, 81 and 108 draw another (the grammar's shapes, README).
// Seed 45 replaces or drops the primary key on both engines (issue 71), with a kill -9 and --resume in the copy.
const COPY_ONLY = [36, 45, 81, 86, 94, 108, 110];

describe.each(['mysql', 'postgres'] as const)("randomized migrations against the server's own ALTER (%s)", (engine) => {
  const env = process.env as Record<string, string>;
  const urls = {
    mysqlUrl: env.SHADOWCUT_MYSQL_URL,
    mysqlReplicaUrl: env.SHADOWCUT_MYSQL_REPLICA_URL,
    pgUrl: env.SHADOWCUT_PG_URL,
    pgStandbyUrl: env.SHADOWCUT_PG_STANDBY_URL,
  };

  it(`seeds ${BOTH.join(', ')} on the default path and with --force-copy, ${COPY_ONLY.join(', ')} with --force-copy: every run passes or is refused as the server refuses`, async () => {
    const outcomes = [
      ...(await chaos({ engines: [engine], paths: ['default', 'copy'], seeds: BOTH, minutes: 0, rows: 1000, json: null }, urls, () => {})),
      ...(await chaos({ engines: [engine], paths: ['copy'], seeds: COPY_ONLY, minutes: 0, rows: 1000, json: null }, urls, () => {})),
    ];
    const failed = outcomes.filter((o) => o.verdict === 'FAIL');
    expect(failed, summary(outcomes)).toEqual([]);
    expect(outcomes).toHaveLength(2 * BOTH.length + COPY_ONLY.length);
    // Not all refusals: the seeds must exercise real migrations, in place and copied.
    expect(outcomes.filter((o) => o.verdict === 'pass').length).toBeGreaterThanOrEqual(3);
    expect(outcomes.filter((o) => o.took === 'in-place').length, summary(outcomes)).toBeGreaterThanOrEqual(2);
    expect(outcomes.filter((o) => o.took === 'copy' && o.verdict === 'pass').length, summary(outcomes)).toBeGreaterThanOrEqual(2);
  }, 900_000);

  it('expand/contract seeds 1-3: backfill of a new column under writers and faults, then verify --expect; the table equals the mirror after its own UPDATE', async () => {
    const outcomes = await chaos({ engines: [engine], paths: ['backfill'], seeds: [1, 2, 3], minutes: 0, rows: 1000, json: null }, urls, () => {});
    expect(
      outcomes.filter((o) => o.verdict !== 'pass'),
      summary(outcomes),
    ).toEqual([]);
  }, 300_000);

  it('trigger capture on the servers as they come: seeds 1-4 with --force-copy and --capture trigger pass or are refused as the server refuses', async () => {
    const plain = { ...urls, mysqlPlainUrl: env.SHADOWCUT_MYSQL_PLAIN_URL, pgPlainUrl: env.SHADOWCUT_PG_PLAIN_URL };
    const outcomes = await chaos(
      { engines: [engine], paths: ['copy'], seeds: [1, 2, 3, 4], minutes: 0, rows: 1000, json: null, capture: 'trigger', servers: 'plain' },
      plain,
      () => {},
    );
    expect(
      outcomes.filter((o) => o.verdict === 'FAIL'),
      summary(outcomes),
    ).toEqual([]);
    expect(outcomes.filter((o) => o.took === 'copy' && o.verdict === 'pass').length, summary(outcomes)).toBeGreaterThanOrEqual(2);
  }, 300_000);

  // Seeds whose ALTER the way back can carry (most random ALTERs drop or narrow something, and are refused for a window; PostgreSQL seed 6 drew a NOT VALID CHECK, refused since).
  const REVERTIBLE = { mysql: [3, 11], postgres: [5, 20] }[engine];
  it(`the revert window: seeds ${REVERTIBLE.join(', ')} migrate with a window, revert under writers and faults, and equal the mirror that never took the ALTER`, async () => {
    const outcomes = await chaos({ engines: [engine], paths: ['revert'], seeds: REVERTIBLE, minutes: 0, rows: 1000, json: null }, urls, () => {});
    expect(
      outcomes.filter((o) => o.verdict !== 'pass'),
      summary(outcomes),
    ).toEqual([]);
  }, 300_000);

  // Seeds whose drawn SIGKILL lands early in the copy, so it finds the queue's runner still running on a fast machine
  // too, and that pass on both engines: 386 ms (22), 587 ms (52, partitioned on PostgreSQL) and 624 ms (58). Seeds
  // 4, 12 and 14 (534, 1,541 and 2,487 ms) fell late in the run and miss a runner that has finished, which it does
  // sooner since a finished run stopped waiting out the latency probe's last second (seen in a fresh-clone CI and here);
  // a runner killed after the swap is queue.test.ts's own case, by a hook, at a known point.
  const QUEUED = [22, 52, 58];
  it(`the queue: seeds ${QUEUED.join(', ')} queued, run by "queue run" whose runner is killed and started again at once (it waits out the dead lease), run once, equal the mirror`, async () => {
    const outcomes = await chaos({ engines: [engine], paths: ['queue'], seeds: QUEUED, minutes: 0, rows: 1000, json: null }, urls, () => {});
    expect(
      outcomes.filter((o) => o.verdict !== 'pass'),
      summary(outcomes),
    ).toEqual([]);
    expect(outcomes.filter((o) => o.faults.some((f) => f.startsWith("SIGKILL of the queue's runner"))).length, summary(outcomes)).toBe(QUEUED.length);
  }, 300_000);

  // One change over four and five databases with a joint cut-over: seed 8 healthy (every target
  // altered), seed 7 with target 4's table held open by the application (no target may keep the change).
  const FLEET = [7, 8];
  it(`a fleet with a joint cut-over: seeds ${FLEET.join(', ')}, every target equal to its mirror, or none changed while one is held`, async () => {
    const outcomes = await chaos({ engines: [engine], paths: ['fleet'], seeds: FLEET, minutes: 0, rows: 600, json: null }, urls, () => {});
    expect(
      outcomes.filter((o) => o.verdict !== 'pass'),
      summary(outcomes),
    ).toEqual([]);
    expect(outcomes.filter((o) => o.faults.length).length, summary(outcomes)).toBe(1);
  }, 300_000);

  // Two and three tables, each set copied and killed, then resumed: seed 29 keyed (a parent, its set
  // child and an outside child) killed in its copy, 16 likewise unkeyed, 26 killed in its revert window and reverted,
  // and on MySQL 18, the parent's INT key widened to BIGINT with both children's, the cascading one's among them.
  const SETS = engine === 'mysql' ? [16, 18, 26, 29] : [16, 26, 29];
  it(`several tables in one cut-over: seeds ${SETS.join(', ')} killed and resumed (26 in its revert window, then reverted), every table equal to its mirror, no reader ever seeing the set half swapped`, async () => {
    const outcomes = await chaos({ engines: [engine], paths: ['set'], seeds: SETS, minutes: 0, rows: 1000, json: null }, urls, () => {});
    expect(
      outcomes.filter((o) => o.verdict !== 'pass'),
      summary(outcomes),
    ).toEqual([]);
    expect(outcomes.filter((o) => o.took === 'copy' && o.faults.some((f) => f.startsWith('SIGKILL'))).length, summary(outcomes)).toBe(SETS.length);
  }, 300_000);

  // The server restarted under the copy (README, the server restarted), on a server of the tester's own:
  // seeds whose restart falls in the run, 12 with a SIGKILL and --resume besides, 1 with a killed session.
  const RESTARTED = { mysql: [1, 12, 15], postgres: [6, 10, 12] }[engine];
  it(`the server restarted: seeds ${RESTARTED.join(', ')} on a server of the tester's own ride out a restart (or stop in one line and resume) and equal the mirror`, async () => {
    const outcomes = await chaos({ engines: [engine], paths: ['copy'], seeds: RESTARTED, minutes: 0, rows: 1000, json: null, servers: 'own' }, {}, () => {});
    expect(
      outcomes.filter((o) => o.verdict !== 'pass'),
      summary(outcomes),
    ).toEqual([]);
    expect(outcomes.filter((o) => o.faults.some((f) => f.startsWith('the server restarted'))).length, summary(outcomes)).toBe(RESTARTED.length);
  }, 300_000);

  it('the reader times a wait behind a lock, and a lock held past the in-place bound breaks it', async () => {
    const db = engine === 'mysql' ? mysqlChaos(urls.mysqlUrl, urls.mysqlReplicaUrl) : postgresChaos(urls.pgUrl, urls.pgStandbyUrl);
    const table = `chaos_reader${process.pid}`;
    const name = engine === 'mysql' ? `\`${table}\`` : `"${table}"`;
    const held = readerBoundMs(engine, 'in-place') + 500;
    const locker = await db.session();
    try {
      await db.drop(table);
      await locker.query(`CREATE TABLE ${name} (k int PRIMARY KEY)`);
      await locker.query(`INSERT INTO ${name} VALUES (1)`);
      const reader = new Reader(db, table);
      await reader.start();
      await waitFor('the reader reading', () => reader.report.queries >= 5, null);
      await locker.query(engine === 'mysql' ? `LOCK TABLES ${name} WRITE` : 'BEGIN');
      if (engine === 'postgres') await locker.query(`LOCK TABLE ${name} IN ACCESS EXCLUSIVE MODE`);
      await new Promise((r) => setTimeout(r, held));
      await locker.query(engine === 'mysql' ? 'UNLOCK TABLES' : 'COMMIT');
      const report = await reader.stop();
      expect(report.errors).toBe(0);
      expect(report.longestMs).toBeGreaterThan(readerBoundMs(engine, 'in-place'));
      expect(report.longestMs).toBeLessThan(held + 1000);
    } finally {
      await locker.close();
      await db.drop(table);
      await db.close();
    }
  }, 30_000);
});
