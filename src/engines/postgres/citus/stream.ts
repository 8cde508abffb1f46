import type { ChangeSink, ChangeSource, ChangeStream, Position, Reference } from '../../../core/engine/types.js';
import { UserError, ignoreFailure } from '../../../core/engine/errors.js';
import { ident, isTrue, qualified } from '../server/sql.js';
import { lsnValue } from '../server/lsn.js';
import { SlotHub } from '../capture/logical/hub.js';
import { dropStream } from '../capture/logical/source.js';
import { VisibilityGate } from '../capture/logical/visibility.js';
import type { Partition } from '../schema/partitions.js';
import type { CitusNode, PgDetail } from '../schema/plan.js';
import type { CitusNodes, NodeConnection } from './nodes.js';
import { replicasSettled } from './view.js';

/**
 * A distributed table's changes happen in its shards, on the nodes that hold them: the coordinator's
 * own WAL never sees them. So each node gets a publication over its shards of the table and a slot
 * of the run's own (made with Citus's DDL propagation off: they belong to that node alone), read by
 * the same reader as a table on one server (capture/logical/hub.ts), its shards followed as one
 * table's partitions are. A position is every node's LSN (`g<group>`), each moving on its own; the
 * runner's buffer takes keys from all of them in the order they arrive, and an acknowledgement
 * confirms each node's slot to its own part.
 */
export class CitusSource implements ChangeSource {
  readonly pinsServerLog = true;
  /** Each node's visibility gate, noted by its stream and awaited before an apply reads the table. */
  readonly gates = new Map<number, VisibilityGate>();
  private readonly hubs = new Map<number, SlotHub>();
  private readonly opened = new Set<ChangeStream>();

  constructor(
    private readonly nodes: CitusNodes,
    private readonly d: PgDetail & { citus: NonNullable<PgDetail['citus']> },
  ) {}

  /**
   * Every node's gate: an apply through the coordinator reads the shards, which each node shows its
   * own commits in. A reference table's replicas are not followed: what the followed placement
   * shows may still be prepared there, and is waited for (view.ts).
   */
  async settle(): Promise<void> {
    await Promise.all([...this.gates.values()].map((gate) => gate.settle()));
    if (this.d.citus.replicas?.length) await replicasSettled(this.nodes, [...this.d.citus.nodes, ...this.d.citus.replicas], REPLICA_WAIT_MS);
  }

  async open(sink: ChangeSink, from: Position | undefined): Promise<ChangeStream> {
    const composite = new CompositeSink(sink, this.d.citus.nodes, from);
    const streams: { group: number; stream: ChangeStream }[] = [];
    try {
      for (const node of this.d.citus.nodes) {
        const connection = await this.nodes.node(node);
        await ensureNodeStream(connection, this.d, node);
        let gate = this.gates.get(node.group);
        if (!gate) this.gates.set(node.group, (gate = new VisibilityGate(connection.pool)));
        let hub = this.hubs.get(node.group);
        if (!hub) this.hubs.set(node.group, (hub = new SlotHub(connection.target, connection.pool, this.d.slot, this.d.publication, node.shards, 1)));
        const own = from?.[key(node.group)];
        const stream = await hub.subscribe(
          await followed(connection, this.d, node),
          composite.part(node.group),
          gate,
          own === undefined ? undefined : { lsn: own },
        );
        streams.push({ group: node.group, stream });
        composite.started(node.group, String(stream.start.lsn));
      }
      // A write the followed placement committed before its slot began, still prepared on a replica,
      // would be read by the first chunk there without it and never come through the stream.
      await this.settle();
    } catch (error) {
      await Promise.all(streams.map(({ stream }) => stream.stop()));
      throw error;
    }
    const stream: ChangeStream = {
      start: composite.startPosition(),
      // Each node's own fence (capture/logical/stream.ts): a session of the coordinator, locked or not, cannot fence a node's WAL.
      head: async () => {
        const heads = await Promise.all(streams.map(async ({ group, stream: s }) => [key(group), String((await s.head()).lsn)] as const));
        return Object.fromEntries(heads);
      },
      acknowledge: async (position) => {
        await Promise.all(
          streams.map(async ({ group, stream: s }) => {
            if (position[key(group)] !== undefined) await s.acknowledge({ lsn: position[key(group)] });
          }),
        );
      },
      stop: async () => {
        this.opened.delete(stream);
        await Promise.all(streams.map(({ stream: s }) => s.stop()));
      },
    };
    this.opened.add(stream);
    return stream;
  }

  async stopOpened(): Promise<void> {
    const streams = [...this.opened];
    this.opened.clear();
    await Promise.all(streams.map((s) => s.stop()));
  }

  /** Every node's slot and publication: a slot left behind holds that node's WAL until its disk fills. */
  async cleanup(): Promise<void> {
    for (const node of this.d.citus.nodes) {
      const { pool } = await this.nodes.node(node);
      await dropStream(pool, this.d.slot, this.d.publication);
    }
  }

  comparePositions(a: Position, b: Position): number {
    return compareNodePositions(a, b);
  }
}

const key = (group: number) => `g${group}`;

/** How long a reference table's write may stay prepared on a replica: Citus's 2PC recovery resolves a dead coordinator's within a minute by default. */
const REPLICA_WAIT_MS = 120_000;

/**
 * Component by component: a position is ahead of another when every node's part is at least as far
 * (the buffer's "reached the target" and "moved on" are asked so); one behind anywhere is behind.
 * Parts missing on one side (a node not yet heard from) count as the start of its log.
 */
export function compareNodePositions(a: Position, b: Position): number {
  let ahead = false;
  let behind = false;
  // Only the nodes' parts: a revert window's way back starts from the core's `{ poll: 0 }`, its slots' own start.
  for (const part of new Set([...Object.keys(a), ...Object.keys(b)].filter((p) => /^g\d+$/.test(p)))) {
    const x = a[part] === undefined ? 0n : lsnValue(String(a[part]));
    const y = b[part] === undefined ? 0n : lsnValue(String(b[part]));
    if (x > y) ahead = true;
    if (x < y) behind = true;
  }
  return behind ? -1 : ahead ? 1 : 0;
}

/**
 * Turns each node's positions into the table's: the last LSN each node delivered, all together. A
 * node's keys are reported with every node's position as it stands, so an acknowledgement of what
 * was applied never passes anything a node has not delivered.
 */
class CompositeSink {
  private readonly current: Record<string, string> = {};

  constructor(
    private readonly sink: ChangeSink,
    nodes: CitusNode[],
    from: Position | undefined,
  ) {
    for (const node of nodes) this.current[key(node.group)] = from?.[key(node.group)] === undefined ? '0/0' : String(from[key(node.group)]);
  }

  started(group: number, lsn: string): void {
    if (lsnValue(this.current[key(group)]) < lsnValue(lsn)) this.current[key(group)] = lsn;
  }

  startPosition(): Position {
    return { ...this.current };
  }

  part(group: number): ChangeSink {
    const at = (position: Position) => {
      const lsn = String(position.lsn);
      if (lsnValue(lsn) > lsnValue(this.current[key(group)])) this.current[key(group)] = lsn;
      return { ...this.current };
    };
    return {
      keys: (keys, position) => this.sink.keys(keys, at(position)),
      references: (references: Reference[], position) => this.sink.references(references, at(position)),
      advance: (position) => this.sink.advance(at(position)),
      fail: (error) => this.sink.fail(error),
      hasRoom: () => this.sink.hasRoom(),
      onRoom: (callback) => this.sink.onRoom(callback),
    };
  }
}

/**
 * The node's publication and slot, made if missing: the publication first, then the slot, whose
 * start is fixed before the first row is copied (invariant 1). A publication of the name that is not
 * the migrating role's is another's, and refused (invariant 9).
 */
export async function ensureNodeStream(node: NodeConnection, d: PgDetail, shards: CitusNode): Promise<void> {
  const { rows: slot } = await node.pool.query('SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1', [d.slot]);
  if (slot.length) return;
  const client = await node.pool.connect();
  try {
    const { rows: pub } = await client.query(
      'SELECT pubowner = (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user) AS ours FROM pg_catalog.pg_publication WHERE pubname = $1',
      [d.publication],
    );
    if (pub.length && !isTrue(pub[0].ours)) {
      throw new UserError(`publication ${d.publication} on the Citus node of group ${shards.group} belongs to another role; drop it or ask its owner`);
    }
    // Made here for this node only: a worker with Citus's metadata would otherwise try to propagate it.
    await client.query('SET citus.enable_ddl_propagation = off');
    if (pub.length) await client.query(`DROP PUBLICATION ${ident(d.publication)}`);
    await client.query(`CREATE PUBLICATION ${ident(d.publication)} FOR TABLE ${shards.shards.join(', ')}`);
    await client.query(`SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')`, [d.slot]);
  } finally {
    await client.query('RESET citus.enable_ddl_propagation').catch(ignoreFailure("the setting is the session's own, and the session goes back to its pool"));
    client.release();
  }
}

/**
 * What the node's reader follows: its shards of the table as one table's partitions, so one follower
 * turns the changes of all of them into the table's keys. Relation ids and column types are the node's
 * own (a type made by CREATE TYPE has another OID on each node).
 */
async function followed(node: NodeConnection, d: PgDetail, shards: CitusNode): Promise<PgDetail> {
  const { rows } = await node.pool.query('SELECT s, to_regclass(s)::oid::text AS oid FROM unnest($1::text[]) s', [shards.shards]);
  const missing = rows.filter((r: { oid: string | null }) => r.oid === null).map((r: { s: string }) => r.s);
  if (missing.length)
    throw new UserError(`shard(s) ${missing.join(', ')} of ${qualified(d.schema, d.name)} are not on the node of group ${shards.group} (moved?); start again`);
  const oids = rows.map((r: { oid: string }) => r.oid);
  const { rows: columns } = await node.pool.query(
    `SELECT attname AS name, atttypid::text AS "typeOid", atttypmod::text AS "typeMod" FROM pg_catalog.pg_attribute
      WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
    [oids[0]],
  );
  const partitions = oids.slice(1).map((oid: string) => ({ oid }) as Partition);
  return { ...d, oid: oids[0], partitions, streamColumns: columns as PgDetail['streamColumns'] };
}
