import type { Pool, RowDataPacket } from 'mysql2/promise';
import { describeError, CLOSING, ignoreFailure } from '../../../core/engine/errors.js';
import { createPool } from '../server/connect.js';
import type { GaleraMember } from './cluster.js';

/** Flow control's own default (`gcs.fc_limit`), when a node's provider options do not say. */
const DEFAULT_FC_LIMIT = 16;
/** The share of the time since the last look that flow control may have paused the cluster before the copy holds back. */
const PAUSED_SHARE = 0.01;
const NODE_TIMEOUT_MS = 2000;

interface Node {
  name: string;
  pool: Pool;
  fcLimit: number | null;
  paused: { ns: bigint; at: bigint } | null;
}

/**
 * A Galera cluster's own pressure, read on every node: a node that cannot apply the
 * writesets as fast as they come queues them (`wsrep_local_recv_queue`), and at its flow control
 * limit makes the whole cluster stop committing (`wsrep_flow_control_paused_ns` grows), the
 * application's writes with ours. The copy, the biggest writer, holds back from half the limit, and
 * while flow control paused the cluster for more than 1% of the time since the last look. A node that
 * cannot be read holds the copy back too (fail closed), as an unmeasurable replica does.
 */
export function galeraPressure(members: GaleraMember[]): { pressure(): Promise<string | null>; close(): Promise<void> } {
  const nodes: Node[] = members.map((m) => ({ name: m.name, pool: createPool(m.target, 1), fcLimit: null, paused: null }));
  return {
    async pressure() {
      for (const node of nodes) {
        const why = await nodePressure(node).catch((error: unknown) => `Galera node ${node.name} cannot be measured (${describeError(error)})`);
        if (why) return why;
      }
      return null;
    },
    async close() {
      await Promise.all(nodes.map((n) => n.pool.end().catch(ignoreFailure(CLOSING))));
    },
  };
}

async function nodePressure(node: Node): Promise<string | null> {
  if (node.fcLimit === null) {
    const [[row]] = await node.pool.query<RowDataPacket[]>({ sql: 'SELECT @@wsrep_provider_options AS o', timeout: NODE_TIMEOUT_MS });
    const limit = /gcs\.fc_limit\s*=\s*(\d+)/.exec(String(row.o));
    node.fcLimit = limit ? Number(limit[1]) : DEFAULT_FC_LIMIT;
  }
  const [rows] = await node.pool.query<RowDataPacket[]>({
    sql: "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_recv_queue', 'wsrep_flow_control_paused_ns')",
    timeout: NODE_TIMEOUT_MS,
  });
  const at = process.hrtime.bigint();
  const value = (name: string) => String(rows.find((r) => String(r.Variable_name).toLowerCase() === name)?.Value ?? '0');
  const queue = Number(value('wsrep_local_recv_queue'));
  const pausedNs = BigInt(value('wsrep_flow_control_paused_ns'));
  const before = node.paused;
  node.paused = { ns: pausedNs, at };
  const threshold = Math.max(1, Math.floor(node.fcLimit / 2));
  if (queue >= threshold) return `Galera node ${node.name}: ${queue} writesets waiting to be applied (flow control stops the cluster at ${node.fcLimit})`;
  if (before && at > before.at) {
    const share = Number(pausedNs - before.ns) / Number(at - before.at);
    if (share > PAUSED_SHARE) return `Galera flow control paused the cluster ${Math.round(share * 100)}% of the time (node ${node.name})`;
  }
  return null;
}
