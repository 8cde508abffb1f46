import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killDuringPhase } from './support/kill.js';
import { runCli } from './support/mysql.js';
import { MirrorWorkload, migratePg, pgDifferences, pgHelpers, pgPool, pgSchemaOf, pgUrl, type Statement } from './support/pg.js';

// Large enough that the copy is still running when the kill arrives, even on a fast machine.
const ROWS = 300_000;
const ALTER = 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note text';
let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS rp_t, rp_mirror, rp_t__new, rp_t__old, rp_t__state, rp_t__hb');
  await db.end();
});

async function seed() {
  expect(runCli(['cleanup', '--url', pgUrl(), '--table', 'rp_t', '--drop-old'], pgUrl()).code).toBe(0);
  await db.query('DROP TABLE IF EXISTS rp_t, rp_mirror, rp_t__new, rp_t__old, rp_t__state, rp_t__hb');
  await db.query('CREATE TABLE rp_t (id int PRIMARY KEY, qty int NOT NULL, at timestamptz NOT NULL, body text)');
  await db.query(`INSERT INTO rp_t SELECT g, g % 50, '2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1 second', repeat('b', g % 300)
                  FROM generate_series(1, ${ROWS}) g`);
  await db.query('CREATE TABLE rp_mirror (LIKE rp_t INCLUDING ALL)');
  await db.query('INSERT INTO rp_mirror SELECT * FROM rp_t');
}

const inserted = [0, 0, 0];
function writes(worker: number): Statement {
  const id = 1 + worker + 3 * Math.floor(Math.random() * (ROWS / 3));
  const r = Math.random();
  if (r < 0.6) return { sql: `UPDATE {t} SET qty = qty + 1, at = at + interval '1 microsecond' WHERE id = $1`, values: [id] };
  if (r < 0.8) return { sql: 'DELETE FROM {t} WHERE id = $1', values: [id] };
  const fresh = ROWS + 1000 + worker + 3 * ++inserted[worker];
  return { sql: `INSERT INTO {t} VALUES ($1, 1, '2025-05-05 05:05:05.000005+00', 'new')`, values: [fresh] };
}

describe('kill -9, then --resume (PostgreSQL)', () => {
  it.each([
    ['copy', 300],
    ['catch-up', 0],
    ['verify', 0],
  ])('killed during %s: the resumed run ends with exactly the rows of the mirror, under writes', async (phase, delay) => {
    await seed();
    const load = new MirrorWorkload(db, ['rp_t', 'rp_mirror'], writes);
    load.start();
    try {
      const crash = await killDuringPhase(['--url', pgUrl(), '--table', 'rp_t', '--alter', ALTER, '--chunk-time-ms', '10'], phase, delay);
      expect(crash.killed).toBe(true);
      expect((await pgHelpers(db, 'rp_t')).filter((h) => h.startsWith('shadowcut_'))).toHaveLength(2); // slot and publication kept for resuming
      const result = await migratePg('rp_t', ALTER, { resume: true });
      expect(result.resumed).toBe(true);
      // Verification would repair missed changes; a correct resume leaves it nothing to repair.
      expect(result.checksumRounds).toBe(1);
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await load.stop();
    }
    expect(load.errors).toEqual([]);
    await db.query(`ALTER TABLE rp_mirror ${ALTER}`);
    expect(await pgSchemaOf(db, 'rp_t')).toEqual(await pgSchemaOf(db, 'rp_mirror'));
    expect(await pgDifferences(db, 'rp_t', 'rp_mirror')).toEqual({ onlyA: 0, onlyB: 0 });
    expect(await pgHelpers(db, 'rp_t')).toEqual(['rp_t__old']);
  });
});
