import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, helperTables, migrateMysql, mysqlDatabase, mysqlUrl, runCli, schemaOf } from './support/mysql.js';
import { killDuringPhase } from './support/kill.js';
import { MirrorWorkload, type Statement } from './support/workload.js';

// Large enough that the copy is still running when the kill arrives, even on a fast machine.
const ROWS = 200_000;
const ALTER = 'ADD COLUMN note VARCHAR(50) NULL, MODIFY qty BIGINT NOT NULL';
let db: mysql.Pool;

beforeAll(() => {
  db = adminPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS rs_t, rs_mirror, rs_t__new, rs_t__old, rs_t__state, rs_t__hb');
  await db.end();
});

async function seed() {
  await db.query('DROP TABLE IF EXISTS rs_t, rs_mirror, rs_t__new, rs_t__old, rs_t__state, rs_t__hb');
  await db.query('CREATE TABLE rs_t (id INT PRIMARY KEY, qty INT NOT NULL, at DATETIME(6) NOT NULL, body TEXT) ENGINE=InnoDB');
  await db.query(`INSERT INTO rs_t SELECT seq, seq % 50, '2024-01-01 00:00:00.000001' + INTERVAL seq SECOND, REPEAT('b', seq % 300) FROM seq_1_to_${ROWS}`);
  await db.query('CREATE TABLE rs_mirror LIKE rs_t');
  await db.query('INSERT INTO rs_mirror SELECT * FROM rs_t');
}

const inserted = [0, 1, 2].map(() => new Set<number>());
function writes(worker: number, ids: Set<number>): Statement {
  const id = 1 + worker + 3 * Math.floor(Math.random() * (ROWS / 3));
  const r = Math.random();
  if (r < 0.6) return { sql: 'UPDATE {t} SET qty = qty + 1, at = at + INTERVAL 1 MICROSECOND WHERE id = ?', values: [id] };
  if (r < 0.8) return { sql: 'DELETE FROM {t} WHERE id = ?', values: [id] };
  const fresh = ROWS + 1000 + worker + 3 * ids.size;
  ids.add(fresh);
  return { sql: "INSERT INTO {t} (id, qty, at, body) VALUES (?, 1, '2025-05-05 05:05:05.000005', 'new')", values: [fresh] };
}

describe('kill -9, then --resume (MariaDB)', () => {
  it.each([
    ['copy', 300],
    ['catch-up', 0],
    ['verify', 0],
  ])('killed during %s: the resumed run ends with exactly the rows of the mirror, under writes', async (phase, delay) => {
    await seed();
    const load = new MirrorWorkload(mysqlDatabase(db), ['rs_t', 'rs_mirror'], (w) => writes(w, inserted[w]));
    load.start();
    try {
      const crash = await killDuringPhase(['--url', mysqlUrl(), '--table', 'rs_t', '--alter', ALTER, '--chunk-time-ms', '10'], phase, delay);
      expect(crash.killed).toBe(true);
      expect(await helperTables(db, 'rs_t')).toEqual(['rs_t__new']); // the dead run's shadow waits for us

      // Without --resume the leftovers are refused; with a different ALTER too.
      const fresh = runCli(['migrate', '--url', '$URL', '--table', 'rs_t', '--alter', ALTER, '--execute']);
      expect(fresh.stderr).toMatch(/left a checkpoint: continue it with --resume/);
      const other = runCli(['migrate', '--url', '$URL', '--table', 'rs_t', '--alter', 'ADD COLUMN z INT', '--execute', '--resume']);
      expect(other.stderr).toMatch(/was for a different ALTER/);

      const result = await migrateMysql('rs_t', ALTER, { resume: true });
      expect(result.resumed).toBe(true);
      // Verification would repair missed changes; a correct resume leaves it nothing to repair.
      expect(result.checksumRounds).toBe(1);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      const stats = await load.stop();
      expect(stats.errors).toEqual([]);
    }
    await db.query(`ALTER TABLE rs_mirror ${ALTER}`);
    expect(await schemaOf(db, 'rs_t')).toBe(await schemaOf(db, 'rs_mirror'));
    expect(await differences(db, 'rs_t', 'rs_mirror')).toEqual([]);
    expect(await helperTables(db, 'rs_t')).toEqual(['rs_t__old']);
  });
});
