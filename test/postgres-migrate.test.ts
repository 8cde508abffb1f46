import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { silentReporter } from '../src/core/reporter.js';
import { migratePg, pgHelpers, pgPool, pgSchemaOf, postgresDatabase } from './support/pg.js';
import { MirrorWorkload, type Statement } from './support/workload.js';

let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await db.end();
});

const SEED = 30_000;
const BASE = 9007199254740993n; // 2^53 + 1: a Number would round it
const ALTER = `ALTER COLUMN qty TYPE bigint, ADD COLUMN note text DEFAULT 'none', ALTER COLUMN label TYPE varchar(200), DROP COLUMN dropped`;

const COLUMNS = `
  region int NOT NULL,
  id int8 NOT NULL,
  seq int8 GENERATED ALWAYS AS IDENTITY,
  qty int NOT NULL,
  price numeric(60,30),
  big int8,
  at timestamptz,
  mood pm_mood NOT NULL DEFAULT 'new',
  bin bytea,
  doc jsonb,
  tags text[],
  body text,
  label text,
  with_default int DEFAULT 7,
  dropped int,
  doubled numeric GENERATED ALWAYS AS (big::numeric * 2) STORED,
  PRIMARY KEY (region, id)`;

/** An incompressible, deterministic value large enough to be stored out of line (TOASTed). */
const toasted = (seed: string) => `(SELECT string_agg(md5(g::text || ${seed}), '') FROM generate_series(1, 200) g)`;

// Each worker owns the ids it created or seeded in its region; keys move only within a region.
const owned: bigint[][] = [[], [], []];
const counter = [0n, 0n, 0n];
const pick = (w: number) => owned[w][Math.floor(Math.random() * owned[w].length)];
const fresh = (w: number) => BASE + 10_000_000n + ++counter[w];

function writes(w: number): Statement {
  const r = Math.random();
  const micros = String(Math.floor(Math.random() * 1_000_000)).padStart(6, '0');
  if (r < 0.35 && owned[w].length) {
    // Leaves `body` alone: the stream sends unchanged TOASTed values as 'u', never their content.
    return {
      sql: `UPDATE {t} SET qty = qty + 1, price = $1, at = $2, doc = jsonb_set(doc, '{n}', to_jsonb($3::int)),
                           tags = ARRAY[$3::text, NULL], mood = 'paid' WHERE region = $4 AND id = $5`,
      values: [`-12345678901234567890123456789.${micros}000000000000000000000001`, `2025-06-01 12:00:00.${micros}+00`, w, w, String(pick(w))],
    };
  }
  if (r < 0.4 && owned[w].length) {
    return { sql: `UPDATE {t} SET body = ${toasted('$1')} WHERE region = $2 AND id = $3`, values: [micros, w, String(pick(w))] };
  }
  if (r < 0.6) {
    const id = fresh(w);
    owned[w].push(id);
    return {
      sql: `INSERT INTO {t} (region, id, qty, price, big, at, mood, bin, doc, tags, body, label, with_default)
            VALUES ($1, $2, 1, '0.000000000000000000000000000001', 9223372036854775807, $3, 'shipped', '\\xdeadbeef00',
                    '{"big": 9007199254740993, "f": 0.1}', ARRAY['a', NULL, 'c'], 'new row', $4, NULL)`,
      values: [w, String(id), `2025-01-01 00:00:00.${micros}+00`, `crab 🦀 ${micros}`],
      serial: true,
    };
  }
  if (r < 0.75 && owned[w].length > 100) {
    const i = Math.floor(Math.random() * owned[w].length);
    const [id] = owned[w].splice(i, 1);
    return { sql: 'DELETE FROM {t} WHERE region = $1 AND id = $2', values: [w, String(id)] };
  }
  if (r < 0.9 && owned[w].length) {
    const i = Math.floor(Math.random() * owned[w].length);
    const from = owned[w][i];
    const to = fresh(w);
    owned[w][i] = to;
    return { sql: 'UPDATE {t} SET id = $1 WHERE region = $2 AND id = $3', values: [String(to), w, String(from)] };
  }
  const id = fresh(w);
  owned[w].push(id);
  // Columns left out take their defaults (mood 'new', with_default 7).
  return { sql: 'INSERT INTO {t} (region, id, qty) VALUES ($1, $2, 0)', values: [w, String(id)], serial: true };
}

describe('PostgreSQL migration under concurrent writes', () => {
  beforeAll(async () => {
    await db.query(`DROP TABLE IF EXISTS pm_orders, pm_mirror, pm_orders__new, pm_orders__old`);
    await db.query(`DROP TYPE IF EXISTS pm_mood`);
    await db.query(`CREATE TYPE pm_mood AS ENUM ('new', 'paid', 'shipped')`);
    for (const t of ['pm_orders', 'pm_mirror']) {
      await db.query(`CREATE TABLE ${t} (${COLUMNS})`);
      await db.query(`CREATE INDEX ON ${t} (at)`);
      await db.query(`
        INSERT INTO ${t} (region, id, qty, price, big, at, mood, bin, doc, tags, body, label, with_default, dropped)
        SELECT g % 3, ${BASE} + g, g % 13, ('123456789012345678901234567890.' || lpad(g::text, 30, '0'))::numeric,
               9223372036854775807 - g, '2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1.000001 second',
               (ARRAY['new', 'paid', 'shipped']::pm_mood[])[1 + g % 3], decode(lpad(to_hex(g), 8, '0'), 'hex'),
               jsonb_build_object('n', g, 'big', 9007199254740993, 'f', 0.1), ARRAY[g::text, NULL],
               CASE WHEN g % 500 = 0 THEN ${toasted('g::text')} ELSE 'row ' || g END,
               CASE WHEN g % 7 = 0 THEN NULL ELSE 'crab 🦀 ' || g END, CASE WHEN g % 11 = 0 THEN NULL ELSE g END, g
          FROM generate_series(1, ${SEED}) g`);
    }
    for (let g = 1; g <= SEED; g++) owned[g % 3].push(BASE + BigInt(g));
  }, 60_000);

  afterAll(async () => {
    await db.query(`DROP TABLE IF EXISTS pm_orders, pm_mirror, pm_orders__new, pm_orders__old`);
    await db.query(`DROP TYPE IF EXISTS pm_mood`);
  });

  it('ends with the new schema and exactly the rows of a mirror that took the same writes and the same ALTER', async () => {
    const load = new MirrorWorkload(postgresDatabase(db), ['pm_orders', 'pm_mirror'], writes);
    load.start();
    await new Promise((r) => setTimeout(r, 500));
    const result = await migratePg('public.pm_orders', ALTER, { chunkTimeMs: 50, checksumChunkRows: 5000 });
    await new Promise((r) => setTimeout(r, 500)); // writes after the cut-over land in the new table
    const stats = await load.stop();

    await db.query(`ALTER TABLE pm_mirror ${ALTER}`);
    console.log(
      `postgres mirror test: ${stats.transactions} write transactions, ${stats.errors.length} errors, ` +
        `longest write ${stats.maxLatencyMs.toFixed(1)} ms; ${result.changesApplied} changes applied, ` +
        `cut-over blocked writers ${result.cutoverLockedMs} ms in ${result.cutoverAttempts} attempt(s)`,
    );
    expect(stats.errors).toEqual([]);
    expect(stats.transactions).toBeGreaterThan(100);
    expect(result.changesApplied).toBeGreaterThan(0);
    // The stream alone kept the shadow level: the first checksum round found nothing to repair.
    expect(result.checksumRounds).toBe(1);
    expect(await pgSchemaOf(db, 'pm_orders')).toEqual(await pgSchemaOf(db, 'pm_mirror'));
    const { rows } = await db.query(
      `SELECT (SELECT count(*) FROM (SELECT * FROM pm_orders EXCEPT ALL SELECT * FROM pm_mirror) a) AS only_new,
              (SELECT count(*) FROM (SELECT * FROM pm_mirror EXCEPT ALL SELECT * FROM pm_orders) b) AS only_mirror,
              (SELECT count(*) FROM pm_orders) AS n`,
    );
    expect(rows[0]).toEqual({ only_new: '0', only_mirror: '0', n: rows[0].n });
    expect(Number(rows[0].n)).toBeGreaterThan(SEED / 2);
    expect(await pgHelpers(db, 'pm_orders')).toEqual(['pm_orders__old']);
  }, 120_000);
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
      (await db.query(`SELECT relname FROM pg_index JOIN pg_class ON oid = indexrelid WHERE indrelid = $1::regclass ORDER BY 1`, [table])).rows.map((r) => r.relname);
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

  it('retries until the lock is free, and readers never wait much longer than the lock timeout', async () => {
    const release = await holdLock();
    const run = migratePg('pm_locked', 'ADD COLUMN x int', { lockTimeoutMs: 100, cutoverAttempts: 20 });
    // A reader that arrives while cut-over attempts are queued behind the blocker.
    let longestRead = 0;
    const readUntil = Date.now() + 1500;
    while (Date.now() < readUntil) {
      const t0 = performance.now();
      await db.query('SELECT count(*) FROM pm_locked');
      longestRead = Math.max(longestRead, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 5));
    }
    await release();
    const result = await run;
    console.log(`postgres lock test: ${result.cutoverAttempts} cut-over attempts, longest read ${longestRead.toFixed(1)} ms`);
    expect(result.cutoverAttempts).toBeGreaterThan(1);
    expect(longestRead).toBeLessThan(400);
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
    await expect(
      migratePg('pm_abort', 'ADD COLUMN x int', { chunkTimeMs: 5, signal: stop.signal, reporter }),
    ).rejects.toThrow(/aborted: test interrupt/);
    expect(await pgHelpers(db, 'pm_abort')).toEqual([]);
    expect((await db.query(`SELECT count(*) AS n, sum(hashtext(v)) AS h FROM pm_abort`)).rows).toEqual(before.rows);
    expect(await pgSchemaOf(db, 'pm_abort')).toHaveLength(2);
  }, 60_000);
});
