// PostgreSQL corpus: changes the stream alone cannot see, guarded at the cut-over or refused up front.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentReporter } from '../src/core/reporter.js';
import { migratePg, pgDropTables, pgHelpers, pgPool, pgSchemaOf } from './support/pg.js';

let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await db.query('DROP MATERIALIZED VIEW IF EXISTS pcg_mv');
  await db.query('DROP VIEW IF EXISTS pcg_v');
  await pgDropTables(db, ['pcg_ddl', 'pcg_mat', 'pcg_vt']);
  await db.end();
});

async function seed(table: string) {
  await pgDropTables(db, [table]);
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, qty int NOT NULL)`);
  await db.query(`INSERT INTO ${table} SELECT g, g % 10 FROM generate_series(1, 20000) g`);
}

describe('DDL by another session that no write follows', () => {
  it('is found under the cut-over lock: the run stops, the original keeps the new column and its rows, nothing is left', async () => {
    await seed('pcg_ddl');
    let altered = false;
    // At the first progress report of the copy, another session adds a column; no write to the table follows,
    // so the change stream never describes the new shape.
    const reporter = {
      ...silentReporter,
      progress: () => {
        if (altered) return;
        altered = true;
        void db.query('ALTER TABLE pcg_ddl ADD COLUMN intruder int DEFAULT 7');
      },
    };
    await expect(migratePg('pcg_ddl', 'ADD COLUMN extra int', { reporter, chunkTimeMs: 20 })).rejects.toThrow(
      /pcg_ddl was altered during the migration \(its columns changed\); start again/,
    );
    expect(altered).toBe(true);
    expect(await pgHelpers(db, 'pcg_ddl')).toEqual([]);
    expect((await pgSchemaOf(db, 'pcg_ddl')).map((c) => c.split(' ')[0])).toEqual(['id', 'qty', 'intruder']);
    const { rows } = await db.query('SELECT count(*)::int AS n, min(intruder)::int AS i FROM pcg_ddl');
    expect(rows[0]).toEqual({ n: '20000', i: '7' }); // the test pool reads every value as the server's text
  });
});

describe('a materialized view on the table', () => {
  it('is refused up front, naming it: it would stay bound to the old table', async () => {
    await seed('pcg_mat');
    await db.query('CREATE MATERIALIZED VIEW pcg_mv AS SELECT qty, count(*) FROM pcg_mat GROUP BY qty');
    await expect(migratePg('pcg_mat', 'ADD COLUMN extra int')).rejects.toThrow(/materialized view\(s\) pcg_mv depend on public\.pcg_mat/);
    expect(await pgHelpers(db, 'pcg_mat')).toEqual([]);
  });
});

describe('a view using a column the ALTER changes', () => {
  it('is refused up front, naming view and column; a view on other columns is no obstacle', async () => {
    await seed('pcg_vt');
    await db.query('CREATE VIEW pcg_v AS SELECT id, qty FROM pcg_vt');
    await expect(migratePg('pcg_vt', 'ALTER COLUMN qty TYPE bigint')).rejects.toThrow(/view\(s\) pcg_v \(qty\) use column\(s\) the ALTER drops, renames or retypes/);
    await expect(migratePg('pcg_vt', 'RENAME COLUMN qty TO amount')).rejects.toThrow(/view\(s\) pcg_v \(qty\)/);
    expect(await pgHelpers(db, 'pcg_vt')).toEqual([]);
    await db.query('ALTER TABLE pcg_vt ADD COLUMN other int');
    const result = await migratePg('pcg_vt', 'ALTER COLUMN other TYPE bigint');
    expect(result.executed).toBe(true);
    const { rows } = await db.query('SELECT count(*) AS n FROM pcg_v');
    expect(rows[0].n).toBe('20000');
  });
});
