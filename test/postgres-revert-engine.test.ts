import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointRun } from '../src/core/engine/state/checkpoint.js';
import { ChangeBuffer } from '../src/core/migrate/capture/change-buffer.js';
import type { Engine, Key, Migration, MigrationRequest } from '../src/core/engine/types.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { differences, pgDropTables, pgPool, pgUrl } from './support/pg.js';
import { catchUpFrom, differingRanges, noSetup, buildsAsIs } from './support/run.js';

/**
 * The engine's side of the revert window on PostgreSQL, driven method by method: what the way back
 * refuses, what its proof shows, and the round trip (capture installed on the shadow, swap, the old
 * table kept level from the new one's writes, swap back), against a mirror that never took the ALTER.
 */
let db: pg.Pool;
let engine: Engine;

beforeAll(async () => {
  db = pgPool();
  engine = await createPostgresEngine(pgUrl());
  await db.query(`CREATE OR REPLACE FUNCTION rv_noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
});

afterAll(async () => {
  await engine.close();
  await db.end();
});

const prepare = (table: string, alter: string, request: Partial<MigrationRequest> = {}) => engine.prepare({ url: pgUrl(), table, alter, ...request });

async function relations(pattern: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT relname AS name FROM pg_class WHERE relname LIKE $1 AND relkind IN ('r', 'p')
     UNION ALL SELECT proname FROM pg_proc WHERE proname LIKE 'shadowcut\\_' || $1 ORDER BY 1`,
    [pattern],
  );
  return rows.map((r) => r.name);
}

async function triggersOn(table: string): Promise<string[]> {
  const { rows } = await db.query(`SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) AND NOT tgisinternal ORDER BY 1`, [table]);
  return rows.map((r) => r.tgname);
}

/** Every column of rv_proof, under the original's names, with no differing row. */
const ALL_BACK = ['id', 'n', 's', 'd', 'b', 'g'].map((name) => [name, 0]);

describe('what the way back refuses and proves', () => {
  beforeAll(async () => {
    await pgDropTables(db, ['rv_proof', 'rv_parent', 'rv_child', 'rv_trig']);
    await db.query(`CREATE TABLE rv_proof (id int PRIMARY KEY, n int4, s varchar(20), d numeric(10,4), b int, g int GENERATED ALWAYS AS (b * 2) STORED)`);
    await db.query(`INSERT INTO rv_proof (id, n, s, d, b) SELECT g, g * 1000, 'v' || g, g + 0.1234, g FROM generate_series(1, 300) g`);
    await db.query(`CREATE TABLE rv_parent (id int PRIMARY KEY)`);
    await db.query(`CREATE TABLE rv_child (id int PRIMARY KEY, parent int REFERENCES rv_parent)`);
    await db.query(`CREATE TABLE rv_trig (id int PRIMARY KEY, v text)`);
    await db.query(`CREATE TRIGGER rv_audit BEFORE UPDATE ON rv_trig FOR EACH ROW EXECUTE FUNCTION rv_noop()`);
  });

  it('a widening with an added column is revertible: every sampled value comes back', async () => {
    const migration = await prepare('rv_proof', 'ALTER COLUMN n TYPE int8, ALTER COLUMN s TYPE text, ADD COLUMN extra int DEFAULT 7');
    expect(migration.revertRefusals()).toEqual([]);
    const proof = await migration.proveReverse(null, 100);
    expect(proof.rows).toBe(100);
    expect(proof.unmatched).toBe(0);
    // The original's columns, under the original's names; the added column is not among them.
    expect(proof.columns.map((c) => [c.name, c.differing])).toEqual(ALL_BACK);
    expect(await relations('rv\\_proof\\_\\_%')).toEqual([]);
  });

  it('a renamed column comes back into the old name', async () => {
    const migration = await prepare('rv_proof', 'RENAME COLUMN d TO amount');
    expect(migration.revertRefusals()).toEqual([]);
    const proof = await migration.proveReverse(null, 100);
    expect(proof.columns.map((c) => [c.name, c.differing])).toEqual(ALL_BACK);
  });

  it('a narrowing that loses a fraction shows the column that does not come back', async () => {
    const migration = await prepare('rv_proof', 'ALTER COLUMN d TYPE numeric(10,2)');
    expect(migration.revertRefusals()).toEqual([]);
    const proof = await migration.proveReverse([null], 50);
    expect(proof.rows).toBe(50);
    const d = proof.columns.find((c) => c.name === 'd')!;
    expect(d.differing).toBe(50);
    expect(d.example).toEqual({ key: '1', alter: '1.1234', copy: '1.1200' });
    expect(proof.columns.filter((c) => c.differing > 0).map((c) => c.name)).toEqual(['d']);
  });

  it('a value the old type cannot hold fails the proof with the server’s reason', async () => {
    await db.query(`UPDATE rv_proof SET s = repeat('x', 20) WHERE id = 1`);
    const migration = await prepare('rv_proof', `ALTER COLUMN s TYPE text USING s || '-more'`);
    await expect(migration.proveReverse([null], 10)).rejects.toThrow(/the way back fails on the sampled rows: value too long for type character varying\(20\)/);
    await db.query(`UPDATE rv_proof SET s = 'v1' WHERE id = 1`);
  });

  it('refuses what it cannot carry back, one line each', async () => {
    const dropped = await prepare('rv_proof', 'DROP COLUMN s, ALTER COLUMN id TYPE numeric');
    expect(dropped.revertRefusals()).toEqual([
      'column s is dropped: values written after the cut-over could not come back',
      "key column(s) id renamed or retyped: the old table's rows are found by the new table's keys",
    ]);
    // Among the integer types a key finds the same rows either way.
    expect((await prepare('rv_proof', 'ALTER COLUMN id TYPE int8')).revertRefusals()).toEqual([]);
    expect((await prepare('rv_proof', 'RENAME COLUMN id TO key')).revertRefusals()).toEqual([
      "key column(s) id renamed or retyped: the old table's rows are found by the new table's keys",
    ]);
    expect((await prepare('rv_proof', 'ALTER COLUMN g DROP EXPRESSION')).revertRefusals()).toEqual([
      'column g is no longer generated: values written after the cut-over could not come back',
    ]);
    // Keys from and to the table go back with it; one the ALTER added would land on the old table.
    expect((await prepare('rv_child', 'ADD COLUMN x int')).revertRefusals()).toEqual([]);
    expect((await prepare('rv_parent', 'ALTER COLUMN id TYPE int8')).revertRefusals()).toEqual([]);
    expect((await prepare('rv_trig', 'ADD COLUMN p int REFERENCES rv_parent')).revertRefusals()).toEqual([
      'foreign keys rv_trig__new_p_fkey added by the ALTER: the revert would carry them onto the old table',
      "triggers rv_audit: the old table's own would fire again for every change it follows",
    ]);
  });
});

describe.each(['stream', 'trigger'] as const)('the round trip (%s capture forward)', (capture) => {
  const t = `rv_trip_${capture}`;
  const mirror = `${t}_mirror`;
  const ddl = (name: string) => `CREATE TABLE ${name} (id serial PRIMARY KEY, n int4 NOT NULL, s varchar(20), note text, UNIQUE (s))`;
  /** The same statement on the table and on the mirror: it names only columns both have. */
  const both = async (sql: string) => {
    for (const table of [t, mirror]) await db.query(sql.replaceAll('{t}', table));
  };

  it('the old table follows the new one and swaps back level with a mirror', async () => {
    await pgDropTables(db, [t, mirror]);
    for (const name of [t, mirror]) await db.query(ddl(name));
    await both(`INSERT INTO {t} (id, n, s) SELECT g, g, 's' || g FROM generate_series(1, 400) g`);
    await db.query(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), 400)`);
    const forward = await prepare(t, 'ALTER COLUMN n TYPE int8, ALTER COLUMN s TYPE text, ADD COLUMN extra int DEFAULT 7', { capture });
    expect(forward.revertRefusals()).toEqual([]);
    await forward.createShadow();
    const buffer = new ChangeBuffer();
    const stream = await forward.changes.open(buffer, undefined, noSetup);
    buffer.advance(stream.start);
    let reverse: Migration;
    try {
      await forward.copyRange({ after: null, upTo: null });
      await forward.afterCopy(buildsAsIs);
      await forward.installReverseCapture(1000);
      await forward.installReverseCapture(1000); // idempotent
      expect(await triggersOn(`${t}__new`)).toEqual([`${t}__rtd`, `${t}__rti`, `${t}__rtt`, `${t}__rtu`]);
      // Writes before the swap reach the shadow through the forward catch-up, logged again: harmless.
      await both(`UPDATE {t} SET n = n + 1 WHERE id <= 20`);
      await forward.saveCheckpoint('{"forward":true}');
      await forward.cutover({ lockTimeoutMs: 2000, catchUp: catchUpFrom(forward, stream, buffer) });
    } finally {
      await stream.stop();
    }
    // --drop-old waits for the window's end: the old table is what the window keeps level.
    await forward.cleanup({ dropOld: true, cutOver: true, keepCheckpoint: true });
    // The capture went with the shadow: now on the new table; the checkpoint stays for the window.
    expect(await triggersOn(t)).toEqual([`${t}__rtd`, `${t}__rti`, `${t}__rtt`, `${t}__rtu`]);
    expect(await engine.loadCheckpoint(t)).toBe('{"forward":true}');

    reverse = await forward.reversed();
    expect(reverse.plan).toMatchObject({ table: `public.${t}`, shadowTable: `public.${t}__old`, oldTable: `public.${t}__new`, reverse: true });
    expect(reverse.plan.summary).toEqual([
      `the way back: ${t}__old follows ${t}, which a revert renames to ${t}__new`,
      'column n bigint goes back into n integer',
      'column s text goes back into s character varying(20)',
      'column extra is not carried back',
    ]);
    // A resumed window gets the same migration back from its checkpoint's plan.
    reverse = engine.resume(JSON.parse(JSON.stringify(reverse.plan)));
    // Its preflight, as a resumed window's, finds nothing wrong.
    expect((await reverse.checks({ resuming: true })).filter((c) => !c.ok)).toEqual([]);
    const back = new ChangeBuffer();
    const reverseStream = await reverse.changes.open(back, { poll: 0 }, noSetup);
    back.advance(reverseStream.start);
    try {
      // The application writes to the new table: inserts (by the sequence too), updates, deletes, a key moved, a unique value moved.
      await both(`INSERT INTO {t} (id, n, s) VALUES (1000, 1, 'new')`);
      await db.query(`INSERT INTO ${t} (n, s, extra) VALUES (2, 'by-seq', 99)`);
      await db.query(`INSERT INTO ${mirror} (id, n, s) VALUES (401, 2, 'by-seq')`);
      await both(`UPDATE {t} SET n = n * 3, note = 'u' WHERE id % 7 = 0`);
      await both(`DELETE FROM {t} WHERE id % 11 = 0`);
      await both(`UPDATE {t} SET id = 2000 WHERE id = 5`);
      await both(`UPDATE {t} SET s = NULL WHERE id = 6`);
      await both(`UPDATE {t} SET s = 's6' WHERE id = 8`);
      const catchUp = catchUpFrom(reverse, reverseStream, back);
      expect(await differingRanges(await reverse.consistentView(catchUp, 1000), 100)).toEqual([]);
      expect(await differences(db, `${t}__old`, mirror)).toEqual([]);

      // A checksum repair on the way back: a range copied again from the new table.
      await db.query(`UPDATE ${t}__old SET note = 'damaged' WHERE id = 100`);
      expect(await differingRanges(await reverse.consistentView(catchUp, 1000), 100)).toHaveLength(1);
      await reverse.copyRange({ after: null, upTo: null });
      expect(await differingRanges(await reverse.consistentView(catchUp, 1000), 100)).toEqual([]);

      await both(`UPDATE {t} SET note = 'last' WHERE id = 1`);
      const keysUnderLock: Key[][] = [];
      const result = await reverse.cutover({
        lockTimeoutMs: 2000,
        catchUp: async (session) => {
          await catchUp(session);
          // Row by row under the lock, as the revert's proof compares them.
          keysUnderLock.push(await reverse.compareKeys([['1'], ['2000'], ['401'], ['11']], session));
        },
      });
      expect(result.lockedMs).toBeGreaterThanOrEqual(0);
      expect(keysUnderLock).toEqual([[]]);
    } finally {
      await reverseStream.stop();
    }
    expect(await reverse.swapped()).toBe(true);
    // The table has its old schema and the mirror's rows; the new table is kept beside it.
    expect(await differences(db, t, mirror)).toEqual([]);
    const columns = async (table: string) =>
      (
        await db.query(
          `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) AS c FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
          [table],
        )
      ).rows[0].c;
    expect(await columns(t)).toBe('id integer, n integer, s character varying(20), note text');
    expect(await columns(`${t}__new`)).toBe('id integer, n bigint, s text, note text, extra integer');
    // Index names and the serial sequence went back with the table.
    const { rows: indexes } = await db.query(`SELECT indexrelid::regclass::text AS i FROM pg_index WHERE indrelid = $1::regclass ORDER BY 1`, [t]);
    expect(indexes.map((r) => r.i)).toEqual([`${t}_pkey`, `${t}_s_key`]);
    const { rows: seq } = await db.query(`SELECT pg_get_serial_sequence($1, 'id') AS s, nextval(pg_get_serial_sequence($1, 'id')) AS v`, [t]);
    expect(seq[0].s).toBe(`public.${t}_id_seq`);
    expect(Number(seq[0].v)).toBe(402);
    expect(await triggersOn(t)).toEqual([]);
    expect(await triggersOn(`${t}__new`)).toEqual([]);

    // The window's cleanup: the capture and the checkpoint go, both tables stay (dropOld is not for the way back).
    await reverse.cleanup({ dropOld: true, cutOver: true });
    expect(await relations(`${t}\\_\\_%`)).toEqual([`${t}__new`]);
    expect(await engine.loadCheckpoint(t)).toBe(null);
    await pgDropTables(db, [t, mirror]);
  }, 60_000);
});

/** Shadow copied (trigger capture), the revert window's capture installed; with `swap`, cut over too, the checkpoint kept for the window. */
async function forwardTo(table: string, alter: string, swap: boolean): Promise<Migration> {
  const migration = await prepare(table, alter, { capture: 'trigger' });
  await migration.createShadow();
  const buffer = new ChangeBuffer();
  const stream = await migration.changes.open(buffer, undefined, noSetup);
  buffer.advance(stream.start);
  try {
    await migration.copyRange({ after: null, upTo: null });
    // As the runner: the key right after the copy, before the swap renames it.
    await migration.keylessShadow?.build();
    await migration.installReverseCapture(1000);
    // Sealed, as the runner's are: cleanup reads it for the slot and publication to drop.
    await migration.saveCheckpoint(CheckpointRun.fresh(engine, table).seal({}).text);
    if (swap) await migration.cutover({ lockTimeoutMs: 2000, catchUp: catchUpFrom(migration, stream, buffer) });
  } finally {
    await stream.stop();
  }
  if (swap) await migration.cleanup({ dropOld: false, cutOver: true, keepCheckpoint: true });
  return migration;
}

/** The revert's swap back, on a window's way back that followed from the swap. */
async function revertNow(reverse: Migration): Promise<void> {
  const back = new ChangeBuffer();
  const stream = await reverse.changes.open(back, { poll: 0 }, noSetup);
  back.advance(stream.start);
  try {
    await reverse.cutover({ lockTimeoutMs: 2000, catchUp: catchUpFrom(reverse, stream, back) });
  } finally {
    await stream.stop();
  }
}

describe('cleanup of a revert window', () => {
  beforeEach(async () => {
    await pgDropTables(db, ['rv_clean']);
    await db.query(`CREATE TABLE rv_clean (id int PRIMARY KEY, v int4)`);
    await db.query(`INSERT INTO rv_clean SELECT g, g FROM generate_series(1, 50) g`);
  });

  it('a run that did not cut over removes the reverse log with its shadow', async () => {
    const migration = await forwardTo('rv_clean', 'ALTER COLUMN v TYPE int8', false);
    expect(await relations('rv\\_clean\\_\\_%')).toEqual(['rv_clean__log', 'rv_clean__new', 'rv_clean__rlog', 'rv_clean__state']);
    await migration.cleanup({ dropOld: false, cutOver: false });
    expect(await relations('rv\\_clean%')).toEqual(['rv_clean']);
  });

  it('an interrupted window keeps everything for --resume; `shadowcut cleanup` ends it and keeps both tables', async () => {
    const forward = await forwardTo('rv_clean', 'ALTER COLUMN v TYPE int8', true);
    const reverse = await forward.reversed();
    await reverse.cleanup({ dropOld: false, cutOver: false });
    expect(await relations('rv\\_clean\\_\\_%')).toEqual(['rv_clean__old', 'rv_clean__rlog', 'rv_clean__state']);
    expect(await triggersOn('rv_clean')).toHaveLength(4);
    // The leftovers check of a new run names the window's capture.
    const next = await prepare('rv_clean', 'ADD COLUMN w int');
    const leftovers = (await next.checks({ resuming: false })).find((c) => c.name === 'no leftovers')!;
    expect(leftovers.ok).toBe(false);
    expect(leftovers.message).toMatch(/capture trigger public\.rv_clean__rti of an earlier run is still on the table/);
    const named = await engine.cleanupLeftovers('rv_clean', { dropOld: false, dryRun: true });
    expect(named).toEqual(expect.arrayContaining(['public.rv_clean__rti (capture trigger)', 'public.rv_clean__rlog', 'public.rv_clean__state']));
    expect(named.some((n) => /^public\.shadowcut_rv_clean_[0-9a-f]{8}_r\(\) \(capture function\)$/.test(n))).toBe(true);
    await engine.cleanupLeftovers('rv_clean', { dropOld: false });
    expect(await relations('rv\\_clean%')).toEqual(['rv_clean', 'rv_clean__old']);
    expect(await triggersOn('rv_clean')).toEqual([]);
  });

  it('the new table a revert kept is never taken for a dead run’s shadow', async () => {
    const forward = await forwardTo('rv_clean', 'ALTER COLUMN v TYPE int8', true);
    const reverse = await forward.reversed();
    await revertNow(reverse);
    const { rows } = await db.query(`SELECT obj_description('rv_clean__new'::regclass, 'pg_class') AS c`);
    expect(rows[0].c).toMatch(/^shadowcut: the new table, kept by a revert on \d{4}-/);
    // Whether the window's cleanup ran or not.
    for (const cleanedUp of [false, true]) {
      if (cleanedUp) await reverse.cleanup({ dropOld: false, cutOver: true });
      expect(await engine.cleanupLeftovers('rv_clean', { dropOld: false, dryRun: true })).not.toContain('public.rv_clean__new');
      await engine.cleanupLeftovers('rv_clean', { dropOld: false });
      expect(await relations('rv\\_clean%')).toEqual(['rv_clean', 'rv_clean__new']);
    }
    // A new run is refused until it is out of the way, and says what it is.
    const leftovers = (await (await prepare('rv_clean', 'ADD COLUMN w int')).checks({ resuming: false })).find((c) => c.name === 'no leftovers')!;
    expect(leftovers.message).toMatch(/DROP TABLE "public"\."rv_clean__new" \(the new table a revert kept; or rename it if you need it\)/);
  });
});

describe('what the revert carries back', () => {
  it('identity, policies, publications and grants, without doubling what the old table kept', async () => {
    await pgDropTables(db, ['rv_carry']);
    await db.query(`DROP PUBLICATION IF EXISTS rv_carry_pub`);
    await db.query(`CREATE TABLE rv_carry (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v int4)`);
    await db.query(`INSERT INTO rv_carry (v) SELECT g FROM generate_series(1, 10) g`);
    await db.query(`CREATE PUBLICATION rv_carry_pub FOR TABLE rv_carry`);
    await db.query(`ALTER TABLE rv_carry ENABLE ROW LEVEL SECURITY`);
    await db.query(`CREATE POLICY rv_carry_all ON rv_carry USING (v >= 0)`);
    await db.query(`GRANT SELECT ON rv_carry TO PUBLIC`);
    const forward = await forwardTo('rv_carry', 'ALTER COLUMN v TYPE int8', true);
    const reverse = await forward.reversed();
    await db.query(`INSERT INTO rv_carry (v) VALUES (11), (12), (13)`);
    await revertNow(reverse);
    expect((await db.query(`SELECT count(*) AS n, max(id) AS m FROM rv_carry`)).rows[0]).toEqual({ n: '13', m: '13' });
    // The identity goes on where the new table's stopped.
    expect((await db.query(`INSERT INTO rv_carry (v) VALUES (14) RETURNING id`)).rows[0].id).toBe('14');
    const { rows: policies } = await db.query(`SELECT polname FROM pg_policy WHERE polrelid = 'rv_carry'::regclass`);
    expect(policies.map((r) => r.polname)).toEqual(['rv_carry_all']);
    const { rows: published } = await db.query(`SELECT tablename FROM pg_publication_tables WHERE pubname = 'rv_carry_pub' ORDER BY 1`);
    expect(published.map((r) => r.tablename)).toContain('rv_carry');
    expect((await db.query(`SELECT has_table_privilege('public', 'rv_carry', 'SELECT') AS g`)).rows[0].g).toBe('t');
    await reverse.cleanup({ dropOld: false, cutOver: true });
    await db.query(`DROP PUBLICATION rv_carry_pub`);
  });
});

describe('the foreign keys of a reverted table', () => {
  it('keys from and to a parent whose key was widened point at the old tables again, validated, with the rows written in the window', async () => {
    await pgDropTables(db, ['rv_fk_child', 'rv_fk_parent', 'rv_fk_grand']);
    await db.query(`CREATE TABLE rv_fk_grand (id int PRIMARY KEY)`);
    await db.query(`CREATE TABLE rv_fk_parent (id int PRIMARY KEY, grand int REFERENCES rv_fk_grand ON DELETE CASCADE, v int4)`);
    await db.query(`CREATE TABLE rv_fk_child (id int PRIMARY KEY, parent int NOT NULL REFERENCES rv_fk_parent ON DELETE CASCADE)`);
    await db.query(`INSERT INTO rv_fk_grand SELECT g FROM generate_series(1, 5) g`);
    await db.query(`INSERT INTO rv_fk_parent SELECT g, g % 5 + 1, g FROM generate_series(1, 50) g`);
    await db.query(`INSERT INTO rv_fk_child SELECT g, g FROM generate_series(1, 50) g`);
    const forward = await forwardTo('rv_fk_parent', 'ALTER COLUMN id TYPE int8, ALTER COLUMN v TYPE int8', true);
    const reverse = await forward.reversed();
    // Written to the new table in the window: the children's keys now reference it, and must reference the old one after.
    await db.query(`INSERT INTO rv_fk_parent VALUES (51, 1, 51)`);
    await db.query(`INSERT INTO rv_fk_child VALUES (51, 51)`);
    await db.query(`DELETE FROM rv_fk_parent WHERE id = 7`);
    await revertNow(reverse);
    await reverse.cleanup({ dropOld: false, cutOver: true });
    const { rows } = await db.query(
      `SELECT conname, conrelid::regclass::text AS from, confrelid::regclass::text AS to, convalidated AS valid
         FROM pg_constraint WHERE contype = 'f' AND conname LIKE 'rv\\_fk%' ORDER BY 1`,
    );
    expect(rows).toEqual([
      { conname: 'rv_fk_child_parent_fkey', from: 'rv_fk_child', to: 'rv_fk_parent', valid: 't' },
      { conname: 'rv_fk_parent_grand_fkey', from: 'rv_fk_parent', to: 'rv_fk_grand', valid: 't' },
    ]);
    expect(
      (await db.query(`SELECT format_type(atttypid, NULL) AS t FROM pg_attribute WHERE attrelid = 'rv_fk_parent'::regclass AND attname = 'id'`)).rows,
    ).toEqual([{ t: 'integer' }]);
    expect((await db.query(`SELECT count(*) AS n, max(id) AS m FROM rv_fk_parent`)).rows[0]).toEqual({ n: '50', m: '51' });
    // The old parent enforces again: the cascade reaches the children, a dangling child is refused.
    await db.query(`DELETE FROM rv_fk_parent WHERE id = 51`);
    expect((await db.query(`SELECT count(*) AS n FROM rv_fk_child WHERE id = 51`)).rows[0].n).toBe('0');
    await expect(db.query(`INSERT INTO rv_fk_child VALUES (99, 9999)`)).rejects.toThrow(/violates foreign key constraint "rv_fk_child_parent_fkey"/);
  });
});

it('a reverse log made by someone else refuses the install, which leaves nothing behind', async () => {
  await pgDropTables(db, ['rv_own', 'rv_own__rlog', 'rv_own__spied']);
  await db.query(`CREATE TABLE rv_own (id int PRIMARY KEY, v int4)`);
  await db.query(`CREATE TABLE rv_own__rlog (seq bigint)`);
  await db.query(`CREATE TABLE rv_own__spied (n int)`);
  await db.query(`CREATE TRIGGER rv_own_spy BEFORE INSERT ON rv_own__rlog FOR EACH ROW EXECUTE FUNCTION rv_noop()`);
  const migration = await prepare('rv_own', 'ALTER COLUMN v TYPE int8');
  await migration.createShadow();
  try {
    await expect(migration.installReverseCapture(1000)).rejects.toThrow(/^refusing to use public\.rv_own__rlog: it has triggers \(rv_own_spy\)/);
    expect(await triggersOn('rv_own__new')).toEqual([]);
  } finally {
    await migration.cleanup({ dropOld: false, cutOver: false });
  }
  // Not ours: left to whoever made it.
  expect(await relations('rv\\_own\\_\\_%')).toEqual(['rv_own__rlog', 'rv_own__spied']);
});
