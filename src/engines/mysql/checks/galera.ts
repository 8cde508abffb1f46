import type { RowDataPacket } from 'mysql2/promise';
import { verdict, type Check } from '../../../core/check.js';
import { UserError } from '../../../core/errors.js';
import { connectOne } from '../server/connect.js';
import { clusterMembers, galeraNode, galeraOsuRefusal, type GaleraMember } from '../server/galera.js';
import { MULTI_PRIMARY_COPY_REFUSAL, multiPrimaryMember } from '../server/group-replication.js';
import type { MysqlCheckContext } from './context.js';

/**
 * Galera (issue 34): the copy path runs there with its Galera parts (`cutover/galera-gate.ts`, and
 * the README's "A copy path for Galera"), and only where they hold: MariaDB under TOI, changes read
 * from this node's binlog with every node's writes in it, one table with no other table's keys on it
 * (the cut-over's duties the gate has no place for yet), every node reachable and Synced. Anything
 * else is refused before anything is made, in one line.
 */
export const galera: Check<MysqlCheckContext> = {
  name: 'galera',
  async run({ pool, plan, target }) {
    const node = await galeraNode(pool);
    if (node === null) return verdict('galera', true, 'not a Galera node', '');
    const refusal = galeraOsuRefusal(node) ?? (await copyRefusal({ pool, plan, target }));
    return verdict('galera', refusal === null, 'Galera cluster: every node is held by the gate at the verification and the cut-over', refusal ?? '');
  },
};

async function copyRefusal({ pool, plan, target }: Pick<MysqlCheckContext, 'pool' | 'plan' | 'target'>): Promise<string | null> {
  const t = `${plan.database}.${plan.table}`;
  const [[server]] = await pool.query<RowDataPacket[]>('SELECT VERSION() AS v, @@log_bin AS bin, @@binlog_format AS f, @@log_slave_updates AS lsu');
  if (!/mariadb/i.test(String(server.v))) return 'Galera cluster on MySQL (Percona XtraDB Cluster): the copy path is supported on MariaDB Galera only';
  if (plan.log !== undefined || Number(server.bin) !== 1 || Number(server.lsu) !== 1 || String(server.f) !== 'ROW') {
    return (
      "Galera cluster: the copy path reads changes from the binlog of the node it connects to, which must hold every node's writes " +
      '(log_bin, binlog_format=ROW, log_slave_updates=ON); a trigger log cannot order writes made on other nodes (docs/requirements.md, Galera)'
    );
  }
  if (plan.set?.length) return 'Galera cluster: several tables in one cut-over are not supported there yet; migrate them one at a time';
  if (plan.children.length) {
    return `Galera cluster: ${t} is referenced by foreign keys of other tables, which its cut-over there cannot re-point yet; use a blocking ALTER in a maintenance window`;
  }
  let members: GaleraMember[];
  try {
    members = await clusterMembers(target, pool);
  } catch (error) {
    if (error instanceof UserError) return error.message;
    throw error;
  }
  for (const member of members) {
    const channel = await replicationInto(member);
    if (channel) {
      return `Galera cluster: node ${member.name} replicates from an outside primary (${channel}); that channel's writes fire no trigger and would pass the gate at the cut-over: run when it is stopped`;
    }
  }
  return null;
}

/**
 * A replication channel running into a node, or null: its applier writes rows without firing
 * triggers (unless slave_run_triggers_for_rbr says otherwise), so the gate cannot hold it. Without
 * the privilege to read the status (REPLICATION CLIENT, SLAVE MONITOR) there is nothing to see.
 */
async function replicationInto(member: GaleraMember): Promise<string | null> {
  const conn = await connectOne(member.target);
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SHOW ALL SLAVES STATUS').catch(() => [[] as RowDataPacket[]]);
    const running = rows.find((r) => r.Slave_SQL_Running === 'Yes');
    if (!running) return null;
    const [[triggers]] = await conn.query<RowDataPacket[]>('SELECT @@slave_run_triggers_for_rbr AS t');
    if (String(triggers.t).toUpperCase() !== 'NO') return null;
    return `channel '${String(running.Connection_name ?? '')}' from ${String(running.Master_Host)}:${String(running.Master_Port)}`;
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

/**
 * MySQL Group Replication in multi-primary mode, the same class as Galera: the other members write
 * the table past the cut-over's node-local lock. Single-primary mode takes writes on the primary only,
 * where shadowcut runs (a secondary is read-only and refuses the shadow itself).
 */
export const groupReplication: Check<MysqlCheckContext> = {
  name: 'group replication',
  async run({ pool }) {
    const multi = await multiPrimaryMember(pool);
    return verdict('group replication', !multi, 'not a multi-primary group member', MULTI_PRIMARY_COPY_REFUSAL);
  },
};
