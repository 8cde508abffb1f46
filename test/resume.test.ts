import { describe, expect, it } from 'vitest';
import { databases, expectMirrored, migrateOn, plainDatabases, useDatabase, type Database } from './support/fixture.js';
import { killDuringPhase } from './support/kill.js';
import { MirrorWorkload, type Statement } from './support/workload.js';

// Each engine's words for the same table and ALTER. The seeds are large enough that the copy is
// still running when the kill arrives, even on a fast machine.
const dialects = {
  mysql: {
    rows: 60_000,
    alter: 'ADD COLUMN note VARCHAR(50) NULL, MODIFY qty BIGINT NOT NULL',
    create: (t: string) => `CREATE TABLE ${t} (id INT PRIMARY KEY, qty INT NOT NULL, at DATETIME(6) NOT NULL, body TEXT) ENGINE=InnoDB`,
    at: `'2024-01-01 00:00:00.000001' + INTERVAL g SECOND`,
    later: 'at + INTERVAL 1 MICROSECOND',
    zone: '',
  },
  postgres: {
    rows: 90_000,
    alter: 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note text',
    create: (t: string) => `CREATE TABLE ${t} (id int PRIMARY KEY, qty int NOT NULL, at timestamptz NOT NULL, body text)`,
    at: `'2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1 second'`,
    later: `at + interval '1 microsecond'`,
    zone: '+00',
  },
};

/** Updates, deletes and inserts; worker w owns the ids congruent to w + 1 mod 3. */
function writes(db: Database): (worker: number) => Statement {
  const { rows, later, zone } = dialects[db.kind];
  const p = (n: number) => db.param(n);
  const inserted = [0, 0, 0];
  return (worker) => {
    const id = 1 + worker + 3 * Math.floor(Math.random() * (rows / 3));
    const r = Math.random();
    if (r < 0.6) return { sql: `UPDATE {t} SET qty = qty + 1, at = ${later} WHERE id = ${p(1)}`, values: [id] };
    if (r < 0.8) return { sql: `DELETE FROM {t} WHERE id = ${p(1)}`, values: [id] };
    const fresh = rows + 1000 + worker + 3 * inserted[worker]++;
    return { sql: `INSERT INTO {t} (id, qty, at, body) VALUES (${p(1)}, 1, '2025-05-05 05:05:05.000005${zone}', 'new')`, values: [fresh] };
  };
}

// The servers as they come capture changes with triggers (`auto`): their log must outlive the kill as a slot does.
const servers = [...databases.map((d) => ({ ...d, triggers: false })), ...plainDatabases.map((d) => ({ ...d, triggers: true }))];

describe.each(servers)('$name: kill -9, then --resume', ({ open, kind, triggers }) => {
  const db = useDatabase(open, 'rs_t', 'rs_mirror');
  const { rows, alter, create, at } = dialects[kind];

  async function seed() {
    // What an earlier killed run left (PostgreSQL's slot and publication too).
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'rs_t', '--drop-old']).code).toBe(0);
    await db.drop('rs_t', 'rs_mirror');
    await db.query(create('rs_t'));
    await db.query(`INSERT INTO rs_t SELECT g, g % 50, ${at}, REPEAT('b', g % 300) FROM (${db.series(rows)}) s`);
    await db.query(create('rs_mirror'));
    await db.query('INSERT INTO rs_mirror SELECT * FROM rs_t');
  }

  it.each([
    ['copy', 300],
    ['catch-up', 0],
    ['verify', 0],
  ])('killed during %s: the resumed run ends with exactly the rows of the mirror, under writes', async (phase, delay) => {
    await seed();
    const load = new MirrorWorkload(db, ['rs_t', 'rs_mirror'], writes(db));
    load.start();
    try {
      // Killed 300 ms into the copy: paced so the copy lasts seconds however fast the machine copies (it once finished first).
      const paced = phase === 'copy' ? ['--max-rows-per-sec', String(Math.round(rows / 3))] : [];
      const crash = await killDuringPhase(['--url', db.url, '--table', 'rs_t', '--alter', alter, '--chunk-time-ms', '10', ...paced], phase, delay);
      expect(crash.killed, `the run ended before ${phase} (exit ${crash.exitCode}): ${crash.stderr}`).toBe(true);
      // The dead run's shadow waits for us; on PostgreSQL, with the slot and publication that resume the stream.
      const left = await db.helpers('rs_t');
      expect(left).toContain('rs_t__new');
      expect(left).not.toContain('rs_t__old');
      // PostgreSQL: the slot and the publication, or the trigger function (all three share the name).
      expect(left.filter((h) => h.startsWith('shadowcut_'))).toHaveLength(db.kind === 'postgres' ? (triggers ? 1 : 2) : 0);
      expect(left.includes('rs_t__log')).toBe(triggers);

      // Without --resume the leftovers are refused (PostgreSQL says how much WAL the slot holds); with a different ALTER too.
      const fresh = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'rs_t', '--alter', alter, '--execute']);
      expect(fresh.stderr).toMatch(/left a checkpoint( \(its replication slot retains [^)]+ of WAL\))?: continue it with --resume/);
      const other = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'rs_t', '--alter', 'ADD COLUMN z INT', '--execute', '--resume']);
      expect(other.stderr).toMatch(/was for a different ALTER/);

      const result = await migrateOn(db, 'rs_t', alter, { resume: true });
      expect(result.resumed).toBe(true);
      // Verification would repair missed changes; a correct resume leaves it nothing to repair.
      expect(result.checksumRounds).toBe(1);
      await load.untilMoreWrites();
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    await db.query(`ALTER TABLE rs_mirror ${alter}`);
    await expectMirrored(db, 'rs_t', 'rs_mirror');
  });

  it('refuses at once, in one line, to resume on a table dropped and made again since the kill', async () => {
    await seed();
    const crash = await killDuringPhase(
      ['--url', db.url, '--table', 'rs_t', '--alter', alter, '--chunk-time-ms', '10', '--max-rows-per-sec', String(Math.round(rows / 3))],
      'copy',
      300,
    );
    expect(crash.killed, `the run ended before its copy (exit ${crash.exitCode}): ${crash.stderr}`).toBe(true);
    // The same name, the same rows, another table: the shadow was copied from the one dropped.
    await db.query('DROP TABLE rs_t');
    await db.query(create('rs_t'));
    await db.query('INSERT INTO rs_t SELECT * FROM rs_mirror');
    const before = await db.differences('rs_t', 'rs_mirror');
    const resumed = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'rs_t', '--alter', alter, '--execute', '--resume']);
    expect(resumed.code).toBe(2);
    expect(resumed.stderr.trim().split('\n')).toHaveLength(1);
    expect(resumed.stderr).toMatch(/refusing to resume on \S*rs_t: it is not the table the checkpoint was made for \(dropped and made again/);
    // Nothing was changed: the dead run's shadow waits for a cleanup, the table is as it was made.
    expect(await db.helpers('rs_t')).toContain('rs_t__new');
    expect(before).toEqual([]);
    expect(await db.differences('rs_t', 'rs_mirror')).toEqual([]);
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'rs_t']).code).toBe(0);
  });
});
