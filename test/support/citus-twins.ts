import { spawnSync } from 'node:child_process';
import type pg from 'pg';
import type { CitusCluster, CitusDatabase } from './citus.js';

/**
 * The oracle for a distributed table (docs/invariants.md, invariant 17 and 21): two databases of one Citus
 * cluster made alike, one migrated by shadowcut, the other given the same writes and Citus's own
 * ALTER TABLE through its coordinator. Compared afterwards on every node: the definitions (pg_dump
 * of each node, shards included, their ids aside, since a copy makes new shards), Citus's metadata
 * (distribution column, co-location, shard count, each shard's hash range and the node it is on),
 * and the rows of every shard on its node.
 */
export interface CitusTwins {
  live: CitusDatabase;
  twin: CitusDatabase;
  /** The same SQL through both coordinators, one statement at a time (Citus refuses some DDL in a string of several). */
  setup(sql: string): Promise<void>;
  /** Lines only the migrated database has (`shadowcut: ...`) and only the twin has (`native: ...`); empty when equal. */
  difference(tables: string[], kept: string[]): Promise<string[]>;
}

export async function citusTwins(cluster: CitusCluster, name: string): Promise<CitusTwins> {
  const live = await cluster.database(`${name}_live`);
  const twin = await cluster.database(`${name}_twin`);
  return {
    live,
    twin,
    async setup(sql) {
      for (const statement of sql.split(/;\s*\n/).filter((s) => s.trim())) {
        await live.coordinator.query(statement);
        await twin.coordinator.query(statement);
      }
    },
    async difference(tables, kept) {
      const lines = async (db: CitusDatabase) => [
        ...(await metadata(db.coordinator, tables, db.ports)),
        ...(await shardRows(db, tables)),
        ...[db.coordinatorUrl, ...db.workerUrls].flatMap((url, node) => definitions(url, kept).map((l) => `node ${node}: ${l}`)),
      ];
      const [mine, theirs] = [await lines(live), await lines(twin)];
      const less = (a: string[], b: string[]) => {
        const left = [...b];
        return a.filter((x) => {
          const at = left.indexOf(x);
          if (at < 0) return true;
          left.splice(at, 1);
          return false;
        });
      };
      return [...less(mine, theirs).map((l) => `shadowcut: ${l}`), ...less(theirs, mine).map((l) => `native: ${l}`)];
    },
  };
}

/** Each table's distribution: column, method, which tables share its co-location group, and each shard's range on its node (by the node's place in the cluster). */
async function metadata(coordinator: pg.Pool, tables: string[], ports: number[]): Promise<string[]> {
  const { rows } = await coordinator.query<{ line: string }>(
    `SELECT p.logicalrelid::text || ' by ' || coalesce(column_to_column_name(p.logicalrelid, p.partkey), '-') || ' ' || p.partmethod::text || ' ' || p.repmodel::text ||
            ' co-located with ' || (SELECT string_agg(q.logicalrelid::text, ',' ORDER BY q.logicalrelid::text) FROM pg_dist_partition q
                                     WHERE q.colocationid = p.colocationid AND q.logicalrelid::text = ANY ($1)) AS line
       FROM pg_dist_partition p WHERE p.logicalrelid::text = ANY ($1)
     UNION ALL
     SELECT s.logicalrelid::text || ' shard ' || coalesce(s.shardminvalue || '..' || s.shardmaxvalue, 'all') || ' on port ' || n.nodeport
       FROM pg_dist_shard s JOIN pg_dist_placement pl ON pl.shardid = s.shardid JOIN pg_dist_node n ON n.groupid = pl.groupid
      WHERE s.logicalrelid::text = ANY ($1)`,
    [tables],
  );
  // Ports differ between databases only if the nodes do: they are the same three servers.
  return rows.map((r) => r.line.replace(/port (\d+)/, (_, p: string) => `node ${ports.indexOf(Number(p))}`));
}

/** The rows of each shard, read on each node that holds a placement of it (a reference table's on every node), by the shard's hash range. */
async function shardRows(db: CitusDatabase, tables: string[]): Promise<string[]> {
  const pools = [db.coordinator, ...db.workers];
  const { rows: shards } = await db.coordinator.query<{ t: string; shard: string; range: string; port: number }>(
    `SELECT s.logicalrelid::text AS t, shard_name(s.logicalrelid, s.shardid) AS shard, coalesce(s.shardminvalue || '..' || s.shardmaxvalue, 'all') AS range, n.nodeport AS port
       FROM pg_dist_shard s JOIN pg_dist_placement pl ON pl.shardid = s.shardid JOIN pg_dist_node n ON n.groupid = pl.groupid
      WHERE s.logicalrelid::text = ANY ($1)`,
    [tables],
  );
  const lines: string[] = [];
  for (const s of shards) {
    const node = pools[db.ports.indexOf(s.port)];
    const { rows } = await node.query<{ n: string; h: string }>(`SELECT count(*) AS n, coalesce(sum(hashtext(t::text)), 0) AS h FROM ${s.shard} t`);
    lines.push(`${s.t} shard ${s.range} on node ${db.ports.indexOf(s.port)}: ${rows[0].n} rows, hash ${rows[0].h}`);
  }
  return lines;
}

/** pg_dump of one node with its shards shown, shard ids and the database's own name aside; the kept tables (and their shards) left out. */
function definitions(url: string, kept: string[]): string[] {
  const run = spawnSync('/usr/lib/postgresql/15/bin/pg_dump', ['--schema-only', '--no-sync', '-d', url], {
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    env: { ...process.env, PGOPTIONS: '-c citus.show_shards_for_app_name_prefixes=* -c citus.enable_manual_changes_to_shards=on' },
  });
  if (run.status !== 0) throw new Error(`pg_dump failed: ${run.stderr}`);
  const keptName = new RegExp(`\\b(${kept.join('|') || '(?!)'})(_\\d+)?\\b`);
  const out: string[] = [];
  for (const block of run.stdout.split(/\n--\n-- (?=Name: )/).slice(1)) {
    if (keptName.test(block)) continue;
    const body = block
      .split('\n')
      .filter(
        (l) =>
          l !== '--' &&
          l.trim() !== '' &&
          !l.startsWith('SET ') &&
          !l.startsWith('SELECT pg_catalog.set_config') &&
          // The dump's trailer (on whichever object comes last), and the random key of its \restrict guard.
          !l.startsWith('-- PostgreSQL database dump') &&
          !/^\\(un)?restrict /.test(l),
      )
      .join('\n')
      .replace(/_\d{6,}\b/g, '_<shard>')
      .trim();
    if (/shadowcut_history|IS 'shadowcut: /.test(body)) continue;
    out.push(body);
  }
  return out.sort();
}
