// DESIGN invariant 17 on PostgreSQL: the database after shadowcut is the one the native ALTER makes.
// Each case sets up the same schema in two databases, gives the twin the server's own ALTER and the
// other shadowcut's migrate, and asks the catalog oracle (pg_dump --schema-only of both, normalised
// only for the documented leftovers) for the difference. Issue 32, part 2.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MigrateOptions } from '../src/core/migrate/runner.js';
import { pgPool } from './support/pg.js';
import { catalogTwins, type CatalogTwins } from './support/pg-catalog-oracle.js';

let twins: CatalogTwins | null = null;

beforeAll(async () => {
  // Roles are the cluster's, not a database's: made once, for the grants and policies below.
  const db = pgPool();
  try {
    await db.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'sc_cat_reader') THEN CREATE ROLE sc_cat_reader; END IF; END $$`);
  } finally {
    await db.end();
  }
});

afterEach(async () => {
  await twins?.close();
  twins = null;
});

const TABLE = `CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL, w text, CONSTRAINT t_v_positive CHECK (v >= 0));
               CREATE INDEX t_v ON t (v);
               INSERT INTO t SELECT g, g % 50, 'w' || g FROM generate_series(1, 500) g;`;

/**
 * The two ways shadowcut takes: the copy (forced) with a clause that rewrites natively, and the
 * default path with a clause it makes in place (the native ALTER itself). Only the copy keeps `__old`.
 */
const paths: { path: string; alter: string; options: Partial<MigrateOptions>; kept: (t: string[]) => string[] }[] = [
  { path: 'copy', alter: 'ALTER COLUMN v TYPE bigint, ADD COLUMN z int', options: { forceCopy: true }, kept: (t) => t.map((n) => `${n}__old`) },
  { path: 'default', alter: 'ADD COLUMN z int', options: { forceCopy: false }, kept: () => [] },
];

async function expectSameAsNative(name: string, setup: string, table = 't', tree: string[] = [table]): Promise<void> {
  for (const { path, alter, options, kept } of paths) {
    twins = await catalogTwins(`${name}_${path}`);
    await twins.setup(setup);
    await twins.alterTwin(table, alter);
    await twins.migrate(table, alter, options);
    expect({ path, difference: await twins.difference(kept(tree)) }).toEqual({ path, difference: [] });
    await twins.close();
    twins = null;
  }
}

describe('the database after shadowcut is the one the native ALTER makes', () => {
  it('the oracle sees a difference when there is one', async () => {
    twins = await catalogTwins('sanity');
    await twins.setup(TABLE);
    await twins.alterTwin('t', 'ADD COLUMN z int');
    expect(await twins.difference()).toEqual([
      expect.stringMatching(/^shadowcut: Name: t; Type: TABLE/),
      expect.stringMatching(/^native: Name: t; Type: TABLE[^]*z integer/),
    ]);
  });

  it('keeps CLUSTER ON', async () => {
    await expectSameAsNative('cluster', `${TABLE} ALTER TABLE t CLUSTER ON t_v;`);
  });

  it('keeps per-column statistics targets, options, storage and compression', async () => {
    await expectSameAsNative(
      'columns',
      `${TABLE} ALTER TABLE t ALTER COLUMN v SET STATISTICS 500, ALTER COLUMN v SET (n_distinct = 50, n_distinct_inherited = 10),
                            ALTER COLUMN w SET STORAGE EXTERNAL, ALTER COLUMN w SET COMPRESSION lz4;`,
    );
  });

  it("keeps the table's and its TOAST table's storage options", async () => {
    await expectSameAsNative(
      'reloptions',
      `${TABLE} ALTER TABLE t SET (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.01, toast.autovacuum_enabled = false, toast.vacuum_truncate = false);`,
    );
  });

  it("keeps NOT VALID CHECKs, the table's and one the ALTER adds, over rows that break them; writes from then on must meet them", async () => {
    twins = await catalogTwins('not_valid');
    await twins.setup(
      `${TABLE} ALTER TABLE t ADD CONSTRAINT t_w_short CHECK (char_length(w) < 3) NOT VALID; COMMENT ON CONSTRAINT t_w_short ON t IS 'old rows may be longer';`,
    );
    const alter = 'ALTER COLUMN v TYPE bigint, ADD CONSTRAINT t_v_small CHECK (v < 10) NOT VALID';
    await twins.alterTwin('t', alter);
    await twins.migrate('t', alter, { forceCopy: true });
    expect(await twins.difference(['t__old'])).toEqual([]);
    for (const pool of [twins.pool, twins.twin]) {
      expect(Number((await pool.query(`SELECT count(*) AS n FROM t WHERE v >= 10 OR char_length(w) >= 3`)).rows[0].n)).toBeGreaterThan(400);
      await expect(pool.query(`INSERT INTO t VALUES (9001, 50, 'x')`)).rejects.toThrow(/t_v_small/);
      await expect(pool.query(`INSERT INTO t VALUES (9002, 5, 'long')`)).rejects.toThrow(/t_w_short/);
    }
  });

  it('names the constraints the ALTER adds without a name as the native ALTER does, after the table and clear of names the schema holds', async () => {
    twins = await catalogTwins('generated_names');
    // Another table holds the name the first CHECK would take: the server takes the next one.
    await twins.setup(`${TABLE} CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE other (a int CONSTRAINT t_c_check CHECK (a > 0));`);
    const alter =
      'ADD COLUMN p int REFERENCES p, ADD COLUMN c int CHECK (c > 0), ADD UNIQUE (v, id), ADD COLUMN e int UNIQUE, ' +
      'ADD EXCLUDE USING btree (id WITH =), ADD CHECK (w IS NOT NULL) NOT VALID, ADD UNIQUE (v, id)';
    await twins.alterTwin('t', alter);
    await twins.migrate('t', alter, { forceCopy: true });
    expect(await twins.difference(['t__old'])).toEqual([]);
    const { rows } = await twins.pool.query(`SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass ORDER BY 1`);
    expect(rows.map((r) => r.conname)).toEqual([
      't_c_check1',
      't_e_key',
      't_id_excl',
      't_p_fkey',
      't_pkey',
      't_v_id_key',
      't_v_id_key1',
      't_v_positive',
      't_w_check',
    ]);
  });

  it('keeps replica identity (FULL, USING INDEX)', async () => {
    await expectSameAsNative('ident_full', `${TABLE} ALTER TABLE t REPLICA IDENTITY FULL;`);
    await expectSameAsNative('ident_index', `${TABLE} CREATE UNIQUE INDEX t_id_v ON t (id, v); ALTER TABLE t REPLICA IDENTITY USING INDEX t_id_v;`);
  });

  it('refuses REPLICA IDENTITY NOTHING on the copy: its updates could not be followed', async () => {
    twins = await catalogTwins('ident_nothing');
    await twins.setup(`${TABLE} ALTER TABLE t REPLICA IDENTITY NOTHING;`);
    await expect(twins.migrate('t', 'ALTER COLUMN v TYPE bigint')).rejects.toThrow(/public\.t has REPLICA IDENTITY NOTHING, so its updates cannot be followed/);
    expect(await twins.difference()).toEqual([]);
  });

  it('keeps comments on columns, constraints, indexes and foreign keys', async () => {
    await expectSameAsNative(
      'comments',
      `${TABLE} CREATE TABLE parent (id int PRIMARY KEY); INSERT INTO parent VALUES (1);
       ALTER TABLE t ADD COLUMN p int REFERENCES parent; CREATE TABLE child (id int PRIMARY KEY, tid int REFERENCES t);
       COMMENT ON TABLE t IS 'the table'; COMMENT ON COLUMN t.w IS 'a column';
       COMMENT ON CONSTRAINT t_v_positive ON t IS 'a check'; COMMENT ON CONSTRAINT t_pkey ON t IS 'the key';
       COMMENT ON INDEX t_v IS 'an index'; COMMENT ON INDEX t_pkey IS 'the key''s index';
       COMMENT ON CONSTRAINT t_p_fkey ON t IS 'out'; COMMENT ON CONSTRAINT child_tid_fkey ON child IS 'in';`,
    );
  });

  it('keeps statistics objects: names, targets and comments', async () => {
    await expectSameAsNative(
      'statistics',
      `${TABLE} CREATE STATISTICS t_vw (dependencies, ndistinct) ON v, w FROM t; ALTER STATISTICS t_vw SET STATISTICS 300;
       COMMENT ON STATISTICS t_vw IS 'v and w'; CREATE STATISTICS t_expr ON (v + 1), w FROM t;`,
    );
  });

  it('keeps grants on the table and on its columns', async () => {
    await expectSameAsNative(
      'grants',
      `${TABLE} GRANT SELECT ON t TO sc_cat_reader; GRANT SELECT (id, w), UPDATE (w) ON t TO sc_cat_reader; GRANT INSERT (v) ON t TO PUBLIC;`,
    );
  });

  it('keeps policies and rules', async () => {
    await expectSameAsNative(
      'policies',
      `${TABLE} ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY t_mine ON t FOR SELECT TO sc_cat_reader USING (id > 10);
       CREATE TABLE audit (id int, what text);
       CREATE RULE t_audit AS ON DELETE TO t DO ALSO INSERT INTO audit VALUES (OLD.id, 'deleted');
       CREATE RULE t_no_v0 AS ON UPDATE TO t WHERE NEW.id = 0 DO INSTEAD NOTHING;`,
    );
  });

  it('keeps rules of other relations that write into the table on it: an updatable view, another table', async () => {
    await expectSameAsNative(
      'other_rules',
      `${TABLE} CREATE VIEW t_ids AS SELECT id, w FROM t;
       CREATE RULE t_ids_delete AS ON DELETE TO t_ids DO INSTEAD DELETE FROM t WHERE id = OLD.id;
       CREATE TABLE inbox (id int);
       CREATE RULE inbox_delete AS ON INSERT TO inbox DO ALSO DELETE FROM t WHERE id = NEW.id;`,
    );
  });

  it('refuses a rule that uses a column the ALTER retypes, as the native ALTER does', async () => {
    twins = await catalogTwins('rule_retyped');
    await twins.setup(`${TABLE} CREATE TABLE inbox (id int); CREATE RULE inbox_zero AS ON INSERT TO inbox DO ALSO UPDATE t SET v = 0 WHERE id = NEW.id;`);
    await expect(twins.alterTwin('t', 'ALTER COLUMN v TYPE bigint')).rejects.toThrow(/cannot alter type of a column used by a view or rule/);
    await expect(twins.migrate('t', 'ALTER COLUMN v TYPE bigint')).rejects.toThrow(
      /rule\(s\) inbox_zero on public\.inbox \(v\) use column\(s\) the ALTER drops, retypes or renames/,
    );
    expect(await twins.difference()).toEqual([]);
  });

  it('keeps owned sequences: serial and identity columns', async () => {
    await expectSameAsNative(
      'sequences',
      `CREATE TABLE t (id serial PRIMARY KEY, n int GENERATED BY DEFAULT AS IDENTITY (START 100 INCREMENT 5), v int NOT NULL, w text);
       INSERT INTO t (v, w) SELECT g, 'w' FROM generate_series(1, 50) g;`,
    );
  });

  it("keeps the table in the user's publications and the old table out of them", async () => {
    await expectSameAsNative(
      'publications',
      `${TABLE} CREATE PUBLICATION t_pub FOR TABLE t; CREATE PUBLICATION t_pub_ins FOR TABLE t WITH (publish = 'insert');`,
    );
  });

  it('carries a foreign key from another table to one partition', async () => {
    const setup = `CREATE TABLE p (id int, k int, v int, w text, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
       CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1); CREATE TABLE p2 PARTITION OF p FOR VALUES IN (2);
       INSERT INTO p SELECT g, 1 + g % 2, g, 'w' FROM generate_series(1, 200) g;
       CREATE TABLE c (id int PRIMARY KEY, pid int, pk int, FOREIGN KEY (pid, pk) REFERENCES p1 (id, k));
       INSERT INTO c VALUES (1, 2, 1);`;
    await expectSameAsNative('fk_partition', setup, 'p', ['p', 'p1', 'p2']);
    // And it acts on the new partition: a child of a new parent row is taken, a referenced parent kept.
    twins = await catalogTwins('fk_partition_acts');
    await twins.setup(setup);
    await twins.migrate('p', 'ALTER COLUMN w TYPE varchar(50)', { forceCopy: true, dropOld: true });
    await twins.pool.query(`INSERT INTO p VALUES (1001, 1, 1, 'new'); INSERT INTO c VALUES (2, 1001, 1)`);
    await expect(twins.pool.query(`DELETE FROM p WHERE id = 2 AND k = 1`)).rejects.toThrow(/c_pid_pk_fkey/);
    const { rows } = await twins.pool.query(`SELECT to_regclass('p1__old') AS old`);
    expect(rows[0].old).toBeNull();
  });

  it("refuses a statistics object on one partition, which the shadow's partitions would not get", async () => {
    twins = await catalogTwins('partition_statistics');
    await twins.setup(
      `CREATE TABLE p (id int, k int, v int, PRIMARY KEY (id, k)) PARTITION BY LIST (k);
       CREATE TABLE p1 PARTITION OF p FOR VALUES IN (1); CREATE STATISTICS p1_kv ON k, v FROM p1;`,
    );
    await expect(twins.migrate('p', 'ALTER COLUMN v TYPE bigint')).rejects.toThrow(
      /statistics object public\.p1_kv: on a partition alone, not on its parent; shadowcut does not carry those yet/,
    );
    expect(await twins.difference()).toEqual([]);
  });

  it('an INVALID index: the copy is refused before anything is made, in place keeps it as it is', async () => {
    const invalid = async (on: CatalogTwins) => {
      for (const pool of [on.pool, on.twin]) {
        await pool.query(`INSERT INTO t VALUES (501, 1, 'w1')`);
        await expect(pool.query(`CREATE UNIQUE INDEX CONCURRENTLY t_w_unique ON t (w)`)).rejects.toThrow(/could not create unique index/);
      }
    };
    twins = await catalogTwins('invalid_copy');
    await twins.setup(TABLE);
    await invalid(twins);
    await expect(twins.migrate('t', 'ALTER COLUMN w TYPE varchar(50), ADD COLUMN z int')).rejects.toThrow(
      /index public\.t_w_unique is INVALID .*REINDEX INDEX CONCURRENTLY public\.t_w_unique .* or DROP INDEX public\.t_w_unique,/,
    );
    // Nothing was made: the database is still its twin's.
    expect(await twins.difference()).toEqual([]);
    await twins.close();
    twins = await catalogTwins('invalid_in_place');
    await twins.setup(TABLE);
    await invalid(twins);
    await twins.alterTwin('t', 'ADD COLUMN z int');
    await twins.migrate('t', 'ADD COLUMN z int', { forceCopy: false });
    expect(await twins.difference()).toEqual([]);
  });

  it('in place, a snapshot older than the final transaction reads what it reads after the native ALTER: no wait is owed', async () => {
    // The copy's cut-over waits for such snapshots because the new table's rows are newer than them
    // (invariant 14). In place nothing is rewritten: the rows an old snapshot sees are the same ones.
    twins = await catalogTwins('in_place_snapshot');
    await twins.setup(TABLE);
    await twins.setup(`CREATE TABLE elsewhere (id int)`);
    const alter = 'ADD COLUMN z int DEFAULT 5, ALTER COLUMN w SET NOT NULL';
    const readers = [await twins.pool.connect(), await twins.twin.connect()];
    try {
      // Each holds a snapshot from before the change, without a lock on t (which the ALTER would wait out).
      for (const r of readers) await r.query(`BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM elsewhere`);
      const result = (await twins.migrate('t', alter, { forceCopy: false })) as { path: string };
      expect(result.path).toBe('in-place');
      await twins.alterTwin('t', alter);
      const read = async (r: (typeof readers)[number]) =>
        (await r.query(`SELECT count(*) AS n, count(w) AS w, sum(z) AS z FROM t`)).rows[0] as Record<string, string>;
      const [mine, native] = [await read(readers[0]), await read(readers[1])];
      expect(mine).toEqual(native);
      expect(mine).toEqual({ n: '500', w: '500', z: '2500' });
    } finally {
      for (const r of readers) {
        await r.query('ROLLBACK').catch(() => {});
        r.release();
      }
    }
    expect(await twins.difference()).toEqual([]);
  });

  it('after a revert, the table is the one it was: the kept new table is in none of its publications', async () => {
    twins = await catalogTwins('revert');
    // What the forward cut-over carried comes back with the revert's, on the reversed plan.
    await twins.setup(
      `${TABLE} CREATE PUBLICATION t_pub FOR TABLE t; ALTER TABLE t CLUSTER ON t_v; COMMENT ON INDEX t_v IS 'an index';
       CREATE STATISTICS t_vw ON v, w FROM t; GRANT SELECT (w) ON t TO sc_cat_reader;
       CREATE TABLE audit (id int); CREATE RULE t_audit AS ON DELETE TO t DO ALSO INSERT INTO audit VALUES (OLD.id);
       ALTER TABLE t ADD COLUMN n int GENERATED BY DEFAULT AS IDENTITY;`,
    );
    const alter = 'ADD COLUMN z int';
    await twins.migrateAndRevert('t', alter);
    // The twin never took the ALTER: a revert gives back the table as it was.
    expect(await twins.difference(['t__new'])).toEqual([]);
  });
});
