import { added, entries, plainTable, plainTableWrites } from './support/queue-table.js';
import { afterAll, describe, expect, it } from 'vitest';
import { migratedFrom, oldTableName } from '../src/core/engine/old-table.js';
import { databases, migrateOn, useDatabase, type Database } from './support/fixture.js';
import { killDuringPhase } from './support/kill.js';
import { postgresDatabase } from './support/pg.js';
import { MirrorWorkload } from './support/workload.js';

// Issue 52, item 3: a table changed twice keeps two originals. Each engine's words for a table and
// two changes to it: the second is one a DBA queues after the first (an index; PostgreSQL's ALTER
// TABLE makes none, so a type change there).
const dialects = {
  mysql: { first: 'ADD COLUMN extra VARCHAR(20) NULL', second: 'ADD INDEX by_v (v)', fits: (name: string) => name.length <= 64 },
  postgres: { first: 'ADD COLUMN extra varchar(20)', second: 'ALTER COLUMN v TYPE bigint', fits: (name: string) => Buffer.byteLength(name) <= 63 },
} as const;

/** The `n`-th old table name of `table`, spelt here, not by the code under test. */
const nth = (table: string, n: number) => (n === 1 ? `${table}__old` : `${table}__old_${n}`);

/** Longer than any helper name needs room for after it, and one family name short of the limit on either server. */
const LONG = `on_long_${'x'.repeat(49)}`;

async function table(db: Database, name: string, rows: number): Promise<void> {
  await dropFamily(db, name);
  await plainTable(db, name, rows);
}

/** The old tables earlier runs of this file kept: `db.drop` knows only the first name of the family. */
async function dropFamily(db: Database, name: string): Promise<void> {
  const family = Array.from({ length: 12 }, (_, i) => nth(name, i + 1)).filter((n) => dialects[db.kind].fits(n));
  await db.query(`DROP TABLE IF EXISTS ${family.join(', ')}`);
}

describe('the old table family', () => {
  it('tells whose old table a name is, for a contract of it', () => {
    expect(migratedFrom('shop.orders__old')).toBe('shop.orders');
    expect(migratedFrom('shop.orders__old_2')).toBe('shop.orders');
    expect(migratedFrom('orders__old_12')).toBe('orders');
    // `_1` is never chosen, and a name that is only the suffix belongs to no table.
    for (const name of ['orders__old_1', 'orders__old_x', 'orders__older', '__old', 'shop.__old_2']) expect(migratedFrom(name)).toBeNull();
    expect(oldTableName('orders', 3)).toBe('orders__old_3');
  });
});

describe.each(databases)('$name: a table changed twice keeps both originals', ({ kind, open }) => {
  const db = useDatabase(open, 'oq_t', 'oq_t_mirror', 'om_t', 'om_t_mirror', 'or_t', 'or_t_mirror', LONG, 'shadowcut_queue');
  const { first, second, fits } = dialects[kind];
  afterAll(async () => {
    for (const t of ['oq_t', 'om_t', 'or_t', LONG]) await dropFamily(db, t);
  });

  it('two changes queued for one table both run at night, under writes, exact against a mirror given both ALTERs', async () => {
    await db.drop('shadowcut_queue');
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'oq_t']).code).toBe(0);
    await table(db, 'oq_t', 20_000);
    await table(db, 'oq_t_mirror', 20_000);
    // Both pass their dry run when added: the table has no old table yet.
    const expand = added(db, ['--table', 'oq_t', '--alter', first, '--force-copy', '--chunk-time-ms', '20']);
    const index = added(db, ['--table', 'oq_t', '--alter', second, '--force-copy', '--chunk-time-ms', '20', '--after', String(expand)]);
    const load = new MirrorWorkload(db, ['oq_t', 'oq_t_mirror'], plainTableWrites(db, 20_000));
    load.start();
    try {
      // Not db.cli: it would block this process, and with it a writer's open transaction, for the whole run.
      const night = await db.cliAsync(['queue', 'run', '--url', '$URL']);
      expect(night.code, night.stderr).toBe(0);
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    expect(load.stats.transactions).toBeGreaterThan(0);
    const byId = new Map(entries(db).map((e) => [e.id, e]));
    for (const id of [expand, index]) expect(byId.get(id)).toMatchObject({ state: 'complete', status: { attempts: [{ outcome: 'complete' }] } });
    await db.query(`ALTER TABLE oq_t_mirror ${first}`);
    await db.query(`ALTER TABLE oq_t_mirror ${second}`);
    expect(await db.schema('oq_t')).toBe(await db.schema('oq_t_mirror'));
    expect(await db.differences('oq_t', 'oq_t_mirror')).toEqual([]);
    // The first run's original, then the second's (with the first change): both kept, nothing else left.
    expect(await db.helpers('oq_t')).toEqual(['oq_t__old', 'oq_t__old_2']);
    expect(await db.schema('oq_t__old_2')).not.toBe(await db.schema('oq_t__old'));
  });

  it('migrate run twice by hand keeps om_t__old and om_t__old_2; a contract of __old_2 is the kept table of its migration; a later dead run is cleaned up beside them', async () => {
    await table(db, 'om_t', 3000);
    await table(db, 'om_t_mirror', 3000);
    const once = db.cli(['migrate', '--url', '$URL', '--table', 'om_t', '--alter', first, '--force-copy', '--execute']);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toMatch(/the original table is kept as \S+\.om_t__old unless/);
    const planned = db.cli(['migrate', '--url', '$URL', '--table', 'om_t', '--alter', second, '--force-copy']);
    expect(planned.code, planned.stderr).toBe(0);
    expect(planned.stdout).toMatch(/the original is kept after the cut-over as \S+\.om_t__old_2 \(om_t__old is taken\)/);
    const twice = db.cli(['migrate', '--url', '$URL', '--table', 'om_t', '--alter', second, '--force-copy', '--execute']);
    expect(twice.code, twice.stderr).toBe(0);
    expect(twice.stdout).toMatch(/the original table is kept as \S+\.om_t__old_2 unless/);
    expect(await db.helpers('om_t')).toEqual(['om_t__old', 'om_t__old_2']);
    await db.query(`ALTER TABLE om_t_mirror ${first}`);
    expect(await db.schema('om_t__old_2')).toBe(await db.schema('om_t_mirror'));
    await db.query(`ALTER TABLE om_t_mirror ${second}`);
    expect(await db.schema('om_t')).toBe(await db.schema('om_t_mirror'));
    expect(await db.differences('om_t', 'om_t_mirror')).toEqual([]);

    // Kept by a migration of om_t: inside its soak, as om_t__old is.
    const early = db.cli(['contract', '--url', '$URL', '--table', 'om_t__old_2', '--drop-table', '--no-backup', '--execute']);
    expect(early.code).not.toBe(0);
    expect(early.stderr.trim().split('\n')).toHaveLength(1);
    expect(early.stderr).toMatch(/inside the soak: migrate /);

    // A third run dies in its copy (it planned om_t__old_3); its cleanup, --drop-old and all, leaves the kept originals alone.
    const crash = await killDuringPhase(
      ['--url', db.url, '--table', 'om_t', '--alter', kind === 'mysql' ? 'ADD COLUMN third INT' : 'ADD COLUMN third int', '--max-rows-per-sec', '1000'],
      'copy',
      300,
    );
    expect(crash.killed, crash.stderr).toBe(true);
    expect(await db.helpers('om_t')).toEqual(expect.arrayContaining(['om_t__new', 'om_t__old', 'om_t__old_2']));
    const cleaned = db.cli(['cleanup', '--url', '$URL', '--table', 'om_t', '--drop-old']);
    expect(cleaned.code, cleaned.stderr).toBe(0);
    expect(await db.helpers('om_t')).toEqual(['om_t__old', 'om_t__old_2']);
  });

  it("a resume after a kill uses its checkpoint's old table, not a name chosen again", async () => {
    expect(db.cli(['cleanup', '--url', '$URL', '--table', 'or_t']).code).toBe(0);
    await table(db, 'or_t', 30_000);
    await table(db, 'or_t_mirror', 30_000);
    await migrateOn(db, 'or_t', first);
    const load = new MirrorWorkload(db, ['or_t', 'or_t_mirror'], plainTableWrites(db, 30_000));
    load.start();
    try {
      const crash = await killDuringPhase(
        ['--url', db.url, '--table', 'or_t', '--alter', second, '--max-rows-per-sec', '10000', '--chunk-time-ms', '10'],
        'copy',
        300,
      );
      expect(crash.killed, `the run ended before its copy (exit ${crash.exitCode}): ${crash.stderr}`).toBe(true);
      // The DBA drops the first run's original meanwhile: a plan made now would choose or_t__old again.
      await db.query('DROP TABLE or_t__old');
      const result = await migrateOn(db, 'or_t', second, { resume: true });
      expect(result.resumed).toBe(true);
      expect(result.plan!.oldTable).toMatch(/\.or_t__old_2$/);
      await load.untilMoreWrites();
    } finally {
      await load.stop();
    }
    expect(load.stats.errors).toEqual([]);
    expect(await db.helpers('or_t')).toEqual(['or_t__old_2']);
    await db.query(`ALTER TABLE or_t_mirror ${first}`);
    await db.query(`ALTER TABLE or_t_mirror ${second}`);
    expect(await db.schema('or_t')).toBe(await db.schema('or_t_mirror'));
    expect(await db.differences('or_t', 'or_t_mirror')).toEqual([]);
  });

  it('refuses in one line, changing nothing, when every free old-table name would be too long for the server', async () => {
    await table(db, LONG, 100);
    // Every name of the family that fits is taken: by earlier runs' originals, say.
    const taken: string[] = [];
    for (let n = 1; fits(nth(LONG, n)); n++) taken.push(nth(LONG, n));
    for (const name of taken) await db.query(`CREATE TABLE ${name} (id INT PRIMARY KEY)`);
    const before = await db.schema(LONG);
    const refused = db.cli(['migrate', '--url', '$URL', '--table', LONG, '--alter', first, '--force-copy', '--execute']);
    expect(refused.code).toBe(2);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain(`no name is left for the old table of `);
    expect(refused.stderr).toContain(`${nth(LONG, taken.length + 1)} is too long for the server`);
    expect(await db.schema(LONG)).toBe(before);
    expect(await db.helpers(LONG)).toEqual([...taken].sort());
  });
});

describe('PostgreSQL: a partitioned table changed twice', () => {
  const TREE = ['op_t', 'op_a', 'op_b'];
  const db = useDatabase(() => postgresDatabase());
  const dropAll = () => db.query(`DROP TABLE IF EXISTS ${TREE.flatMap((t) => [t, `${t}__new`, nth(t, 1), nth(t, 2), nth(t, 3)]).join(', ')} CASCADE`);
  afterAll(dropAll);

  it('keeps both trees: each partition steps aside under a free name of its own too', async () => {
    await dropAll();
    await db.query('CREATE TABLE op_t (id int NOT NULL, k int NOT NULL, v int, PRIMARY KEY (id, k)) PARTITION BY LIST (k)');
    await db.query('CREATE TABLE op_a PARTITION OF op_t FOR VALUES IN (1)');
    await db.query('CREATE TABLE op_b PARTITION OF op_t FOR VALUES IN (2)');
    await db.query('INSERT INTO op_t SELECT g, 1 + g % 2, g FROM generate_series(1, 2000) g');
    await migrateOn(db, 'op_t', 'ADD COLUMN extra int');
    await migrateOn(db, 'op_t', 'ALTER COLUMN v TYPE bigint');
    const rows = await db.query(
      `SELECT p.relname || ' > ' || c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname LIKE 'op\\_t%' AND p.relkind = 'p' ORDER BY 1`,
    );
    expect(rows.map((r) => r[0])).toEqual([
      'op_t > op_a',
      'op_t > op_b',
      'op_t__old > op_a__old',
      'op_t__old > op_b__old',
      'op_t__old_2 > op_a__old_2',
      'op_t__old_2 > op_b__old_2',
    ]);
    expect(await db.differences('(SELECT id, k, v FROM op_t) a', '(SELECT id, k, v FROM op_t__old) b')).toEqual([]);
  });
});
