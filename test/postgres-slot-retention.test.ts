import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killDuringPhase } from './support/kill.js';
import { runCli } from './support/mysql.js';
import { pgDropTables, pgPool, pgUrl } from './support/pg.js';

const t = 'slot_kept';
const args = ['--url', pgUrl(), '--table', t, '--alter', 'ADD COLUMN x int'];

/** A slot left by a dead run keeps every WAL segment from then on: the operator is told how much. */
describe("the WAL a dead run's slot retains (PostgreSQL)", () => {
  let db: pg.Pool;
  beforeAll(() => {
    db = pgPool();
  });
  afterAll(async () => {
    runCli(['cleanup', ...args.slice(0, 4)]);
    await pgDropTables(db, [t]);
    await db.end();
  });

  it('is named by the preflight, by status and by cleanup; an unlimited max_slot_wal_keep_size is pointed out', async () => {
    runCli(['cleanup', ...args.slice(0, 4)]);
    await pgDropTables(db, [t]);
    await db.query(`CREATE TABLE ${t} (id int PRIMARY KEY, body text)`);
    await db.query(`INSERT INTO ${t} SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g`);

    const dry = runCli(['migrate', '--force-copy', ...args]);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/max_slot_wal_keep_size: note: max_slot_wal_keep_size is unlimited/);

    const { killed } = await killDuringPhase([...args, '--chunk-time-ms', '10'], 'copy');
    expect(killed).toBe(true);
    // WAL the slot must now keep: about 5 MB of new rows.
    await db.query(`INSERT INTO ${t} SELECT g, repeat('y', 200) FROM generate_series(20001, 40000) g`);

    const retaining = /replication slot shadowcut_slot_kept_\w+ \(retaining \d+ (kB|MB) of WAL\)/;
    const status = runCli(['status', '--url', pgUrl(), '--table', `public.${t}`]);
    expect(status.code).not.toBe(0);
    expect(status.stderr.trim().split('\n')).toHaveLength(1);
    expect(status.stderr).toMatch(retaining);

    const again = runCli(['migrate', '--force-copy', ...args, '--execute']);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/left a checkpoint \(its replication slot retains \d+ (kB|MB) of WAL\): continue it with --resume/);

    const cleanup = runCli(['cleanup', ...args.slice(0, 4)]);
    expect(cleanup.code).toBe(0);
    expect(cleanup.stdout).toMatch(retaining);
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'shadowcut_slot_kept%'`);
    expect(rows[0].n).toBe('0');
  });
});
