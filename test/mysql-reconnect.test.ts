import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { silentReporter } from '../src/core/reporter.js';
import { adminPool, differences, migrateMysql } from './support/mysql.js';
import { runState } from './support/run.js';
import { MirrorWorkload, type Statement } from './support/workload.js';

const ROWS = 80_000;
let db: mysql.Pool;

beforeAll(() => {
  db = adminPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS rc_t, rc_mirror, rc_t__new, rc_t__old, rc_t__state');
  await db.end();
});

function writes(worker: number): Statement {
  const id = 1 + worker + 3 * Math.floor(Math.random() * (ROWS / 3));
  return { sql: 'UPDATE {t} SET v = v + 1 WHERE id = ?', values: [id] };
}

/** Kills the tool's binlog connection and whatever it is running against the shadow, as a DBA or a failover would. */
async function killToolConnections(): Promise<number> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND (COMMAND = 'Binlog Dump' OR INFO LIKE '%rc_t__new%')",
  );
  for (const r of rows) await db.query(`KILL ${r.ID}`).catch(() => {}); // it may have ended by itself
  return rows.length;
}

describe('a lost connection', () => {
  it('is retried, the change stream is reopened from the last applied position, and nothing is lost', async () => {
    await db.query('DROP TABLE IF EXISTS rc_t, rc_mirror, rc_t__new, rc_t__old, rc_t__state');
    await db.query('CREATE TABLE rc_t (id INT PRIMARY KEY, v INT NOT NULL, pad CHAR(100) NOT NULL DEFAULT "") ENGINE=InnoDB');
    await db.query(`INSERT INTO rc_t (id, v) SELECT seq, 0 FROM seq_1_to_${ROWS}`);
    await db.query('CREATE TABLE rc_mirror LIKE rc_t');
    await db.query('INSERT INTO rc_mirror SELECT * FROM rc_t');
    const load = new MirrorWorkload(db, ['rc_t', 'rc_mirror'], writes, () => new Set());
    const state = runState('rc_t', 'ADD COLUMN w INT', 'mysql', { chunkTimeMs: 10 });
    load.start();
    let kills = 0;
    const warnings: string[] = [];
    try {
      const reporter = { ...silentReporter, warn: (message: string) => void warnings.push(message) };
      const run = migrateMysql('rc_t', 'ADD COLUMN w INT', { state, chunkTimeMs: 10, reporter });
      // Kill twice while copying.
      for (let round = 0; round < 2; round++) {
        const target = (round + 1) * 20_000;
        for (let i = 0; i < 600 && state.status.rowsCopied < target; i++) await new Promise((r) => setTimeout(r, 20));
        kills += await killToolConnections();
      }
      const result = await run;
      expect(result.checksumRounds).toBe(1); // nothing was missed, so nothing needed repair
    } finally {
      await load.stop();
    }
    expect(kills).toBeGreaterThanOrEqual(2);
    expect(warnings.some((w) => /change stream lost/.test(w))).toBe(true);
    expect(load.stats.errors).toEqual([]);
    await db.query('ALTER TABLE rc_mirror ADD COLUMN w INT');
    expect(await differences(db, 'rc_t', 'rc_mirror')).toEqual([]);
  });
});

