import type { RowDataPacket } from 'mysql2/promise';
import { verdict, type Check } from '../../../core/engine/checks/check.js';
import { UserError, failedAs } from '../../../core/engine/errors.js';
import { connectOne } from '../server/connect.js';
import { clusterMembers, type GaleraMember } from '../galera/cluster.js';
import { galeraNode, galeraOsuRefusal } from '../server/galera-node.js';
import { sealedGate } from '../galera/gate.js';
import type { MysqlCheckContext } from './context.js';

/**
 * Galera: the copy path runs there with its Galera parts (`galera/gate.ts`, and
 * `galera/README.md`), and only where they hold: MariaDB under TOI, one table with
 * no other table's keys on it (the cut-over's duties the gate has no place for yet), every node
 * reachable and Synced. Changes come from this node's binlog with every node's writes in it (the
 * binlog check asks for log_slave_updates there), or from the trigger log, whose entries every node
 * numbers apart (`capture/trigger/horizon.ts`). Anything else is refused before anything is made, in
 * one line.
 */
export const galera: Check<MysqlCheckContext> = {
  name: 'galera',
  async run({ pool, plan, target, resuming }) {
    const node = await galeraNode(pool);
    if (node === null) return verdict('galera', true, 'not a Galera node', '');
    let refusal = galeraOsuRefusal(node) ?? (resuming ? await otherNode(pool, plan) : null) ?? (await copyRefusal({ pool, plan, target }));
    // Only the resume opens what a run killed between its seal and its RENAME left: refused, it says so.
    if (refusal !== null && resuming && (await sealedGate(pool, plan.database, plan.table))) {
      refusal += `; meanwhile every node's writes to ${plan.table} fail at the gate the interrupted run sealed: "shadowcut cleanup --table ${plan.table}" opens it`;
    }
    return verdict('galera', refusal === null, 'Galera cluster: every node is held by the gate at the verification and the cut-over', refusal ?? '');
  },
};

/** A run resumed on another node than the one it was made on: its binlog position and its log's InnoDB ids mean nothing here. */
async function otherNode(pool: MysqlCheckContext['pool'], plan: MysqlCheckContext['plan']): Promise<string | null> {
  if (plan.galeraNode === undefined) return null;
  const [[row]] = await pool.query<RowDataPacket[]>('SELECT @@wsrep_node_name AS name');
  if (String(row.name) === plan.galeraNode) return null;
  return (
    `Galera cluster: the interrupted run was made on node ${plan.galeraNode}, not ${String(row.name)}: its binlog position and its change log's ` +
    `table ids are that node's alone; resume it against ${plan.galeraNode}, or run "shadowcut cleanup" and start again`
  );
}

async function copyRefusal({ pool, plan, target }: Pick<MysqlCheckContext, 'pool' | 'plan' | 'target'>): Promise<string | null> {
  const t = `${plan.database}.${plan.table}`;
  const [[server]] = await pool.query<RowDataPacket[]>('SELECT VERSION() AS v');
  if (!/mariadb/i.test(String(server.v))) return 'Galera cluster on MySQL (Percona XtraDB Cluster): the copy path is supported on MariaDB Galera only';
  if (plan.set?.length) return 'Galera cluster: several tables in one cut-over are not supported there yet; migrate them one at a time';
  if (plan.children.length) {
    return `Galera cluster: ${t} is referenced by foreign keys of other tables, which its cut-over there cannot re-point yet; use a blocking ALTER in a maintenance window`;
  }
  if (plan.parentKeys?.length) {
    return `Galera cluster: ${t} has foreign keys to other tables (${plan.parentKeys.map((k) => k.name).join(', ')}), which its cut-over there cannot move to the new table yet; use a blocking ALTER in a maintenance window, or --discard-foreign-keys`;
  }
  let members: GaleraMember[];
  try {
    members = await clusterMembers(target, pool);
  } catch (error) {
    if (error instanceof UserError) return error.message;
    throw error;
  }
  const nodes: NodeFacts[] = [];
  for (const member of members) {
    const facts = await nodeFacts(member);
    if (facts.channel) {
      return `Galera cluster: node ${member.name} replicates from an outside primary (${facts.channel}); that channel's writes fire no trigger and would pass the gate at the cut-over: run when it is stopped`;
    }
    nodes.push(facts);
  }
  return plan.log === undefined ? null : sequenceClash(nodes);
}

interface NodeFacts {
  name: string;
  /** A replication channel running into the node whose applier fires no trigger, or null. */
  channel: string | null;
  /** The node's auto_increment_increment and auto_increment_offset, which its sessions start with. */
  increment: number;
  offset: number;
}

/**
 * What the node says of itself. A replication channel's applier writes rows without firing triggers
 * (unless slave_run_triggers_for_rbr says otherwise), so the gate cannot hold it; without the
 * privilege to read its status (REPLICATION CLIENT, SLAVE MONITOR) there is nothing to see.
 */
async function nodeFacts(member: GaleraMember): Promise<NodeFacts> {
  const conn = await connectOne(member.target);
  try {
    const [[vars]] = await conn.query<RowDataPacket[]>(
      'SELECT @@GLOBAL.auto_increment_increment AS step, @@GLOBAL.auto_increment_offset AS start, @@slave_run_triggers_for_rbr AS triggers',
    );
    const facts = { name: member.name, channel: null, increment: Number(vars.step), offset: Number(vars.start) };
    const [rows] = await conn
      .query<RowDataPacket[]>('SHOW ALL SLAVES STATUS')
      .catch(failedAs([[] as RowDataPacket[]], 'a node that may not list its replication channels runs none we could see'));
    const running = rows.find((r) => r.Slave_SQL_Running === 'Yes');
    if (!running || String(vars.triggers).toUpperCase() !== 'NO') return facts;
    return { ...facts, channel: `channel '${String(running.Connection_name ?? '')}' from ${String(running.Master_Host)}:${String(running.Master_Port)}` };
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

/**
 * The trigger log's entries are numbered by the node each writer is on: two nodes that hand out the
 * same values would make writers' commits fail certification against each other (the application
 * would see deadlock errors). Galera spaces them apart (wsrep_auto_increment_control, on by default).
 */
function sequenceClash(nodes: NodeFacts[]): string | null {
  const seen = new Map<number, string>();
  for (const { name, increment, offset } of nodes) {
    const clash = seen.get(offset % increment);
    if (increment !== nodes[0].increment || increment < nodes.length || clash !== undefined) {
      return (
        `Galera cluster: trigger capture numbers its log on every node, and ${clash ? `nodes ${clash} and ${name}` : `node ${name}`} would hand out the same values ` +
        `(auto_increment_increment ${increment}, auto_increment_offset ${offset}): SET GLOBAL wsrep_auto_increment_control = ON on every node, or use --capture stream`
      );
    }
    seen.set(offset % increment, name);
  }
  return null;
}
