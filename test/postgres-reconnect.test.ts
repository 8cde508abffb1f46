import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentReporter } from '../src/core/reporter.js';
import { differences, migratePg, pgPool, postgresDatabase } from './support/pg.js';
import { MirrorWorkload, type Statement } from './support/workload.js';
import { runState } from './support/run.js';

const ROWS = 200_000;
let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS prc_t, prc_mirror, prc_t__new, prc_t__old, prc_t__state');
  await db.end();
});

function writes(worker: number): Statement {
  const id = 1 + worker + 3 * Math.floor(Math.random() * (ROWS / 3));
  return { sql: 'UPDATE {t} SET v = v + 1 WHERE id = $1', values: [id] };
}

/** Ends the tool's sessions (its walsender and pooled connections), as a failover or a DBA would. */
async function killToolConnections(): Promise<number> {
  const { rows } = await db.query(
    `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE application_name = 'shadowcut' AND pid <> pg_backend_pid()`,
  );
  return rows.length;
}

describe('a lost connection (PostgreSQL)', () => {
  it('is retried, the replication stream is reopened from the last applied position, and nothing is lost', async () => {
    await db.query('DROP TABLE IF EXISTS prc_t, prc_mirror, prc_t__new, prc_t__old, prc_t__state');
    await db.query('CREATE TABLE prc_t (id int PRIMARY KEY, v int NOT NULL, pad text NOT NULL)');
    await db.query(`INSERT INTO prc_t SELECT g, 0, repeat('p', 100) FROM generate_series(1, ${ROWS}) g`);
    await db.query('CREATE TABLE prc_mirror (LIKE prc_t INCLUDING ALL)');
    await db.query('INSERT INTO prc_mirror SELECT * FROM prc_t');
    const load = new MirrorWorkload(postgresDatabase(db), ['prc_t', 'prc_mirror'], writes);
    const state = runState('public.prc_t', 'ADD COLUMN w int', 'postgres', { chunkTimeMs: 10 });
    const warnings: string[] = [];
    const reporter = { ...silentReporter, warn: (message: string) => void warnings.push(message) };
    let kills = 0;
    load.start();
    try {
      const run = migratePg('prc_t', 'ADD COLUMN w int', { state, reporter });
      for (let round = 0; round < 2; round++) {
        const target = (round + 1) * 50_000;
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
    await db.query('ALTER TABLE prc_mirror ADD COLUMN w int');
    expect(await differences(db, 'prc_t', 'prc_mirror')).toEqual([]);
  });
});
