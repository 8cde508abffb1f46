import type pg from 'pg';
import { note, verdict } from '../../../core/engine/checks/check.js';
import type { CheckResult, MigrationRequest, Plan } from '../../../core/engine/types.js';
import { ALWAYS_ROLLED_BACK, ignoreFailure } from '../../../core/engine/errors.js';
import { replicationPrivilege, streamSettings } from '../checks/logical-decoding.js';
import { inspectTable } from '../schema/inspect.js';
import type { CitusDetail, CitusPgDetail, PgDetail } from '../schema/plan.js';
import { buildShadow } from '../schema/shadow.js';
import { isTrue, qualified } from '../server/sql.js';
import type { CitusNodes } from './nodes.js';
import { reverseStream } from './revert.js';

/** The coordinator's results that judge its own change stream: a Citus table's is followed on its nodes, judged there instead. */
export const NODE_STREAM_CHECKS = ['wal_level', 'replication slot', 'wal sender', 'replication privilege'];

/**
 * What a distributed table's migration needs beyond a table's on one server: a change stream on every
 * node that holds its shards (wal_level = logical, a free slot and WAL sender, a role that may
 * replicate there), nothing left by a dead run on any node, and a new table Citus itself accepts as
 * the table's co-located twin, which is asked of Citus on a probe that is rolled back.
 */
export async function citusChecks(
  pool: pg.Pool,
  nodes: CitusNodes,
  plan: Plan<PgDetail>,
  request: MigrationRequest | null,
  resuming: boolean,
): Promise<CheckResult[]> {
  const d = plan.detail as CitusPgDetail;
  const results: CheckResult[] = [
    verdict(
      'distributed capture',
      request?.capture !== 'trigger',
      `changes followed on ${d.citus.nodes.length} node(s) by logical decoding`,
      `--capture trigger: a Citus distributed table's changes are followed on the nodes that hold its shards by logical decoding; use --capture auto or stream`,
    ),
    verdict(
      'distributed set',
      !request?.set?.length,
      'one table',
      `several tables in one cut-over are not supported yet with a Citus distributed table (${plan.table}); migrate it alone`,
    ),
    // Citus's own words: its distributed ALTER refuses the same.
    verdict(
      'distribution column',
      d.citus.column === null || !d.changedColumns.includes(d.citus.column),
      d.citus.column === null ? 'a reference table: no distribution column' : `the distribution column ${d.citus.column} is unchanged`,
      `the ALTER changes the distribution column ${d.citus.column} of ${plan.table}, which Citus refuses too ("cannot execute ALTER TABLE command involving partition column")`,
    ),
    verdict(
      'distributed partitions',
      !d.partitions?.length,
      'not partitioned',
      `${plan.table} is a partitioned Citus distributed table, which shadowcut does not migrate yet`,
    ),
  ];
  for (const node of d.citus.nodes) {
    const { pool: nodePool } = await nodes.node(node);
    const where = `the Citus node ${node.host}:${node.port} (group ${node.group})`;
    for (const r of [...(await streamSettings(nodePool)), await replicationPrivilege(nodePool)]) {
      results.push(r.ok ? r : { ...r, message: `on ${where}: ${r.message}` });
    }
    if (!resuming) {
      const left: string[] = [];
      // The run's streams, and a revert window's way back (revert.ts).
      for (const { slot, publication } of [d, reverseStream(d)]) {
        const { rows } = await nodePool.query(
          `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1) AS slot,
                  EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $2) AS publication`,
          [slot, publication],
        );
        if (isTrue(rows[0].slot)) left.push(`SELECT pg_drop_replication_slot('${slot}')`);
        if (isTrue(rows[0].publication)) left.push(`DROP PUBLICATION ${publication}`);
      }
      results.push(
        verdict(
          'no leftovers on the nodes',
          left.length === 0,
          `nothing of an earlier run on ${where}`,
          `helper objects of an earlier run exist on ${where}; if no shadowcut run is active (or resume it with --resume), remove them there: ${left.join('; ')}`,
        ),
      );
    }
  }
  // A resumed run's shadow was accepted when it was made (migration.ts checks it is still the twin),
  // and past the swap the table already has the new schema: the ALTER would meet its own columns.
  if (!resuming) results.push(await citusAccepts(pool, plan));
  return results;
}

/** `table` made the twin of the migrated one: distributed by its column in its co-location group, or a reference table as it is. */
export async function distributeLike(db: pg.Pool | pg.PoolClient, d: PgDetail, table: string, citus: CitusDetail): Promise<void> {
  if (citus.column === null) {
    await db.query(`SELECT pg_catalog.create_reference_table($1)`, [qualified(d.schema, table)]);
    return;
  }
  await db.query(`SELECT pg_catalog.create_distributed_table($1, $2, colocate_with => $3)`, [
    qualified(d.schema, table),
    citus.column,
    qualified(d.schema, d.name),
  ]);
}

/**
 * The new table, every index and constraint included, distributed beside the table in a transaction
 * that is rolled back: what Citus refuses (a unique key without the distribution column, say) is
 * refused now, not after the copy when the shadow's indexes are built. Citus takes no lock on the
 * table for it.
 */
async function citusAccepts(pool: pg.Pool, plan: Plan<PgDetail>): Promise<CheckResult> {
  const d = plan.detail as CitusPgDetail;
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const t = await inspectTable(client, d.schema, d.name);
    const probe = `${d.slot}_probe`;
    await buildShadow(client, t, plan.alter, probe, 'none', null);
    await distributeLike(client, d, probe, d.citus);
    const how = d.citus.column === null ? 'a reference table' : `distributed by ${d.citus.column}`;
    return note('distributed shape', `the new table is ${how} beside ${plan.table}, as Citus accepts it`);
  } catch (error) {
    const { message, detail } = error as { message: string; detail?: string };
    return verdict(
      'distributed shape',
      false,
      '',
      `Citus would not take the new table as ${plan.table}'s co-located twin: ${message}${detail ? ` (${detail})` : ''}`,
    );
  } finally {
    await client.query('ROLLBACK').catch(ignoreFailure(ALWAYS_ROLLED_BACK));
    client.release();
  }
}
