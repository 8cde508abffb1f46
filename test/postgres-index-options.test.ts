// Issue 60, item 7: every option of every index and constraint comes back as the native ALTER leaves
// it, on every path: the copy (whose key's index and secondary indexes are built after the rows went
// in, by the stream's capture or the triggers') and the default one. Compared with a twin database
// altered natively (the catalog oracle: pg_dump of both, and what pg_dump leaves out).
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MigrateOptions } from '../src/core/migrate/runner.js';
import type { MigrationRequest } from '../src/core/engine/types.js';
import { pgPool } from './support/pg.js';
import { catalogTwins, type CatalogTwins } from './support/pg-catalog-oracle.js';

let twins: CatalogTwins | null = null;

/** A tablespace of the test server's own (in place: the standby on the same machine replays it into its own directory). */
const TABLESPACE = 'sc_index_options';

beforeAll(async () => {
  const db = pgPool();
  try {
    // CREATE TABLESPACE runs outside a transaction block, so the look and the make are two statements.
    const { rowCount } = await db.query(`SELECT 1 FROM pg_tablespace WHERE spcname = $1`, [TABLESPACE]);
    if (rowCount === 0) {
      const client = new pg.Client({ connectionString: (db.options as { connectionString: string }).connectionString });
      await client.connect();
      try {
        await client.query('SET allow_in_place_tablespaces = on');
        await client.query(`CREATE TABLESPACE ${TABLESPACE} LOCATION ''`);
      } finally {
        await client.end();
      }
    }
  } finally {
    await db.end();
  }
});

afterEach(async () => {
  await twins?.close();
  twins = null;
});

/**
 * pg_repack's own cases (tbl_cluster, tbl_with_dropped_column) and every option an index or a
 * constraint can carry: storage options on the key, a UNIQUE and an EXCLUDE constraint and a plain
 * index, INCLUDE, NULLS NOT DISTINCT, DEFERRABLE, a tablespace, an expression's statistics target
 * (on an index the ALTER rebuilds, which loses it natively, and on one it does not), CLUSTER ON and
 * the replica identity's index; and the table's own tablespace.
 */
const SETUP = `
  CREATE TABLE tbl_cluster (col1 int, "time" timestamp, ","")" text, v int, w int, e int,
    PRIMARY KEY (","")", col1) INCLUDE (w) WITH (fillfactor = 75) USING INDEX TABLESPACE ${TABLESPACE} DEFERRABLE INITIALLY DEFERRED,
    CONSTRAINT tbl_cluster_w_key UNIQUE NULLS NOT DISTINCT (w) WITH (fillfactor = 50, deduplicate_items = off) USING INDEX TABLESPACE ${TABLESPACE},
    CONSTRAINT tbl_cluster_e_excl EXCLUDE USING btree (e WITH =) WITH (fillfactor = 40) USING INDEX TABLESPACE ${TABLESPACE} WHERE (e > 0),
    CONSTRAINT tbl_cluster_v_check CHECK (v > -1) NO INHERIT
  ) WITH (fillfactor = 70);
  CREATE INDEX ","") cluster" ON tbl_cluster ("time", length(","")"), ","")" text_pattern_ops) WITH (fillfactor = 75);
  CREATE INDEX tbl_cluster_v_expr ON tbl_cluster ((v + 1)) WITH (fillfactor = 30) TABLESPACE ${TABLESPACE};
  CREATE INDEX tbl_cluster_w_expr ON tbl_cluster ((w * 2));
  ALTER INDEX tbl_cluster_v_expr ALTER COLUMN 1 SET STATISTICS 700;
  ALTER INDEX tbl_cluster_w_expr ALTER COLUMN 1 SET STATISTICS 800;
  CREATE UNIQUE INDEX tbl_cluster_ident ON tbl_cluster (col1, ","")") WITH (fillfactor = 90) TABLESPACE ${TABLESPACE};
  ALTER TABLE tbl_cluster CLUSTER ON ","") cluster", ALTER col1 SET NOT NULL, REPLICA IDENTITY USING INDEX tbl_cluster_ident;
  INSERT INTO tbl_cluster SELECT g, '2020-01-01'::timestamp + g * interval '1 hour', 'k' || g, g, g, g FROM generate_series(1, 300) g;

  CREATE TABLE tbl_with_dropped_column (d1 text, c1 text, id int, c2 text, d2 text,
    CONSTRAINT tbl_with_dropped_column_pkey PRIMARY KEY (id) WITH (fillfactor = 75)) TABLESPACE ${TABLESPACE};
  CREATE INDEX idx_c1c2 ON tbl_with_dropped_column (c1, c2) WITH (fillfactor = 75);
  CREATE INDEX idx_c2c1 ON tbl_with_dropped_column (c2, c1);
  INSERT INTO tbl_with_dropped_column SELECT 'd1', 'c1', g, 'c2', 'd2' FROM generate_series(1, 100) g;
  ALTER TABLE tbl_with_dropped_column CLUSTER ON tbl_with_dropped_column_pkey, DROP COLUMN d1, DROP COLUMN d2;`;

/** And a constraint the ALTER adds with options of its own. */
const ADDED = `ADD CONSTRAINT tbl_cluster_v_key UNIQUE NULLS NOT DISTINCT (v) INCLUDE (e) WITH (fillfactor = 55) USING INDEX TABLESPACE ${TABLESPACE} DEFERRABLE`;

const CASES: [table: string, alter: string][] = [
  ['tbl_cluster', `ALTER COLUMN v TYPE bigint, ADD COLUMN z int, ${ADDED}`],
  ['tbl_with_dropped_column', 'ALTER COLUMN c2 TYPE varchar(20), ADD COLUMN z int'],
];

const PATHS: { path: string; options: Partial<MigrateOptions>; request: Omit<MigrationRequest, 'url' | 'table' | 'alter'> }[] = [
  { path: 'the copy, captured by the stream', options: { forceCopy: true }, request: { capture: 'stream' } },
  { path: 'the copy, captured by triggers', options: { forceCopy: true }, request: { capture: 'trigger' } },
  { path: 'the copy with every index kept through it', options: { forceCopy: true }, request: { deferIndexes: 'off' } },
  { path: 'the default path', options: { forceCopy: false }, request: {} },
];

describe('indexes and constraints keep every option (PostgreSQL)', () => {
  it.each(PATHS)('on $path', async ({ path, options, request }) => {
    twins = await catalogTwins(`index_options_${PATHS.findIndex((p) => p.path === path)}`);
    await twins.setup(SETUP);
    for (const [table, alter] of CASES) {
      await twins.alterTwin(table, alter);
      await twins.migrate(table, alter, options, request);
    }
    expect(await twins.difference(CASES.map(([table]) => `${table}__old`))).toEqual([]);
  });

  it('in place on the default path, with the index options and the rows left as they were', async () => {
    twins = await catalogTwins('index_options_in_place');
    await twins.setup(SETUP);
    for (const [table, alter] of [
      ['tbl_cluster', `ADD COLUMN z int, ${ADDED}`],
      ['tbl_with_dropped_column', 'ADD COLUMN z int'],
    ]) {
      await twins.alterTwin(table, alter);
      const result = (await twins.migrate(table, alter, { forceCopy: false })) as { path: string };
      expect(result.path).toBe('in-place');
    }
    expect(await twins.difference()).toEqual([]);
  });
});
