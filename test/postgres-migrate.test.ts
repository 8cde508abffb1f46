import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentReporter } from '../src/core/report/reporter.js';
import { migratePg, pgHelpers, pgPool, pgSchemaOf } from './support/pg.js';

let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await db.end();
});

// The migration under concurrent writes, for both engines: test/migrate.test.ts.

// A dropped column keeps its row in pg_attribute, named "........pg.dropped.N........": the cut-over
// once asked pg_get_serial_sequence about it and failed with an internal error.
it('migrates a table with a dropped column, and its serial goes on', async () => {
  await db.query(`DROP TABLE IF EXISTS pm_dropped, pm_dropped__old`);
  await db.query(`CREATE TABLE pm_dropped (id serial PRIMARY KEY, gone int, name text)`);
  await db.query(`INSERT INTO pm_dropped (gone, name) SELECT g, 'n' || g FROM generate_series(1, 100) g`);
  await db.query(`ALTER TABLE pm_dropped DROP COLUMN gone`);
  try {
    await migratePg('pm_dropped', 'ADD COLUMN extra int');
    const { rows } = await db.query(`INSERT INTO pm_dropped (name) VALUES ('new') RETURNING id`);
    expect(rows[0].id).toBe('101');
  } finally {
    await db.query(`DROP TABLE IF EXISTS pm_dropped, pm_dropped__old`);
  }
});

describe('what is bound to the old table moves to the new one', () => {
  beforeAll(async () => {
    await db.query(`DROP TABLE IF EXISTS pm_child, pm_parent, pm_parent__new, pm_parent__old CASCADE`);
    await db.query(`DROP ROLE IF EXISTS pm_reader`);
    await db.query(`CREATE ROLE pm_reader`);
    await db.query(`CREATE TABLE pm_parent (id serial PRIMARY KEY, name text NOT NULL CHECK (name <> ''), code text UNIQUE)`);
    await db.query(`COMMENT ON TABLE pm_parent IS 'parents'`);
    await db.query(`GRANT SELECT, INSERT ON pm_parent TO pm_reader`);
    await db.query(`CREATE TABLE pm_child (id int PRIMARY KEY, parent_id int NOT NULL REFERENCES pm_parent (id))`);
    await db.query(`CREATE VIEW pm_parent_names AS SELECT id, name FROM pm_parent`);
    await db.query(`INSERT INTO pm_parent (name, code) SELECT 'p' || g, 'c' || g FROM generate_series(1, 1000) g`);
    await db.query(`INSERT INTO pm_child SELECT g, g FROM generate_series(1, 500) g`);
  });

  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS pm_child, pm_parent, pm_parent__new, pm_parent__old CASCADE`);
    await db.query(`DROP ROLE IF EXISTS pm_reader`);
  });

  it('foreign keys, views, sequences, grants, comments and index names follow; the old table can be dropped', async () => {
    await migratePg('pm_parent', 'ADD COLUMN extra int', { dropOld: true });
    expect(await pgHelpers(db, 'pm_parent')).toEqual([]);
    // Sequence continuity: the serial default goes on from where it was, and its sequence survived the drop.
    const { rows: inserted } = await db.query(`INSERT INTO pm_parent (name) VALUES ('new') RETURNING id`);
    expect(inserted[0].id).toBe('1001');
    // The foreign key now points at the new table, and is validated.
    await db.query(`INSERT INTO pm_child VALUES (1001, 1001)`);
    await expect(db.query(`INSERT INTO pm_child VALUES (1002, 999999)`)).rejects.toThrow(/foreign key/);
    const { rows: fk } = await db.query(
      `SELECT confrelid::regclass::text AS parent, convalidated FROM pg_constraint WHERE conrelid = 'pm_child'::regclass AND contype = 'f'`,
    );
    expect(fk).toEqual([{ parent: 'pm_parent', convalidated: 't' }]);
    const { rows: view } = await db.query(`SELECT name FROM pm_parent_names WHERE id = 1001`);
    expect(view).toEqual([{ name: 'new' }]);
    const { rows: catalog } = await db.query(
      `SELECT obj_description('pm_parent'::regclass, 'pg_class') AS comment,
              has_table_privilege('pm_reader', 'pm_parent', 'INSERT') AS granted,
              (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_index JOIN pg_class ON oid = indexrelid
                WHERE indrelid = 'pm_parent'::regclass) AS indexes`,
    );
    expect(catalog[0]).toEqual({ comment: 'parents', granted: 't', indexes: 'pm_parent_code_key,pm_parent_pkey' });
  }, 60_000);

  it('the old indexes step aside under free names, so a rollback (the old table swapped back in) can be migrated again', async () => {
    const indexesOf = async (table: string) =>
      (await db.query(`SELECT relname FROM pg_index JOIN pg_class ON oid = indexrelid WHERE indrelid = $1::regclass ORDER BY 1`, [table])).rows.map(
        (r) => r.relname,
      );
    await db.query('DROP TABLE IF EXISTS pm_stray');
    await db.query('CREATE TABLE pm_stray (id int CONSTRAINT pm_parent_pkey__old PRIMARY KEY)');
    await migratePg('pm_parent', 'ADD COLUMN again int');
    expect(await indexesOf('pm_parent__old')).toEqual(['pm_parent_code_key__old', 'pm_parent_pkey__old_2']);
    // The operator rolls back: the new table goes, the old one (with its indexes' new names) comes back.
    await db.query('DROP TABLE pm_parent CASCADE');
    await db.query('ALTER TABLE pm_parent__old RENAME TO pm_parent');
    await migratePg('pm_parent', 'ADD COLUMN again int');
    expect(await indexesOf('pm_parent')).toEqual(['pm_parent_code_key__old', 'pm_parent_pkey__old_2']);
    expect(await indexesOf('pm_parent__old')).toEqual(['pm_parent_code_key__old__old', 'pm_parent_pkey__old_2__old']);
    await db.query('DROP TABLE pm_stray');
  }, 60_000);
});

describe('a cut-over that cannot get its lock', () => {
  beforeEach(async () => {
    await db.query(`DROP TABLE IF EXISTS pm_locked, pm_locked__new, pm_locked__old`);
    await db.query(`CREATE TABLE pm_locked (id int PRIMARY KEY, v text)`);
    await db.query(`INSERT INTO pm_locked SELECT g, 'v' || g FROM generate_series(1, 1000) g`);
  });

  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS pm_locked, pm_locked__new, pm_locked__old`);
  });

  /** Another session reading the table in a long transaction: its ACCESS SHARE lock blocks the rename. */
  async function holdLock() {
    const blocker = await db.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT count(*) FROM pm_locked');
    return async () => {
      await blocker.query('COMMIT');
      blocker.release();
    };
  }

  it('gives up after its attempts, leaving the original in place and serving', async () => {
    const release = await holdLock();
    try {
      await expect(migratePg('pm_locked', 'ADD COLUMN x int', { lockTimeoutMs: 100, cutoverAttempts: 3 })).rejects.toThrow(
        /cut-over failed 3 times.*original table is unchanged/,
      );
    } finally {
      await release();
    }
    expect(await pgHelpers(db, 'pm_locked')).toEqual([]);
    await db.query(`INSERT INTO pm_locked VALUES (1001, 'still serving')`);
    expect(await pgSchemaOf(db, 'pm_locked')).toHaveLength(2);
  }, 60_000);

  it('retries until the lock is free, and readers get through while its attempts are queued', async () => {
    const release = await holdLock();
    // The blocker goes only once two attempts have failed behind it: on a slow machine the copy alone
    // may outlast any fixed wait, and an attempt after the release would prove nothing.
    let failed = 0;
    const reporter = { ...silentReporter, warn: (message: string) => void (/cut-over attempt \d+ failed/.test(message) && failed++) };
    const run = migratePg('pm_locked', 'ADD COLUMN x int', { lockTimeoutMs: 100, cutoverAttempts: 20, reporter });
    let settled = false;
    void run.then(
      () => (settled = true),
      () => (settled = true),
    );
    // Readers arrive while cut-over attempts are queued behind the blocker. An attempt that queued
    // without a bound would hold every one of them until the blocker goes, which is only after this
    // loop: the loop would never get past its first read. No duration is asserted (noisy machines).
    let reads = 0;
    let readsWhileAttempting = 0;
    while (failed < 2 && !settled) {
      await db.query('SELECT count(*) FROM pm_locked');
      reads++;
      if (failed > 0) readsWhileAttempting++;
      await new Promise((r) => setTimeout(r, 5));
    }
    await release();
    const result = await run;
    expect(result.cutoverAttempts).toBeGreaterThan(2);
    expect(reads).toBeGreaterThan(1);
    expect(readsWhileAttempting).toBeGreaterThan(0);
    expect(await pgSchemaOf(db, 'pm_locked')).toHaveLength(3);
    expect(await pgHelpers(db, 'pm_locked')).toEqual(['pm_locked__old']);
  }, 60_000);
});

describe('an interrupted run', () => {
  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS pm_abort, pm_abort__new, pm_abort__old`);
  });

  it('removes its slot, publication and shadow, and leaves the original untouched', async () => {
    await db.query(`DROP TABLE IF EXISTS pm_abort, pm_abort__new, pm_abort__old`);
    await db.query(`CREATE TABLE pm_abort (id int PRIMARY KEY, v text)`);
    await db.query(`INSERT INTO pm_abort SELECT g, 'v' || g FROM generate_series(1, 20000) g`);
    const before = await db.query(`SELECT count(*) AS n, sum(hashtext(v)) AS h FROM pm_abort`);
    const stop = new AbortController();
    // Ctrl-C in the middle of the copy, after the slot and the publication exist.
    const reporter = { ...silentReporter, progress: () => stop.abort('test interrupt') };
    await expect(migratePg('pm_abort', 'ADD COLUMN x int', { chunkTimeMs: 5, signal: stop.signal, reporter })).rejects.toThrow(/aborted: test interrupt/);
    expect(await pgHelpers(db, 'pm_abort')).toEqual([]);
    expect((await db.query(`SELECT count(*) AS n, sum(hashtext(v)) AS h FROM pm_abort`)).rows).toEqual(before.rows);
    expect(await pgSchemaOf(db, 'pm_abort')).toHaveLength(2);
  }, 60_000);
});
