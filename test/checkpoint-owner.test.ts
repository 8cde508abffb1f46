import { describe, expect, it } from 'vitest';
import { seal, unseal } from '../src/core/engine/state/state-seal.js';
import { databases, useDatabase, type Database } from './support/fixture.js';
import { killDuringPhase } from './support/kill.js';
import { waitFor } from './support/run.js';

// A sealed checkpoint proves shadowcut wrote it, not that it is this table's, or this run's latest
// (issue 60, item 4). Whoever can write `<table>__state` (on MySQL any account with UPDATE on the
// database; on PostgreSQL the migrating role alone, which these tests stand in for) can move another
// table's checkpoint there, or put back a copy it kept. Each of the three callers that read one
// (cleanup, backfill --resume, a set's resume) must refuse such a checkpoint in one line, before
// anything in it is used, and change nothing.

const dialects = {
  mysql: {
    create: (t: string) => `CREATE TABLE ${t} (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB`,
    alter: 'ADD COLUMN w INT NULL',
    // The same text applies again to a table that already took it: a second run of it is a real run.
    again: 'MODIFY n BIGINT NOT NULL',
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (id int PRIMARY KEY, n int NOT NULL)`,
    alter: 'ADD COLUMN w int',
    again: 'ALTER COLUMN n TYPE bigint',
  },
};

/** The body of a sealed checkpoint, as a DBA who looks at the table reads it. */
function bodyOf(stored: string): Record<string, unknown> {
  return JSON.parse(unseal('checkpoint', stored, 'a checkpoint')) as Record<string, unknown>;
}

/** The refusal is one line, names the checkpoint, and carries no stack trace. */
function expectRefused(r: { code: number | null; stderr: string }, pattern: RegExp): void {
  expect(r.stderr).toMatch(pattern);
  expect(r.code).toBe(2);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

describe.each(databases)('$name: a checkpoint is bound to its table and run', ({ open, kind }) => {
  const db: Database = useDatabase(open, 'co_t', 'co_x', 'co_u', 'co_a', 'co_b');
  const d = dialects[kind];
  const state = (t: string) => ({
    read: async () => String((await db.query(`SELECT checkpoint FROM ${t}__state WHERE id = 1`))[0][0]),
    write: (text: string) => db.query(`UPDATE ${t}__state SET checkpoint = ${db.param(1)} WHERE id = 1`, [text]),
  });

  async function seed(rows: number, ...tables: string[]) {
    for (const t of tables) {
      expect(db.cli(['cleanup', '--url', '$URL', '--table', t, '--drop-old']).code).toBe(0);
      await db.drop(t);
      await db.query(d.create(t));
      await db.query(`INSERT INTO ${t} SELECT g, g FROM (${db.series(rows)}) s`);
    }
  }

  /** A migrate of `table` killed during its copy, leaving its checkpoint. */
  async function killedMigrate(table: string, alter = d.alter) {
    const run = ['--url', db.url, '--table', table, '--alter', alter, '--chunk-time-ms', '10', '--max-rows-per-sec', '5000'];
    const crash = await killDuringPhase(run, 'copy', 300);
    expect(crash.killed, crash.stderr).toBe(true);
  }

  it("cleanup refuses another table's checkpoint moved into the table's state: --drop-old drops nothing of the other table's", async () => {
    await seed(20_000, 'co_t', 'co_x');
    await killedMigrate('co_x');
    await killedMigrate('co_t');
    const own = await state('co_t').read();
    const other = await state('co_x').read();
    // The table the moved checkpoint names as its old one: a rollback copy another run kept, say.
    const old = String((bodyOf(other).plan as { detail: { old: string } }).detail.old);
    await db.drop(old);
    await db.query(d.create(old));
    await db.query(`INSERT INTO ${old} VALUES (1, 1)`);
    const before = { t: await db.helpers('co_t'), x: await db.helpers('co_x') };

    await state('co_t').write(other);
    expectRefused(
      db.cli(['cleanup', '--url', '$URL', '--table', 'co_t', '--drop-old']),
      /^shadowcut: refusing the checkpoint of \S*co_t: it is the checkpoint of \S*co_x, moved here; nothing in it was used$/m,
    );
    expect(Number((await db.query(`SELECT COUNT(*) FROM ${old}`))[0][0])).toBe(1);
    expect({ t: await db.helpers('co_t'), x: await db.helpers('co_x') }).toEqual(before);

    // Sealed by a version that named no table or run: refused too.
    const { owner: _owner, ...unnamed } = bodyOf(own);
    await state('co_t').write(seal('checkpoint', JSON.stringify(unnamed)));
    expectRefused(
      db.cli(['cleanup', '--url', '$URL', '--table', 'co_t']),
      /^shadowcut: refusing the checkpoint of \S*co_t: it names no table or run \(sealed by an older shadowcut\); nothing in it was used$/m,
    );

    // Its own checkpoint back, the cleanup goes ahead, and ends that run: a copy written back later is refused.
    await state('co_t').write(own);
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'co_t']).code).toBe(0);
    expect(await db.helpers('co_t')).toEqual([]);
    await killedMigrate('co_t');
    const next = await state('co_t').read();
    await state('co_t').write(own);
    expectRefused(db.cli(['cleanup', '--url', '$URL', '--table', 'co_t']), /^shadowcut: refusing the checkpoint of \S*co_t: its run ended on this host/m);
    await state('co_t').write(next);
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'co_t']).code).toBe(0);
    await db.query(`DROP TABLE ${old}`);
    const resumed = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'co_x', '--alter', d.alter, '--execute', '--resume']);
    expect(resumed.code, resumed.stderr).toBe(0);
  });

  it("backfill --resume refuses another table's checkpoint, and an older checkpoint of its own run put back", async () => {
    await seed(20_000, 'co_u', 'co_t');
    const fill = (t: string) => ['--url', db.url, '--table', t, '--set', 'n = n + 1', '--batch-rows', '100', '--max-rows-per-sec', '2000'];
    const resume = (t: string) => db.cli(['backfill', '--url', '$URL', '--table', t, '--set', 'n = n + 1', '--batch-rows', '500', '--execute', '--resume']);
    const updated = async (t: string) => Number((await db.query(`SELECT COUNT(*) FROM ${t} WHERE n <> id`))[0][0]);

    // co_u stopped early; co_t went further, and a copy of its checkpoint was kept on the way.
    expect((await killDuringPhase(fill('co_u'), 'backfill', 300, 'backfill')).killed).toBe(true);
    const crash = killDuringPhase(fill('co_t'), 'backfill', 4000, 'backfill');
    let early: string | null = null;
    const checkpointed = async () => {
      // Not there until the run has made its state table.
      const rows = await db.query(`SELECT checkpoint FROM co_t__state WHERE id = 1`).catch(() => []);
      if (rows.length && Number(bodyOf(String(rows[0][0])).batches) >= 1) early = String(rows[0][0]);
      return early !== null;
    };
    // Not failed here on a timeout: the assertions below say what was seen.
    await waitFor('a checkpoint of one batch', checkpointed, null, 8_000).catch(() => {});
    expect((await crash).killed).toBe(true);
    expect(early).not.toBeNull();
    const latest = await state('co_t').read();
    expect(Number(bodyOf(latest).batches)).toBeGreaterThan(Number(bodyOf(early!).batches));

    // Moved: the same --set alone would have skipped every row of co_u up to co_t's last batch.
    const own = await state('co_u').read();
    const doneU = await updated('co_u');
    await state('co_u').write(latest);
    expectRefused(resume('co_u'), /^shadowcut: refusing the checkpoint of \S*co_u: it is the checkpoint of \S*co_t, moved here; nothing in it was used$/m);
    expect(await updated('co_u')).toBe(doneU);

    // Put back: the batches after it would have been added to again (n + 2).
    const doneT = await updated('co_t');
    await state('co_t').write(early!);
    expectRefused(
      resume('co_t'),
      /^shadowcut: refusing the checkpoint of \S*co_t: it is an older checkpoint of its run \(save \d+; this host saved \d+ since\), put back; nothing in it was used$/m,
    );
    expect(await updated('co_t')).toBe(doneT);

    // Their own latest checkpoints resume, and every row is added to exactly once.
    await state('co_u').write(own);
    await state('co_t').write(latest);
    for (const t of ['co_u', 'co_t']) {
      const r = resume(t);
      expect(r.code, r.stderr).toBe(0);
      expect(Number((await db.query(`SELECT COUNT(*) FROM ${t} WHERE n <> id + 1`))[0][0])).toBe(0);
      expect(await db.helpers(t)).toEqual([]);
    }
  });

  it("a set's resume refuses a checkpoint of an earlier, finished run put back in one table's state, before it decides the set was swapped", async () => {
    await seed(20_000, 'co_a', 'co_b');
    // An earlier run on co_a, killed, its checkpoint copied as its swap would have left it, then finished.
    await killedMigrate('co_a', d.again);
    const earlier = await state('co_a').read();
    // Stands in for the checkpoint that run sealed right after its swap (shadowcut's own seal, its own key).
    const swappedEarlier = seal('checkpoint', JSON.stringify({ ...bodyOf(earlier), cutOver: true }));
    const finished = db.cli(['migrate', '--force-copy', '--url', '$URL', '--table', 'co_a', '--alter', d.again, '--execute', '--resume']);
    expect(finished.code, finished.stderr).toBe(0);

    // The set, killed during its copy: both tables have their checkpoints, neither is swapped.
    const pairs = ['--table', 'co_a', '--alter', d.again, '--table', 'co_b', '--alter', d.alter];
    const crash = await killDuringPhase(['--url', db.url, ...pairs, '--chunk-time-ms', '10', '--max-rows-per-sec', '5000'], 'copy', 300);
    expect(crash.killed, crash.stderr).toBe(true);
    const own = await state('co_a').read();
    const schemaB = await db.schema('co_b');

    // The earlier run's checkpoint would say "swapped": co_a only cleaned up, co_b swapped alone.
    await state('co_a').write(swappedEarlier);
    const resume = () => db.cli(['migrate', '--force-copy', '--url', '$URL', ...pairs, '--execute', '--resume']);
    expectRefused(
      resume(),
      /^shadowcut: refusing the checkpoint of \S*co_a: its run ended on this host, and it was put back after that run removed it; nothing in it was used$/m,
    );
    expect(await db.schema('co_b')).toBe(schemaB);
    expect(await db.helpers('co_b')).toContain('co_b__new');
    expect(await db.helpers('co_a')).toContain('co_a__new');

    // With its own checkpoint back, the set resumes and swaps both tables.
    await state('co_a').write(own);
    const resumed = resume();
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(await db.schema('co_b')).not.toBe(schemaB);
    expect(await db.helpers('co_b')).toEqual(['co_b__old']);
  });
});
