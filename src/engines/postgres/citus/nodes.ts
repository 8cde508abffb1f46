import type pg from 'pg';
import { CLOSING, ignoreFailure, UserError } from '../../../core/engine/errors.js';
import { redactUrl } from '../../../core/engine/connect/secrets.js';
import { openEnginePool } from '../server/connect.js';
import type { PgTarget } from '../server/target.js';
import type { CitusNode } from '../schema/plan.js';

/** One node of a Citus cluster as the run reaches it: where, and a pool of its own (pinned as the coordinator's). */
export interface NodeConnection {
  group: number;
  target: PgTarget;
  pool: pg.Pool;
}

/**
 * The nodes that hold a distributed table's shards, reached with the coordinator URL's own user,
 * password and TLS settings at the host and port Citus's `pg_dist_node` gives (Citus itself needs the
 * same roles on every node). Opened once per engine, closed with it.
 */
export class CitusNodes {
  private readonly open = new Map<number, Promise<NodeConnection>>();

  constructor(private readonly coordinator: PgTarget) {}

  node(node: Pick<CitusNode, 'group' | 'host' | 'port'>): Promise<NodeConnection> {
    let connection = this.open.get(node.group);
    if (!connection) {
      const target = nodeTarget(this.coordinator, node);
      connection = openEnginePool([target]).then(
        ({ pool }) => ({ group: node.group, target, pool }),
        (error: Error) => {
          this.open.delete(node.group);
          throw new UserError(
            `cannot connect to the Citus node ${node.host}:${node.port} (group ${node.group}), which holds shards of the table: ${error.message}`,
          );
        },
      );
      this.open.set(node.group, connection);
    }
    return connection;
  }

  async close(): Promise<void> {
    const nodes = [...this.open.values()];
    this.open.clear();
    for (const node of nodes) await node.then((n) => n.pool.end()).catch(ignoreFailure(CLOSING));
  }
}

/** The coordinator's target, pointed at another node. */
function nodeTarget(coordinator: PgTarget, node: Pick<CitusNode, 'host' | 'port'>): PgTarget {
  const point = (text: string) => {
    const u = new URL(text);
    u.hostname = node.host;
    u.port = String(node.port);
    u.searchParams.delete('host');
    u.searchParams.delete('port');
    return u.toString();
  };
  return { url: redactUrl(point(coordinator.url)), connectionString: point(coordinator.connectionString), ssl: coordinator.ssl };
}
