/**
 * What real schemas bind to a table besides its columns, indexes and constraints, drawn per seed and
 * made on the table and on its mirror alike. After the run the catalog oracle (`ChaosDb.catalog`)
 * compares everything bound to each: the database shadowcut leaves must be the one the server's own
 * ALTER makes (docs/invariants.md, invariant 17), not only the table's rows and columns.
 */
import { ident, type TableSpec } from './grammar.js';
import type { Prng } from './prng.js';

export interface Dependents {
  /** A comment on the table, and on its first plain column. */
  comments: boolean;
  /** A view over the key columns (the ALTER may then be refused by both sides, when it changes them). */
  view: boolean;
  /** PostgreSQL: a statistics target and n_distinct on a plain column. */
  columnStatistics: boolean;
  /** PostgreSQL: fillfactor and a TOAST option (not on a partitioned table, which takes neither). */
  storage: boolean;
  /** PostgreSQL: CLUSTER ON the primary key's index (not on a partitioned table). */
  cluster: boolean;
  /** PostgreSQL: SELECT to PUBLIC, and UPDATE of one column. */
  grants: boolean;
  /** PostgreSQL: REPLICA IDENTITY FULL. */
  replicaIdentity: boolean;
  /** PostgreSQL: a statistics object over two columns. */
  statisticsObject: boolean;
  /** PostgreSQL: a policy (row security left off). */
  policy: boolean;
  /** PostgreSQL: a BEFORE UPDATE trigger of the table's own that changes nothing. */
  trigger: boolean;
  /** MySQL: persistent-statistics table options. */
  tableOptions: boolean;
  /** PostgreSQL: a CHECK added NOT VALID (on the key, which every row meets: the workload's writes go on), which the new table must keep unvalidated. */
  notValidCheck: boolean;
}

export function drawDependents(r: Prng, t: TableSpec): Dependents {
  const pg = t.engine === 'postgres';
  const plain = t.partition === undefined;
  return {
    comments: r.chance(0.5),
    view: r.chance(0.3),
    columnStatistics: pg && r.chance(0.4),
    storage: pg && plain && r.chance(0.3),
    cluster: pg && plain && r.chance(0.3),
    grants: pg && r.chance(0.4),
    replicaIdentity: pg && r.chance(0.2),
    statisticsObject: pg && r.chance(0.3),
    policy: pg && r.chance(0.2),
    trigger: pg && r.chance(0.25),
    tableOptions: !pg && r.chance(0.4),
    // Drawn last, so earlier seeds keep the dependents they had.
    notValidCheck: pg && r.chance(0.25),
  };
}

/** The plain columns: neither key nor generated. */
const plainColumns = (t: TableSpec) => t.columns.filter((c) => !c.generatedFrom && !t.key.some((k) => k.name === c.name));

/** What makes `d` on the table `name` (run after the table and its rows exist). */
export function dependentsSql(d: Dependents, t: TableSpec, name: string): string[] {
  const id = (n: string) => ident(t.engine, n);
  const column = plainColumns(t)[0];
  const keys = t.key.map((k) => id(k.name)).join(', ');
  const out: string[] = [];
  if (t.engine === 'mysql') {
    if (d.comments) out.push(`ALTER TABLE ${id(name)} COMMENT = 'chaos: the table''s own comment'`);
    if (d.tableOptions) out.push(`ALTER TABLE ${id(name)} STATS_PERSISTENT = 1, STATS_SAMPLE_PAGES = 17, STATS_AUTO_RECALC = 0`);
    if (d.view) out.push(`CREATE VIEW ${id(`${name}_v`)} AS SELECT ${keys} FROM ${id(name)}`);
    return out;
  }
  if (d.comments) {
    out.push(`COMMENT ON TABLE ${id(name)} IS 'chaos: the table''s own comment'`);
    if (column) out.push(`COMMENT ON COLUMN ${id(name)}.${id(column.name)} IS 'chaos: a column comment'`);
  }
  if (d.columnStatistics && column) {
    out.push(`ALTER TABLE ${id(name)} ALTER COLUMN ${id(column.name)} SET STATISTICS 321`);
    out.push(`ALTER TABLE ${id(name)} ALTER COLUMN ${id(column.name)} SET (n_distinct = 77)`);
  }
  if (d.storage) out.push(`ALTER TABLE ${id(name)} SET (fillfactor = 90, toast.autovacuum_enabled = false)`);
  if (d.cluster) {
    out.push(`DO $$ BEGIN EXECUTE format('ALTER TABLE %I CLUSTER ON %I', '${name}',
               (SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = '${id(name)}'::regclass AND i.indisunique ORDER BY i.indisprimary DESC, c.relname LIMIT 1)); END $$`);
  }
  if (d.grants) {
    out.push(`GRANT SELECT ON ${id(name)} TO PUBLIC`);
    if (column) out.push(`GRANT UPDATE (${id(column.name)}) ON ${id(name)} TO PUBLIC`);
  }
  if (d.replicaIdentity) out.push(`ALTER TABLE ${id(name)} REPLICA IDENTITY FULL`);
  const second = plainColumns(t).find((c) => c !== column && /int|numeric|char|text|date|time/.test(c.type.sql));
  if (d.statisticsObject && second) out.push(`CREATE STATISTICS ${id(`${name}_st`)} ON ${id(t.key[0].name)}, ${id(second.name)} FROM ${id(name)}`);
  if (d.policy) out.push(`CREATE POLICY ${id(`${name}_p`)} ON ${id(name)} FOR SELECT USING (true)`);
  if (d.trigger) {
    // A function per table: runs side by side on one server would replace each other's at once.
    out.push(`CREATE OR REPLACE FUNCTION ${id(`${name}_fn`)}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$`);
    out.push(`CREATE TRIGGER ${id(`${name}_tr`)} BEFORE UPDATE ON ${id(name)} FOR EACH ROW EXECUTE FUNCTION ${id(`${name}_fn`)}()`);
  }
  if (d.notValidCheck) out.push(`ALTER TABLE ${id(name)} ADD CONSTRAINT ${id(`${name}_nv`)} CHECK (${id(t.key[0].name)} IS NOT NULL) NOT VALID`);
  if (d.view) out.push(`CREATE VIEW ${id(`${name}_v`)} AS SELECT ${keys} FROM ${id(name)}`);
  return out;
}
