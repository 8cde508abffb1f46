import type { TableSize } from './sizing.js';

/**
 * Where a table's rows live. Most tables live on the server the URL names; a Citus table's live in
 * shards on several servers, and a copy through the coordinator would turn it into a local table
 * (docs/invariants.md, invariant 21). Every command that changes or reads a table whole asks this first.
 */
export interface EnginePlacement {
  placement(table: string): Promise<TablePlacement>;
}

export type TablePlacement =
  | { kind: 'local' }
  | {
      kind: 'distributed';
      /** Citus's table types: hash-distributed, a reference table (a copy on every node), a Citus local table, and the rarer ones. */
      shape: 'hash' | 'range' | 'append' | 'reference' | 'citus-local' | 'single-shard';
      /** The distribution column, where the shape has one. */
      column: string | null;
      shards: number;
      /** How many nodes hold its shards. */
      nodes: number;
      /** False when the URL names a worker, which sees the table through synced metadata. */
      onCoordinator: boolean;
      /** Summed over its shards: the shell the coordinator holds is empty. */
      size: TableSize;
    }
  /** One shard of a distributed table, seen on the node that holds it. */
  | { kind: 'shard'; of: string };
