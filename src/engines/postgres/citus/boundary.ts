import type pg from 'pg';
import type { KeysetSql } from '../../../core/engine/keyset.js';
import type { Key } from '../../../core/engine/types.js';
import { ident } from '../server/sql.js';
import type { CitusNode } from '../schema/plan.js';
import type { CitusNodes } from './nodes.js';

/**
 * The copy's next chunk boundary for a distributed table, asked of the nodes. Asked of the table
 * through the coordinator, Citus has every shard send its first n keys there to find the n-th
 * (32 shards: 32n keys over the network for one boundary, most of a chunk's time). Instead each
 * node finds the n-th key of its own shards together, merging their key indexes (a Merge Append that
 * reads about n index entries), and the boundary is the least of the nodes' answers. The node that
 * gave it holds n keys up to it and every other node at most n, so a chunk holds between n and
 * n x nodes rows whatever the spread of the keys (hashed evenly, or a few tenants' ranges), never
 * fewer: the chunk-time sizer, which sizes by the rows a chunk held, then settles on its time. A node
 * with fewer than n keys left gives none; when none gives one, fewer than n x nodes rows remain (null:
 * the last chunk). A boundary only sizes a chunk; the chunks cover every key once whatever it is.
 */
export class ShardBoundary {
  constructor(
    private readonly nodes: CitusNodes,
    private readonly placed: CitusNode[],
    private readonly keys: KeysetSql,
    /** The table, qualified, through the coordinator: where the nodes' answers are ordered. */
    private readonly table: string,
  ) {}

  async next(coordinator: pg.Pool, after: Key | null, rows: number): Promise<Key | null> {
    const n = Math.max(1, Math.round(rows));
    const candidates = (await Promise.all(this.placed.map((node) => this.nthOn(node, after, n)))).filter((k): k is Key => k !== null);
    if (candidates.length <= 1) return candidates[0] ?? null;
    // The server orders the keys, by their types and collations. A candidate deleted meanwhile drops
    // out, which can only make the chunk larger, up to the bound of the next one.
    const within = this.keys.keyIn(candidates);
    const { rows: least } = await coordinator.query({
      text: `SELECT ${this.columns()} FROM ${this.table} WHERE ${within.sql} ORDER BY ${this.keys.orderBy()} LIMIT 1`,
      values: within.params,
      rowMode: 'array',
    });
    return (least[0] as Key | undefined) ?? candidates[0];
  }

  /** The n-th key after `after` over the node's shards together, in one statement; null when they hold fewer. */
  private async nthOn(node: CitusNode, after: Key | null, n: number): Promise<Key | null> {
    if (node.shards.length === 0) return null;
    const { pool } = await this.nodes.node(node);
    const where = this.keys.range({ after, upTo: null });
    const cols = this.columns();
    const order = this.keys.orderBy();
    // Each shard's branch is limited too: that is what lets the server merge their indexes in order
    // instead of sorting every key after `after`.
    const perShard = node.shards.map((shard) => `(SELECT ${cols} FROM ${shard} WHERE ${where.sql} ORDER BY ${order} LIMIT ${n})`);
    const { rows } = await pool.query({
      text: `SELECT ${cols} FROM (${perShard.join(' UNION ALL ')}) AS s ORDER BY ${order} OFFSET ${n - 1} LIMIT 1`,
      values: where.params,
      rowMode: 'array',
    });
    return (rows[0] as Key | undefined) ?? null;
  }

  private columns(): string {
    return this.keys.columns.map(ident).join(', ');
  }
}
