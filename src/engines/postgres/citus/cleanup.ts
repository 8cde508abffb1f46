import type pg from 'pg';
import { dropStream } from '../capture/logical/source.js';
import type { CitusDetail } from '../schema/plan.js';
import { helperNames, slotOn } from '../server/helper-names.js';
import { citusDetail } from './detail.js';
import type { CitusNodes } from './nodes.js';
import { reverseStream } from './revert.js';
import { failedAs } from '../../../core/engine/errors.js';

/**
 * What a dead run left on the nodes of a distributed table: each node's slot (which keeps that
 * node's WAL until its disk fills) and publication. The nodes are the checkpoint's, else the ones
 * that hold the table's shards now (a run killed before its first checkpoint). `drop` removes them.
 */
export async function nodeLeftovers(
  pool: pg.Pool,
  nodes: CitusNodes,
  schema: string,
  name: string,
  saved: CitusDetail | undefined,
): Promise<{ found: string[]; drop: () => Promise<void> }> {
  const { slot: stream, publication } = helperNames(schema, name);
  const slot = await slotOn(pool, stream);
  const placed =
    saved ??
    (await citusDetail(pool, schema, name).catch(failedAs(undefined, 'the table is no longer distributed (or gone): only the coordinator is cleaned')));
  const found: string[] = [];
  const drops: { pool: pg.Pool; slot: string; publication: string }[] = [];
  for (const node of placed?.nodes ?? []) {
    const { pool: nodePool } = await nodes.node(node);
    // The run's streams, and a revert window's way back (revert.ts).
    for (const names of [{ slot, publication }, reverseStream({ slot, publication })]) {
      const { rows } = await nodePool.query(
        `SELECT (SELECT pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) FROM pg_replication_slots WHERE slot_name = $1) AS retained,
                EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS slot,
                EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $2) AS publication`,
        [names.slot, names.publication],
      );
      const r = rows[0] as { retained: string | null; slot: string; publication: string };
      const where = `on the Citus node ${node.host}:${node.port}`;
      if (r.slot === 't') found.push(`replication slot ${names.slot} ${where} (retaining ${r.retained ?? 'no'} of WAL)`);
      if (r.publication === 't') found.push(`publication ${names.publication} ${where}`);
      if (r.slot === 't' || r.publication === 't') drops.push({ pool: nodePool, ...names });
    }
  }
  return {
    found,
    drop: async () => {
      for (const d of drops) await dropStream(d.pool, d.slot, d.publication);
    },
  };
}
