import type pg from 'pg';
import { UserError } from '../../../core/engine/errors.js';
import { qualified } from '../server/sql.js';
import type { CitusDetail, CitusNode } from '../schema/plan.js';

/**
 * A hash-distributed or reference table as Citus's catalogs place it: its distribution column (none
 * for a reference table), its co-location group, and the shards each node holds (a node is named by
 * its group, the coordinator's group 0 included when it holds shards). Read on the coordinator.
 *
 * A reference table has one shard with a placement on every node, and Citus makes each write on all
 * of them in one two-phase transaction: any one placement's stream carries every change, so one is
 * followed, the lowest group's (the coordinator's, when it holds one: the node shadowcut is pointed
 * at, whose own commit comes first), and the others are its replicas.
 */
export async function citusDetail(pool: pg.Pool, schema: string, name: string): Promise<CitusDetail> {
  const table = qualified(schema, name);
  const { rows: dist } = await pool.query(
    `SELECT pg_catalog.column_to_column_name(logicalrelid, partkey) AS column, colocationid
       FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1::regclass AND (partmethod = 'h' OR (partmethod = 'n' AND repmodel = 't'))`,
    [table],
  );
  if (!dist.length) throw new Error(`${table} is neither a hash-distributed nor a reference table`);
  const { rows } = await pool.query(
    `SELECT s.shardid::text AS shard, pl.groupid AS grp, n.nodename AS host, n.nodeport AS port
       FROM pg_catalog.pg_dist_shard s
       JOIN pg_catalog.pg_dist_placement pl ON pl.shardid = s.shardid
       JOIN pg_catalog.pg_dist_node n ON n.groupid = pl.groupid AND n.noderole = 'primary'
      WHERE s.logicalrelid = $1::regclass ORDER BY pl.groupid, s.shardid`,
    [table],
  );
  const nodes = new Map<number, CitusNode>();
  for (const r of rows as { shard: string; grp: number; host: string; port: number }[]) {
    let node = nodes.get(r.grp);
    if (!node) nodes.set(r.grp, (node = { group: r.grp, host: r.host, port: r.port, shards: [] }));
    node.shards.push(qualified(schema, `${name}_${r.shard}`));
  }
  const column = dist[0].column === null ? null : String(dist[0].column);
  const [followed, ...replicas] = nodes.values();
  const holders = column === null ? { nodes: followed ? [followed] : [], replicas } : { nodes: [...nodes.values()] };
  return { column, colocationId: Number(dist[0].colocationid), ...holders, placements: await placements(pool, table) };
}

/** `shardid:groupid` of every placement of the table, in order. */
export async function placements(db: pg.Pool | pg.PoolClient, table: string): Promise<string> {
  const { rows } = await db.query(
    `SELECT coalesce(string_agg(pl.shardid || ':' || pl.groupid, ',' ORDER BY pl.shardid, pl.groupid), '') AS p
       FROM pg_catalog.pg_dist_shard s JOIN pg_catalog.pg_dist_placement pl ON pl.shardid = s.shardid WHERE s.logicalrelid = $1::regclass`,
    [table],
  );
  return String(rows[0].p);
}

/** A shard moved or split since the plan (the rebalancer): the stream follows the shards where they were. */
export async function expectPlacements(db: pg.Pool | pg.PoolClient, table: string, d: CitusDetail): Promise<void> {
  if ((await placements(db, table)) !== d.placements) {
    throw new UserError(`the shards of ${table} moved during the migration (a rebalance or a shard move); stopped safely, start again once it is done`);
  }
}
