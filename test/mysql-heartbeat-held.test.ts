import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateOn, useDatabase } from './support/fixture.js';
import { mysqlDatabase, mysqlUrl } from './support/mysql.js';
import { background, runState, waitFor } from './support/run.js';

// --max-writer-slowdown paces the copy by the heartbeat's writes, and on MySQL/MariaDB the heartbeat
// table (`<table>__hb`) can be written by the application's accounts: grants are per database (issue
// 60, item 5). Such an account holding the heartbeat's row during the baseline once left too few
// writes for one, and the copy ran unpaced after a warning; held during the copy, the window of
// recent writes went stale and the pacing eased off. Now a held beat fails at once (NOWAIT, waits
// bounded to a second): before the copy the run holds back and says why, until a baseline is made;
// during the copy a held beat reads as a slowed writer.

const APP = 'hb_app';
const ALTER = 'ADD COLUMN note VARCHAR(20) NULL';

describe('MariaDB: the heartbeat held by another session', () => {
  const db = useDatabase(() => mysqlDatabase(), 'hb_t');
  let app: mysql.Connection;

  beforeAll(async () => {
    const u = new URL(mysqlUrl());
    const database = u.pathname.slice(1);
    await db.query(`DROP USER IF EXISTS ${APP}@'%'`);
    await db.query(`CREATE USER ${APP}@'%' IDENTIFIED BY 'hb-app'`);
    // What an application account has: data rights on its database, nothing else.
    await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON \`${database}\`.* TO ${APP}@'%'`);
    app = await mysql.createConnection({ host: u.hostname, port: Number(u.port), user: APP, password: 'hb-app', database });
  });
  afterAll(async () => {
    await app?.end();
    await db.query(`DROP USER IF EXISTS ${APP}@'%'`);
  });

  it('held during the baseline, the copy waits and says so; held during the copy, it rests; never unpaced', async () => {
    await db.drop('hb_t');
    await db.query('CREATE TABLE hb_t (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB');
    await db.query(`INSERT INTO hb_t SELECT g, g FROM (${db.series(40_000)}) s`);
    const state = runState('hb_t', ALTER, 'mysql', { maxWriterSlowdown: 2, maxRowsPerSec: 5000 });
    const said: string[] = [];
    const reporter = { phase() {}, progress() {}, info: (m: string) => void said.push(m), warn: (m: string) => void said.push(m), close() {} };
    // Just before the copy, the application's session takes the heartbeat's row and keeps it.
    const hold = async () => {
      await app.query('START TRANSACTION');
      await app.query('SELECT * FROM hb_t__hb WHERE id = 1 FOR UPDATE');
    };
    const hook = async (event: string) => {
      if (event === 'before-copy') await hold();
    };
    const run = migrateOn(db, 'hb_t', ALTER, { state, reporter, hook });
    const outcome = background(run);

    await waitFor('the hold for a baseline', () => said.some((m) => m.startsWith('holding back: --max-writer-slowdown has no baseline')), outcome);
    expect(said.find((m) => m.startsWith('holding back'))).toMatch(
      /^holding back: --max-writer-slowdown has no baseline: another session holds the row or the table \S+hb_t__hb; the copy waits for the stand-in's writes to be made/,
    );
    expect(state.status.state).toBe('throttled');
    expect(state.status.throttleKind).toBe('writers');
    expect(state.status.rowsCopied).toBe(0);

    // Let go: the baseline is made, and the copy is paced by it.
    await app.query('COMMIT');
    await waitFor('the baseline', () => said.some((m) => m.startsWith('pacing by the writers')), outcome);
    await waitFor('the copy', () => state.status.rowsCopied > 0, outcome);

    // Held again while the copy runs: every beat held off reads as a slowed writer, and the copy rests.
    const rested = state.status.throttledMs.writers ?? 0;
    await hold();
    try {
      await waitFor('a rest for the writers', () => (state.status.throttledMs.writers ?? 0) > rested, outcome);
    } finally {
      await app.query('COMMIT');
    }
    state.set('max-rows-per-sec', '0');
    const result = await run;
    expect(result.rowsCopied).toBeGreaterThanOrEqual(40_000);
    expect(said.filter((m) => /too few stand-in writes|not paced/.test(m))).toEqual([]);
    expect(Number((await db.query('SELECT COUNT(*) FROM hb_t WHERE note IS NULL'))[0][0])).toBe(40_000);
  });
});
