// PostgreSQL corpus: changes the stream alone cannot see, guarded at the cut-over or refused up front.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentReporter } from '../src/core/report/reporter.js';
import { migrate } from '../src/core/migrate/runner.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { migratePg, pgDropTables, pgHelpers, pgPool, pgSchemaOf, pgUrl } from './support/pg.js';

let db: pg.Pool;

beforeAll(() => {
  db = pgPool();
});

afterAll(async () => {
  await db.query('DROP MATERIALIZED VIEW IF EXISTS pcg_mv');
  await db.query('DROP VIEW IF EXISTS pcg_v');
  await pgDropTables(db, ['pcg_ddl', 'pcg_mat', 'pcg_vt', 'pcg_quiet', 'pcg_child', 'pcg_parent', 'pcg_rls']);
  await db.query('DROP ROLE IF EXISTS pcg_owner');
  await db.end();
});

async function seed(table: string) {
  await pgDropTables(db, [table]);
  await db.query(`CREATE TABLE ${table} (id int PRIMARY KEY, qty int NOT NULL, label varchar(20))`);
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
      /pcg_ddl was altered during the migration \(was: constraint pcg_ddl_pkey PRIMARY KEY \(id\); now: column intruder integer DEFAULT 7\); start again/,
    );
    expect(altered).toBe(true);
    expect(await pgHelpers(db, 'pcg_ddl')).toEqual([]);
    expect((await pgSchemaOf(db, 'pcg_ddl')).map((c) => c.split(' ')[0])).toEqual(['id', 'qty', 'label', 'intruder']);
    const { rows } = await db.query('SELECT count(*)::int AS n, min(intruder)::int AS i FROM pcg_ddl');
    expect(rows[0]).toEqual({ n: '20000', i: '7' }); // the test pool reads every value as the server's text
  });

  // Changes that keep every column's name and type OID: the stream's relation message would not show them.
  it.each([
    [
      'a wider varchar',
      'ALTER COLUMN label TYPE varchar(30)',
      /was: column label character varying\(20\) COLLATE "default"; now: column label character varying\(30\)/,
    ],
    ['NOT NULL dropped', 'ALTER COLUMN qty DROP NOT NULL', /was: column qty integer NOT NULL; now: column qty integer\)/],
    ['a new default', 'ALTER COLUMN qty SET DEFAULT 5', /now: column qty integer NOT NULL DEFAULT 5/],
    ['a CHECK constraint', 'ADD CONSTRAINT qty_small CHECK (qty < 1000)', /now: constraint qty_small CHECK \(\(qty < 1000\)\)/],
    ['an index', 'CREATE INDEX pcg_quiet_qty ON pcg_quiet (qty)', /now: index CREATE INDEX pcg_quiet_qty ON public.pcg_quiet USING btree \(qty\)/],
  ])('is found under the cut-over lock however quiet: %s', async (_what, change, named) => {
    await seed('pcg_quiet');
    let done = false;
    const ddl = change.startsWith('CREATE') ? change : `ALTER TABLE pcg_quiet ${change}`;
    const reporter = { ...silentReporter, progress: () => void (done || ((done = true), db.query(ddl))) };
    const run = migratePg('pcg_quiet', 'ADD COLUMN extra int', { reporter, chunkTimeMs: 20 });
    await expect(run).rejects.toThrow(/pcg_quiet was altered during the migration/);
    await expect(run).rejects.toThrow(named);
    expect(await pgHelpers(db, 'pcg_quiet')).toEqual([]);
  });
});

describe('tables in an inheritance tree', () => {
  it('are refused up front, parent and child, naming the other', async () => {
    await pgDropTables(db, ['pcg_child', 'pcg_parent']);
    await db.query('CREATE TABLE pcg_parent (id int PRIMARY KEY, qty int)');
    await db.query('CREATE TABLE pcg_child (extra int) INHERITS (pcg_parent)');
    await db.query('ALTER TABLE pcg_child ADD PRIMARY KEY (id)');
    await expect(migratePg('pcg_parent', 'ADD COLUMN x int')).rejects.toThrow(/public\.pcg_parent has inheriting tables \(public\.pcg_child\)/);
    await expect(migratePg('pcg_child', 'ADD COLUMN x int')).rejects.toThrow(/public\.pcg_child inherits from public\.pcg_parent/);
    expect([...(await pgHelpers(db, 'pcg_parent')), ...(await pgHelpers(db, 'pcg_child'))]).toEqual([]);
  });
});

describe('FORCE ROW LEVEL SECURITY', () => {
  it('is refused for an owner whose policies would hide rows from the copy', async () => {
    await pgDropTables(db, ['pcg_rls']);
    await db.query('DROP ROLE IF EXISTS pcg_owner');
    await db.query('CREATE ROLE pcg_owner LOGIN REPLICATION');
    await db.query('GRANT CREATE ON SCHEMA public TO pcg_owner');
    await db.query(`GRANT CREATE ON DATABASE ${new URL(pgUrl()).pathname.slice(1)} TO pcg_owner`);
    await db.query('CREATE TABLE pcg_rls (id int PRIMARY KEY, tenant int NOT NULL)');
    await db.query('INSERT INTO pcg_rls SELECT g, g % 2 FROM generate_series(1, 100) g');
    await db.query('ALTER TABLE pcg_rls OWNER TO pcg_owner');
    await db.query('ALTER TABLE pcg_rls ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY');
    await db.query('CREATE POLICY tenant_one ON pcg_rls USING (tenant = 1)');
    const url = new URL(pgUrl());
    url.username = 'pcg_owner';
    url.password = '';
    const engine = await createPostgresEngine(url.toString());
    try {
      await expect(migrate(engine, { url: url.toString(), table: 'pcg_rls', alter: 'ADD COLUMN x int' }, { execute: true, forceCopy: true })).rejects.toThrow(
        /pcg_rls has FORCE ROW LEVEL SECURITY, so its policies would hide rows from the copy/,
      );
    } finally {
      await engine.close();
    }
    expect(await pgHelpers(db, 'pcg_rls')).toEqual([]);
    await pgDropTables(db, ['pcg_rls']);
    await db.query(`REVOKE CREATE ON DATABASE ${url.pathname.slice(1)} FROM pcg_owner`);
    await db.query('REVOKE CREATE ON SCHEMA public FROM pcg_owner');
  });
});

describe('a materialized view on the table', () => {
  it('is refused up front, naming it: it would stay bound to the old table', async () => {
    await seed('pcg_mat');
    await db.query('CREATE MATERIALIZED VIEW pcg_mv AS SELECT qty, count(*) FROM pcg_mat GROUP BY qty');
    await expect(migratePg('pcg_mat', 'ADD COLUMN extra int')).rejects.toThrow(/materialized view\(s\) public\.pcg_mv depend on public\.pcg_mat/);
    expect(await pgHelpers(db, 'pcg_mat')).toEqual([]);
  });
});

describe('a view using a column the ALTER changes', () => {
  it('is refused up front, naming view and column; a view on other columns is no obstacle', async () => {
    await seed('pcg_vt');
    await db.query('CREATE VIEW pcg_v AS SELECT id, qty FROM pcg_vt');
    await expect(migratePg('pcg_vt', 'ALTER COLUMN qty TYPE bigint')).rejects.toThrow(
      /view\(s\) public\.pcg_v \(qty\) use column\(s\) the ALTER drops, retypes or renames/,
    );
    expect(await pgHelpers(db, 'pcg_vt')).toEqual([]);
    await db.query('ALTER TABLE pcg_vt ADD COLUMN other int');
    const result = await migratePg('pcg_vt', 'ALTER COLUMN other TYPE bigint');
    expect(result.executed).toBe(true);
    const { rows } = await db.query('SELECT count(*) AS n FROM pcg_v');
    expect(rows[0].n).toBe('20000');
  });
});
