import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, differences, migrateMysql } from './support/mysql.js';
import { background, runState, waitFor } from './support/run.js';

// On MariaDB the checksum's view holds no writer (src/core/migrate/view.ts, copy/snapshot-view.ts):
// the original is read in a consistent snapshot, the shadow once the applier has passed it, and a row
// that differs only because it changed in between is compared again later instead of repaired.

let db: mysql.Pool;
const ALTER = 'ADD COLUMN note VARCHAR(20) NULL, MODIFY v VARCHAR(80) NOT NULL';

beforeAll(() => {
  db = adminPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS sv_open, sv_open__old, sv_hot, sv_hot__old, sv_hot_twin');
  await db.end();
});

async function freshTable(name: string, rows: number) {
  await db.query(`DROP TABLE IF EXISTS ${name}, ${name}__new, ${name}__old`);
  await db.query(`CREATE TABLE ${name} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL, pad CHAR(200) NOT NULL DEFAULT '')`);
  await db.query(`INSERT INTO ${name} (id, v) SELECT seq, MD5(seq) FROM seq_1_to_${rows}`);
}

describe('the checksum view on MariaDB', () => {
  it('proves parity while a writer holds a transaction open on the table, which a lock would wait for', async () => {
    await freshTable('sv_open', 5000);
    const state = runState('sv_open', ALTER, 'mysql');
    const holder = await db.getConnection();
    try {
      await holder.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
      await holder.query('BEGIN');
      // An open write holds the table's metadata lock: LOCK TABLES ... READ would wait for its commit.
      await holder.query("UPDATE sv_open SET v = 'held' WHERE id = 10");
      const run = background(migrateMysql('sv_open', ALTER, { state, postponeCutover: true, lockTimeoutMs: 200, cutoverAttempts: 2, dropOld: true }));
      await waitFor('verification with the transaction open', () => state.status.state === 'postponed', run, 60_000);
      await holder.query('COMMIT');
      state.cutoverRequested = true;
      await waitFor('the run to end', () => run.settled, null, 60_000);
      expect(run.error).toBeUndefined();
    } finally {
      holder.release();
    }
    const [[row]] = await db.query<mysql.RowDataPacket[]>('SELECT v, note FROM sv_open WHERE id = 10');
    expect(row).toEqual({ v: 'held', note: null });
  });

  // A trigger log too: its entries reach the applier only once their writers commit.
  it.each(['stream', 'trigger'] as const)(
    'does not repair rows that only changed between its two instants, and ends equal to a twin (%s capture)',
    async (capture) => {
      await freshTable('sv_hot', 20_000);
      await db.query('DROP TABLE IF EXISTS sv_hot_twin');
      await db.query('CREATE TABLE sv_hot_twin LIKE sv_hot');
      await db.query('INSERT INTO sv_hot_twin SELECT * FROM sv_hot');
      await db.query(`ALTER TABLE sv_hot_twin ${ALTER}`);
      // Updates on a few hot rows, as fast as they go: every view has rows changed between its instants.
      let running = true;
      let writes = 0;
      const writers = Array.from({ length: 3 }, (_, w) =>
        (async () => {
          for (let i = 0; running; i++) {
            // Each writer its own rows, so the twin's writes land in the same order as the original's.
            const id = 1 + w * 50 + ((i * 7) % 50);
            const v = `w${w}-${i}`;
            await db.query('UPDATE sv_hot SET v = ? WHERE id = ?', [v, id]);
            await db.query('UPDATE sv_hot_twin SET v = ? WHERE id = ?', [v, id]);
            writes++;
          }
        })(),
      );
      let result;
      try {
        result = await migrateMysql('sv_hot', ALTER, { dropOld: true, lockTimeoutMs: 500 }, { capture });
      } finally {
        running = false;
        await Promise.all(writers);
      }
      expect(writes).toBeGreaterThan(100);
      // A row excused in the view is compared again later, never repaired as a fault: one round.
      expect(result.checksumRounds).toBe(1);
      expect(await differences(db, 'sv_hot', 'sv_hot_twin')).toEqual([]);
    },
  );
});
