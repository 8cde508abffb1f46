import type { Connection, RowDataPacket } from 'mysql2/promise';
import { lookup } from 'node:dns/promises';
import { UserError, failedAs } from '../../../core/engine/errors.js';
import { addressIdentityStream, type MysqlTarget } from '../server/target.js';
import { connectOne } from '../server/connect.js';

/** A pool or one connection: the variables read are the session's, which a pool's sessions share. */
type Queryable = Pick<Connection, 'query'>;

/**
 * The copy's and a batch's chunk time on a Galera cluster unless told otherwise: a chunk's writeset
 * is applied on every other node in the cluster's commit order, and a writer there that commits after
 * it waits until it is applied. Measured in bench/ (--servers galera, 100k-row wide table under 200
 * writes/s on the other nodes): 100 ms chunks let writers wait up to 118-188 ms (p99 81-84 ms), 50 ms
 * up to 83-91 ms, 25 ms up to 70-80 ms (p99 35-40 ms), the wall time within the runs' spread.
 */
export const GALERA_CHUNK_TIME_MS = 25;

/** What the in-place path says on Galera under TOI. */
export const GALERA_IN_PLACE =
  'Galera cluster (wsrep_on=ON, wsrep_OSU_method=TOI): every part is metadata only, which total order isolation runs on every node in milliseconds';

/** A node of the cluster, as shadowcut reaches it: its name (`wsrep_node_name`) and how to connect to it. */
export interface GaleraMember {
  name: string;
  target: MysqlTarget;
}

/**
 * Every node of the cluster, each reached at the client address it announces
 * (`wsrep_incoming_addresses`) with the credentials and TLS of shadowcut's own URL. The gate
 * (`galera/gate.ts`) holds writers on each node with a session there: a node it cannot reach
 * would let its writers through, so a cluster of which any node is unreachable, not Synced, or of
 * another cluster, is refused in one line. The connected node comes first.
 */
export async function clusterMembers(target: MysqlTarget, pool: Queryable): Promise<GaleraMember[]> {
  const status = await statusOf(pool);
  const addresses = status.wsrep_incoming_addresses
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const size = Number(status.wsrep_cluster_size);
  if (addresses.length !== size || addresses.some((a) => !/^[^:]+:\d+$/.test(a) && !/^\[[^\]]+\]:\d+$/.test(a))) {
    throw new UserError(
      `Galera: the cluster has ${size} node(s) but announces the client addresses "${status.wsrep_incoming_addresses}"; shadowcut holds writers at the cut-over with a session on every node, so each must announce host:port (wsrep_node_incoming_address)`,
    );
  }
  const members: GaleraMember[] = [];
  const seen = new Set<string>();
  for (const address of addresses) {
    const split = address.lastIndexOf(':');
    const host = address.slice(0, split).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(split + 1));
    const config = { ...target.config, host, port, socketPath: undefined, stream: target.config.stream ? addressIdentityStream(host, port) : undefined };
    const member: MysqlTarget = { ...target, config: { ...config, connectTimeout: 5_000 } };
    const conn = await connectOne(member).catch((error: Error) => {
      throw new UserError(`Galera: node ${address} cannot be reached (${error.message}); shadowcut must hold writers on every node at the cut-over`);
    });
    try {
      const [[row]] = await conn.query<RowDataPacket[]>('SELECT @@wsrep_node_name AS name');
      const own = await statusOf(conn);
      const name = String(row.name);
      if (own.wsrep_cluster_state_uuid !== status.wsrep_cluster_state_uuid) throw new UserError(`Galera: ${address} belongs to another cluster`);
      if (own.wsrep_local_state_comment !== 'Synced') {
        throw new UserError(`Galera: node ${name} (${address}) is ${own.wsrep_local_state_comment}, not Synced; run when every node is Synced`);
      }
      if (seen.has(name)) throw new UserError(`Galera: two nodes are named ${name} (wsrep_node_name): the gate keys writers by it`);
      if (name === '*' || name.length > 255) throw new UserError(`Galera: a node is named "${name}" (wsrep_node_name), which the gate cannot key writers by`);
      seen.add(name);
      members.push({ name, target: member });
    } finally {
      await conn.end().catch(() => conn.destroy());
    }
  }
  const [[self]] = await pool.query<RowDataPacket[]>('SELECT @@wsrep_node_name AS name');
  const index = members.findIndex((m) => m.name === String(self.name));
  if (index < 0)
    throw new UserError(`Galera: the connected node ${String(self.name)} is not among the addresses it announces (${status.wsrep_incoming_addresses})`);
  await refuseProxy(target, members[index], addresses[index]);
  return [members[index], ...members.filter((_, i) => i !== index)];
}

/**
 * The binlog reader, the checksum's readers and the catch-up must all be on one node: behind a proxy
 * (HAProxy, MaxScale, a virtual IP, DNS over several nodes) one session's binlog position would be
 * compared with another node's binlog. So the URL must name a node as it announces itself (or its
 * socket), and a few sessions opened through it must all land on that node.
 */
async function refuseProxy(target: MysqlTarget, self: GaleraMember, announced: string): Promise<void> {
  const why = `connect shadowcut to a node directly (one of the addresses the nodes announce), not through a proxy or a shared address`;
  if (!target.config.socketPath) {
    const { host, port } = target.config;
    const split = announced.lastIndexOf(':');
    const [ours, theirs] = await Promise.all([addressesOf(String(host)), addressesOf(announced.slice(0, split).replace(/^\[|\]$/g, ''))]);
    if (Number(port ?? 3306) !== Number(announced.slice(split + 1)) || !ours.some((a) => theirs.includes(a))) {
      throw new UserError(`Galera: ${String(host)}:${String(port)} is not the address node ${self.name} announces (${announced}); ${why}`);
    }
  }
  for (let i = 0; i < 3; i++) {
    const conn = await connectOne(target);
    try {
      const [[row]] = await conn.query<RowDataPacket[]>('SELECT @@wsrep_node_name AS name');
      if (String(row.name) !== self.name) throw new UserError(`Galera: sessions through the URL reach both ${self.name} and ${String(row.name)}; ${why}`);
    } finally {
      await conn.end().catch(() => conn.destroy());
    }
  }
}

async function addressesOf(host: string): Promise<string[]> {
  const found = await lookup(host, { all: true }).catch(failedAs([{ address: host }], 'a name that does not resolve here is compared as written'));
  return found.map((a) => a.address);
}

async function statusOf(db: Queryable): Promise<Record<string, string>> {
  const [rows] = await db.query<RowDataPacket[]>(
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_incoming_addresses', 'wsrep_cluster_size', 'wsrep_cluster_state_uuid', 'wsrep_local_state_comment')",
  );
  return Object.fromEntries(rows.map((r) => [String(r.Variable_name).toLowerCase(), String(r.Value)]));
}
