import type pg from 'pg';
import type { TablePlacement } from '../../../core/engine/ports/placement.js';
import { isTrue, qualified } from '../server/sql.js';

/**
 * Where a table's rows live when the server runs Citus. A Citus table's rows are in shards on the
 * workers, and what the coordinator holds under the table's name is an empty shell: a copy made
 * through the coordinator would pour every shard into one local table and swap it in, the table no
 * longer distributed (docs/invariants.md, invariant 21). So every command asks first.
 *
 * The catalogs are named with their schema: Citus keeps them in pg_catalog, where no other role can
 * create a table of the same name, and the extension's row in pg_extension says they are Citus's.
 */
export async function citusPlacement(pool: pg.Pool, schema: string, name: string): Promise<TablePlacement> {
  const { rows: ext } = await pool.query(`SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'citus'`);
  if (!ext.length) return { kind: 'local' };
  const table = qualified(schema, name);
  const { rows } = await pool.query(
    `SELECT p.partmethod, p.repmodel, p.colocationid,
            pg_catalog.column_to_column_name(p.logicalrelid, p.partkey) AS column,
            (SELECT count(*) FROM pg_catalog.pg_dist_shard s WHERE s.logicalrelid = p.logicalrelid) AS shards,
            (SELECT count(DISTINCT pl.groupid) FROM pg_catalog.pg_dist_shard s
               JOIN pg_catalog.pg_dist_placement pl ON pl.shardid = s.shardid WHERE s.logicalrelid = p.logicalrelid) AS nodes
     FROM pg_catalog.pg_dist_partition p WHERE p.logicalrelid = to_regclass($1)`,
    [table],
  );
  if (rows.length) {
    const r = rows[0] as { partmethod: string; repmodel: string; colocationid: number; column: string | null; shards: string; nodes: string };
    const shape = citusShape(r.partmethod, r.repmodel, Number(r.colocationid));
    return {
      kind: 'distributed',
      shape,
      column: shape === 'hash' || shape === 'range' || shape === 'append' ? r.column : null,
      shards: Number(r.shards),
      nodes: Number(r.nodes),
      onCoordinator: await onCoordinator(pool),
      size: await citusSize(pool, table),
    };
  }
  // Pointed at a worker (or at the coordinator holding a local table's shard): a shard is one piece of
  // a distributed table, changed only through the table itself.
  const { rows: shard } = await pool.query(
    `SELECT s.logicalrelid::regclass::text AS owner FROM pg_catalog.pg_dist_shard s
      WHERE pg_catalog.relation_is_a_known_shard(to_regclass($1)) AND s.shardid = substring($2 from '_([0-9]+)$')::bigint`,
    [table, name],
  );
  if (shard.length) return { kind: 'shard', of: (shard[0] as { owner: string }).owner };
  return { kind: 'local' };
}

/** Citus's table types, from its catalog's columns as `citus_tables` reads them. */
function citusShape(partmethod: string, repmodel: string, colocationId: number): TablePlacementShape {
  if (partmethod === 'h') return 'hash';
  if (partmethod === 'r') return 'range';
  if (partmethod === 'a') return 'append';
  if (repmodel === 't') return 'reference';
  return colocationId === 0 ? 'citus-local' : 'single-shard';
}

type TablePlacementShape = Extract<TablePlacement, { kind: 'distributed' }>['shape'];

async function onCoordinator(pool: pg.Pool): Promise<boolean> {
  const { rows } = await pool.query('SELECT pg_catalog.citus_is_coordinator() AS c');
  return isTrue(rows[0].c);
}

/**
 * The table as its shards hold it: the shell on the coordinator is empty. The rows are each shard's
 * estimate, summed: reltuples, or, for a shard never analysed, its heap over each row's size as the
 * catalog gives it (as in-place/in-place.ts estimates a table of one server). The shards' query runs
 * under each worker's own search_path: every operator in it has exactly typed operands, which
 * pg_catalog's match before any other schema's (`0::real`, not `0`, which another role's
 * `public.>=(real, integer)` would match exactly).
 */
async function citusSize(pool: pg.Pool, table: string): Promise<{ rows: number; dataBytes: number; indexBytes: number }> {
  const { rows } = await pool.query(
    `SELECT pg_catalog.citus_table_size($1::regclass) AS data,
            pg_catalog.citus_total_relation_size($1::regclass) - pg_catalog.citus_table_size($1::regclass) AS indexes,
            (SELECT coalesce(sum(greatest(r.result::numeric, 0)), 0) FROM pg_catalog.run_command_on_shards($1::regclass,
               $$SELECT CASE WHEN c.reltuples >= 0::real THEN c.reltuples ELSE pg_catalog.pg_relation_size(c.oid) /
                   ((SELECT coalesce(sum(CASE WHEN a.attlen > 0 THEN a.attlen ELSE 32 END), 0) FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) + 28) END
                 FROM pg_catalog.pg_class c WHERE c.oid = '%s'::regclass$$) r WHERE r.success) AS rows`,
    [table],
  );
  const r = rows[0] as { data: string; indexes: string; rows: string };
  return { rows: Math.round(Number(r.rows)), dataBytes: Number(r.data), indexBytes: Number(r.indexes) };
}

/** The table's row estimate where its rows are: its shards' for a distributed table, else `local` (the table's own reltuples). */
export async function rowsWhereTheyAre(pool: pg.Pool, schema: string, name: string, local: number): Promise<number> {
  const placement = await citusPlacement(pool, schema, name);
  return placement.kind === 'distributed' ? placement.size.rows : local;
}
