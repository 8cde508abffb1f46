// The trigger log's horizon on one MariaDB server (src/engines/mysql/capture/trigger/horizon.ts):
// who could still commit an entry below a sequence is read from INNODB_TRX, a cache the server fills
// only once nobody has read it for 100 ms. Its listing is believed only when it shows a canary begun
// after the sequence read; here, the cache is kept stale by a session reading it every 2 ms. And this
// process's own readers of it (a set's several logs, the cut-over's look) share one list
// (server/trx-list.ts), whose reads never keep it old.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { ServerHorizon } from '../src/engines/mysql/capture/trigger/horizon.js';
import { createMysqlEngine, type MysqlEngine } from '../src/engines/mysql/index.js';
import { createPool } from '../src/engines/mysql/server/connect.js';
import { mysqlOldSnapshots } from '../src/engines/mysql/cutover/old-snapshots.js';
import { adminPool, keepTrxListOld, mysqlUrl } from './support/mysql.js';
import { waitFor } from './support/run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LOG = 'hz_log';

let db: mysql.Pool;
let engine: MysqlEngine;

beforeAll(async () => {
  db = adminPool();
  engine = await createMysqlEngine(mysqlUrl());
  await db.query(`DROP TABLE IF EXISTS ${LOG}`);
  await db.query(`CREATE TABLE ${LOG} (seq BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, k INT NOT NULL) ENGINE=InnoDB`);
});

afterAll(async () => {
  await db.query(`DROP TABLE IF EXISTS ${LOG}`);
  await engine.close();
  await db.end();
});

describe('the trigger log horizon (MariaDB)', () => {
  it('does not settle on a stale listing, whose canary is missing', async () => {
    const pool = createPool(engine.target, 2);
    const horizon = new ServerHorizon(pool, engine.target, `\`${LOG}\``);
    const early = await db.getConnection();
    let stop: (() => Promise<void>) | null = null;
    try {
      await sleep(300);
      stop = keepTrxListOld((sql) => db.query(sql), 2);
      // A writer numbers its entry after the cache was filled, and stays open.
      await early.query('START TRANSACTION');
      await early.query(`INSERT INTO ${LOG} (k) VALUES (1)`);
      const h = await horizon.horizon();
      expect(h).not.toBeNull();
      for (let i = 0; i < 10; i++) {
        await sleep(300);
        expect(await horizon.settled(h!), `settled on a listing without the open writer (look ${i + 1})`).toBe(false);
      }
      // Fresh again (nobody reading), the writer is listed; once it ends, the horizon settles.
      await stop();
      stop = null;
      for (let i = 0; i < 5; i++) {
        await sleep(150);
        expect(await horizon.settled(h!)).toBe(false);
      }
      expect((JSON.parse(h!.mark) as { ids: string[] | null }).ids).toHaveLength(1);
      await early.query('COMMIT');
      expect(await eventually(() => horizon.settled(h!))).toBe(true);
    } finally {
      await stop?.();
      early.release();
      await pool.end();
    }
  });

  it("a set's three logs polling at once, and the cut-over's look meanwhile, all get fresh listings: each settles once its writer ends", async () => {
    const pool = createPool(engine.target, 4);
    const horizons = [1, 2, 3].map(() => new ServerHorizon(pool, engine.target, `\`${LOG}\``));
    const writer = await db.getConnection();
    let polling = true;
    try {
      await writer.query('START TRANSACTION');
      await writer.query(`INSERT INTO ${LOG} (k) VALUES (2)`);
      const marks = await Promise.all(horizons.map((h) => h.horizon()));
      // Each log polls on its own, as fast as its entries come (every 10 ms here).
      const settledAt: (number | null)[] = [null, null, null];
      const looks = [0, 0, 0];
      const polls = horizons.map(async (h, i) => {
        while (polling) {
          if (settledAt[i] === null && (await h.settled(marks[i]!))) settledAt[i] = Date.now();
          looks[i]++;
          await sleep(10);
        }
      });
      // Each log has looked twenty times with the writer open.
      await waitFor('twenty looks of each log', () => looks.every((n) => n >= 20), null);
      expect(settledAt, 'settled with the writer open').toEqual([null, null, null]);
      // A reader that begins now is in the next look's list.
      const reader = await db.getConnection();
      await reader.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
      const seen = await mysqlOldSnapshots(engine.target);
      expect(seen?.map((s) => Number(s.session))).toContain(reader.threadId);
      await reader.query('COMMIT');
      reader.release();
      const committedAt = Date.now();
      await writer.query('COMMIT');
      expect(await eventually(async () => settledAt.every((t) => t !== null)), `never settled: ${marks.map((m) => m?.mark).join(' ')}`).toBe(true);
      polling = false;
      await Promise.all(polls);
      for (const t of settledAt) expect(t!).toBeGreaterThanOrEqual(committedAt);
    } finally {
      polling = false;
      writer.release();
      await pool.end();
    }
  });
});

/** Polls `check` until it holds, for up to 10 s; its last answer. */
function eventually(check: () => Promise<boolean>): Promise<boolean> {
  return waitFor('the condition', check, null, 10_000).then(
    () => true,
    () => check(),
  );
}
