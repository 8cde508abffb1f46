// Declaratively partitioned tables on PostgreSQL: the shadow is a tree with the same bounds, the swap
// renames both trees in one transaction, and rows that move between partitions land right.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentReporter } from '../src/core/report/reporter.js';
import { migrateOn, useDatabase, type Database } from './support/fixture.js';
import { killDuringPhase } from './support/kill.js';
import { postgresDatabase } from './support/pg.js';
import { MirrorWorkload, type Statement } from './support/workload.js';

const db = useDatabase(() => postgresDatabase(), 'pf_child', 'pp_t', 'pp_m', 'pl_t', 'pl_m', 'pa_t', 'pa_new', 'pr_t', 'pr_ref', 'pt_t');

const defaultDb = db;
const ALTER = 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note text';

/** A range-partitioned table with a default partition (dates before 2024 and after 2025 land there). */
async function createRange(t: string, rows: number, db = defaultDb) {
  // A partition detached by an earlier test is a table of its own by now.
  await db.query(`DROP TABLE IF EXISTS ${t}, ${t}__new, ${t}__old, ${t}_2024, ${t}_2025, ${t}_def CASCADE`);
  await db.query(`CREATE TABLE ${t} (id int NOT NULL, at date NOT NULL, qty int NOT NULL, body text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)`);
  await db.query(`CREATE INDEX ${t}_qty ON ${t} (qty)`);
  await db.query(`CREATE TABLE ${t}_2024 PARTITION OF ${t} FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`);
  await db.query(`CREATE TABLE ${t}_2025 PARTITION OF ${t} FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')`);
  await db.query(`CREATE TABLE ${t}_def PARTITION OF ${t} DEFAULT`);
  await db.query(`GRANT SELECT ON ${t} TO PUBLIC`);
  await db.query(`GRANT SELECT ON ${t}_2025 TO PUBLIC`);
  if (rows > 0) await db.query(`INSERT INTO ${t} SELECT g, date '2023-07-01' + g % 1000, g % 50, repeat('b', g % 200) FROM generate_series(1, ${rows}) g`);
}

/** Updates in place, updates that move a row to another partition (its key changes), deletes, inserts; worker w owns ids = w + 1 mod 3. */
function movingWrites(
  rows: number,
  move: string,
  insert = `INSERT INTO {t} VALUES ($1, date '2023-12-25' + $1 % 800, 1, 'new')`,
): (worker: number) => Statement {
  const inserted = [0, 0, 0];
  return (worker) => {
    const id = 1 + worker + 3 * Math.floor(Math.random() * (rows / 3));
    const r = Math.random();
    if (r < 0.35) return { sql: 'UPDATE {t} SET qty = qty + 1 WHERE id = $1', values: [id] };
    if (r < 0.75) return { sql: `UPDATE {t} SET ${move} WHERE id = $1`, values: [id] };
    if (r < 0.85) return { sql: 'DELETE FROM {t} WHERE id = $1', values: [id] };
    const fresh = rows + 1000 + worker + 3 * inserted[worker]++;
    return { sql: insert, values: [fresh] };
  };
}

const RANGE_MOVE = `at = CASE WHEN at < '2026-03-01' THEN at + 190 ELSE at - 900 END`;

/** Rows equal, each in the partition of the same name (the tables' names put aside) as on the mirror. */
async function expectSamePartitions(d: Database, table: string, mirror: string) {
  const placed = (t: string, alias: string) => `(SELECT replace(tableoid::regclass::text, '${t}', 'T') AS part, * FROM ${t}) ${alias}`;
  expect(await d.differences(table, mirror)).toEqual([]);
  expect(await d.differences(placed(table, 'a'), placed(mirror, 'b'))).toEqual([]);
  expect(await d.schema(table)).toBe(await d.schema(mirror));
}

async function tree(t: string, db = defaultDb): Promise<string[]> {
  const rows = await db.query(
    `SELECT c.relname || ' ' || coalesce(pg_get_expr(c.relpartbound, c.oid), '') || ' ' || coalesce(array_to_string(c.relacl, ','), '') AS r
       FROM pg_partition_tree($1) t JOIN pg_class c ON c.oid = t.relid ORDER BY 1`,
    [t],
  );
  return rows.map((r) => String(r[0]));
}

async function indexNames(t: string, db = defaultDb): Promise<string[]> {
  const rows = await db.query(
    `SELECT i.indexrelid::regclass::text || ' ' || i.indisvalid AS r FROM pg_partition_tree($1) t JOIN pg_index i ON i.indrelid = t.relid ORDER BY 1`,
    [t],
  );
  return rows.map((r) => String(r[0]));
}

// The server as it comes (wal_level=replica) captures changes with triggers: row triggers cloned onto
// every partition, and a TRUNCATE trigger on each.
const plain = useDatabase(() => postgresDatabase({ plain: true }), 'pp_t', 'pp_m', 'pt_t');

describe.each([
  ['the stream', db],
  ['triggers', plain],
])('a range-partitioned table with a default partition, rows moving between partitions (%s)', (_capture, db) => {
  const rows = 150_000;

  it.each([
    ['killed with SIGKILL during the copy, then resumed', true],
    ['in one run', false],
  ])(
    '%s: every row as on the mirror, in the same partition; names, indexes and grants carried',
    async (_what, kill) => {
      db.cli(['cleanup', '--url', '$URL', '--table', 'pp_t', '--drop-old']);
      await createRange('pp_t', rows, db);
      await createRange('pp_m', 0, db);
      await db.query('INSERT INTO pp_m SELECT * FROM pp_t');
      const before = { tree: await tree('pp_t', db), indexes: await indexNames('pp_t', db) };
      const load = new MirrorWorkload(db, ['pp_t', 'pp_m'], movingWrites(rows, RANGE_MOVE));
      load.start();
      try {
        if (kill) {
          // Paced, so a kill 300 ms into the copy lands in it however fast the machine copies.
          const paced = ['--max-rows-per-sec', String(rows / 3)];
          const crash = await killDuringPhase(['--url', db.url, '--table', 'pp_t', '--alter', ALTER, '--chunk-time-ms', '10', ...paced], 'copy', 300);
          expect(crash.killed, `the run ended before the copy (exit ${crash.exitCode}): ${crash.stderr}`).toBe(true);
          expect(await db.helpers('pp_t')).toContain('pp_t__new');
        }
        const result = await migrateOn(db, 'pp_t', ALTER, { resume: kill, chunkTimeMs: 20 });
        expect(result.resumed).toBe(kill);
        await load.untilMoreWrites();
      } finally {
        await load.stop();
      }
      expect(load.stats.errors).toEqual([]);
      await db.query(`ALTER TABLE pp_m ${ALTER}`);
      await expectSamePartitions(db, 'pp_t', 'pp_m');
      expect(await tree('pp_t', db)).toEqual(before.tree);
      expect(await indexNames('pp_t', db)).toEqual(before.indexes);
      // The old tree is kept whole, under names of its own.
      expect((await tree('pp_t__old', db)).map((r) => r.split(' ')[0])).toEqual(['pp_t_2024__old', 'pp_t_2025__old', 'pp_t__old', 'pp_t_def__old']);
      expect(await db.helpers('pp_t')).toEqual(['pp_t__old']);
    },
    240_000,
  );
});

describe('list partitions sub-partitioned by hash, with a default', () => {
  async function createList(t: string, rows: number) {
    await db.query(`DROP TABLE IF EXISTS ${t}, ${t}__new, ${t}__old CASCADE`);
    await db.query(
      `CREATE TABLE ${t} (id int NOT NULL, region text NOT NULL, qty int NOT NULL, CHECK (qty >= 0), PRIMARY KEY (id, region)) PARTITION BY LIST (region)`,
    );
    await db.query(`CREATE TABLE ${t}_eu PARTITION OF ${t} FOR VALUES IN ('eu', 'uk') PARTITION BY HASH (id)`);
    await db.query(`CREATE TABLE ${t}_eu_0 PARTITION OF ${t}_eu FOR VALUES WITH (MODULUS 2, REMAINDER 0)`);
    await db.query(`CREATE TABLE ${t}_eu_1 PARTITION OF ${t}_eu FOR VALUES WITH (MODULUS 2, REMAINDER 1)`);
    await db.query(`CREATE TABLE ${t}_us PARTITION OF ${t} FOR VALUES IN ('us')`);
    await db.query(`CREATE TABLE ${t}_rest PARTITION OF ${t} DEFAULT`);
    await db.query(`CREATE UNIQUE INDEX ${t}_qty ON ${t} (qty, id, region)`);
    if (rows > 0) await db.query(`INSERT INTO ${t} SELECT g, (ARRAY['eu', 'uk', 'us', 'jp'])[1 + g % 4], g % 70 FROM generate_series(1, ${rows}) g`);
  }

  it('rows moving between regions land in the partition the mirror has them in', async () => {
    const rows = 40_000;
    await createList('pl_t', rows);
    await createList('pl_m', 0);
    await db.query('INSERT INTO pl_m SELECT * FROM pl_t');
    const before = await indexNames('pl_t');
    const move = `region = (ARRAY['eu', 'uk', 'us', 'jp', 'br'])[1 + (qty + id) % 5], qty = qty + 1`;
    const load = new MirrorWorkload(db, ['pl_t', 'pl_m'], movingWrites(rows, move, `INSERT INTO {t} VALUES ($1, 'br', 0)`));
    load.start();
    try {
      await migrateOn(db, 'pl_t', "ADD COLUMN note text DEFAULT 'x'", { chunkTimeMs: 20 });
      await load.untilMoreWrites();
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    await db.query(`ALTER TABLE pl_m ADD COLUMN note text DEFAULT 'x'`);
    await expectSamePartitions(db, 'pl_t', 'pl_m');
    expect(await indexNames('pl_t')).toEqual(before);
  }, 120_000);
});

describe('the partition set changing during the run', () => {
  it.each([
    [
      'a partition attached',
      `CREATE TABLE pa_new (LIKE pa_t); INSERT INTO pa_new VALUES (7, '2030-01-01', 1, 'x'); ALTER TABLE pa_t ATTACH PARTITION pa_new FOR VALUES FROM ('2030-01-01') TO ('2031-01-01')`,
    ],
    ['a partition detached', 'ALTER TABLE pa_t DETACH PARTITION pa_t_2024'],
    ['a partition created', `CREATE TABLE pa_new PARTITION OF pa_t FOR VALUES FROM ('2040-01-01') TO ('2041-01-01')`],
  ])(
    '%s: the run stops with one line, the original tree is untouched and nothing is left',
    async (_what, change) => {
      await db.query('DROP TABLE IF EXISTS pa_new');
      await createRange('pa_t', 30_000);
      // The run holds before its cut-over while the flag file exists: the change lands then, never after the swap.
      const flag = path.join(mkdtempSync(path.join(tmpdir(), 'sc-pa-')), 'hold');
      writeFileSync(flag, '');
      const reporter = {
        ...silentReporter,
        info: (message: string) => void (/postponed/.test(message) && db.query(change).finally(() => rmSync(flag, { force: true }))),
      };
      const run = migrateOn(db, 'pa_t', ALTER, { reporter, chunkTimeMs: 10, postponeFlagFile: flag });
      await expect(run).rejects.toThrow(
        /pa_t (were attached, detached, created or dropped during the migration; stopped safely|gained a partition during the migration)/,
      );
      expect(await db.helpers('pa_t')).toEqual([]);
      expect(await db.schema('pa_t')).toContain('qty integer');
    },
    60_000,
  );
});

describe('what a partitioned table cannot carry yet', () => {
  it('a foreign key from it, an index of one partition alone: refused with one line, nothing made', async () => {
    await createRange('pr_t', 100);
    await db.query('DROP TABLE IF EXISTS pr_ref');
    await db.query('CREATE TABLE pr_ref (qty int PRIMARY KEY)');
    await db.query('CREATE INDEX pr_t_2024_body ON pr_t_2024 (body)');
    const refused = db.cli(['migrate', '--url', '$URL', '--table', 'pr_t', '--alter', ALTER, '--execute']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/index public.pr_t_2024_body: on a partition alone, not on its parent/);
    await db.query('DROP INDEX pr_t_2024_body');
    await db.query('INSERT INTO pr_ref SELECT DISTINCT qty FROM pr_t');
    await db.query('ALTER TABLE pr_t ADD CONSTRAINT pr_t_qty_fk FOREIGN KEY (qty) REFERENCES pr_ref');
    const fk = db.cli(['migrate', '--url', '$URL', '--table', 'pr_t', '--alter', ALTER, '--execute']);
    expect(fk.stderr).toMatch(/has foreign key\(s\) pr_t_qty_fk; before PostgreSQL 18/);
    expect(await db.helpers('pr_t')).toEqual([]);
  });

  it('a default or NOT NULL set on one partition alone: refused with one line, nothing made', async () => {
    await createRange('pd_t', 100);
    await db.query(`ALTER TABLE pd_t_2024 ALTER COLUMN body SET DEFAULT 'only here'`);
    const refused = db.cli(['migrate', '--url', '$URL', '--table', 'pd_t', '--alter', ALTER, '--execute']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/column body of public.pd_t_2024: set on a partition alone/);
    await db.query('ALTER TABLE pd_t_2024 ALTER COLUMN body DROP DEFAULT');
    await db.query('ALTER TABLE pd_t_2025 ALTER COLUMN body SET NOT NULL');
    const notNull = db.cli(['migrate', '--url', '$URL', '--table', 'pd_t', '--alter', ALTER, '--execute']);
    expect(notNull.stderr).toMatch(/column body of public.pd_t_2025: set on a partition alone/);
    expect(await db.helpers('pd_t')).toEqual([]);
  });
});

describe('a foreign key from another table to a partitioned table', () => {
  it('points at the new tree after the cut-over, validated again', async () => {
    await db.query('DROP TABLE IF EXISTS pf_child');
    await createRange('pr_t', 3000);
    await db.query('CREATE TABLE pf_child (id int PRIMARY KEY, t_id int, t_at date, FOREIGN KEY (t_id, t_at) REFERENCES pr_t)');
    await db.query('INSERT INTO pf_child SELECT id, id, at FROM pr_t WHERE id % 3 = 0');
    await migrateOn(db, 'pr_t', ALTER);
    const [[target, validated]] = await db.query(
      `SELECT confrelid::regclass::text, convalidated FROM pg_constraint WHERE conrelid = 'pf_child'::regclass AND contype = 'f' AND conparentid = 0`,
    );
    expect([target, validated]).toEqual(['pr_t', 't']);
    await expect(db.query(`DELETE FROM pr_t WHERE id = 3`)).rejects.toThrow(/violates foreign key constraint/);
  });
});

describe.each([
  ['the stream', db],
  ['triggers', plain],
])('a TRUNCATE of one partition during the run (%s)', (_capture, db) => {
  it('stops the run: the change is one no key can describe', async () => {
    await createRange('pt_t', 20_000, db);
    let done = false;
    const reporter = { ...silentReporter, progress: () => void (done || ((done = true), db.query('TRUNCATE pt_t_2025'))) };
    await expect(migrateOn(db, 'pt_t', ALTER, { reporter, chunkTimeMs: 10 })).rejects.toThrow(/truncated/);
    expect(await db.helpers('pt_t')).toEqual([]);
  }, 60_000);
});
