import type { Probes } from '../../../core/engine/types.js';
import { describeError } from '../../../core/engine/errors.js';
import type { CitusNode } from '../schema/plan.js';
import type { CitusNodes } from './nodes.js';

type LagReading = Awaited<ReturnType<Probes['replicaLag']>>[number];

/**
 * The lag of every standby of every node that holds the table's shards, as each node sees it
 * (`pg_stat_replication.replay_lag`, the time from a WAL record's flush on the node to its replay on
 * the standby): the copy writes on the nodes, so it is their standbys it may leave behind, and the
 * coordinator's `--replica` heartbeat cannot see them. Logical walsenders (the run's own slots, a
 * shard move's) are no standbys. A standby that has replayed everything has no lag to report (NULL):
 * none. A node that cannot be asked reads as unmeasured, which holds the copy back.
 */
export async function nodeStandbyLag(nodes: CitusNodes, placed: CitusNode[]): Promise<LagReading[]> {
  const readings: LagReading[] = [];
  for (const node of placed) {
    const where = `${node.host}:${node.port}`;
    try {
      const { pool } = await nodes.node(node);
      const { rows } = await pool.query(
        `SELECT r.application_name AS name, coalesce(r.client_addr::text, 'local') AS addr,
                coalesce(extract(epoch FROM r.replay_lag) * 1000, 0) AS ms
           FROM pg_catalog.pg_stat_replication r
          WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s WHERE s.active_pid = r.pid AND s.slot_type = 'logical')`,
      );
      for (const r of rows as { name: string; addr: string; ms: string }[]) {
        readings.push({ replica: `standby ${r.name}@${r.addr} of the Citus node ${where}`, lagMs: Math.round(Number(r.ms)) });
      }
    } catch (error) {
      readings.push({ replica: `the Citus node ${where}`, lagMs: null, error: describeError(error) });
    }
  }
  return readings;
}
