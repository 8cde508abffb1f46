import type pg from 'pg';
import type { MigrationRequest, Plan, TablePlacement } from '../../../core/engine/types.js';
import { describeCapture } from '../../../core/engine/capture/capture-choice.js';
import { buildPlan } from '../prepare/build-plan.js';
import type { PgDetail } from '../schema/plan.js';
import { parseTableName } from '../server/sql.js';
import { citusDetail } from './detail.js';

/**
 * A hash-distributed table's plan: the plan of its shell on the coordinator (which carries the whole
 * definition), with where its shards are, its size summed over them, and the change stream that
 * follows them on their nodes (the coordinator's own WAL never sees their changes).
 */
export async function planCitus(
  pool: pg.Pool,
  request: MigrationRequest,
  placement: Extract<TablePlacement, { kind: 'distributed' }>,
): Promise<Plan<PgDetail>> {
  const plan = await buildPlan(pool, { ...request, capture: 'stream' });
  const { schema, name } = parseTableName(request.table);
  const citus = await citusDetail(pool, schema, name);
  const capture = {
    kind: 'stream' as const,
    why:
      citus.column === null
        ? `logical decoding on the node of one of its placements (group ${citus.nodes[0]?.group})`
        : `logical decoding on the ${citus.nodes.length} node(s) that hold its shards`,
  };
  const streamLine = describeCapture(plan.capture!);
  return {
    ...plan,
    estimatedRows: placement.size.rows,
    capture,
    summary: [
      ...plan.summary.map((line) => (line === streamLine ? describeCapture(capture) : line)),
      citus.column === null
        ? `a reference table (1 shard on ${placement.nodes} node(s)): the new table is a reference table too, the copy and the checksums run on the nodes, ` +
          'the change stream follows one placement (each takes every write); one distributed transaction swaps every placement'
        : `distributed by ${citus.column} (${placement.shards} shards on ${placement.nodes} node(s)): the new table is distributed beside it, ` +
          'and the copy, the change stream and the checksums run on the nodes, shard by shard; one distributed transaction swaps every shard',
    ],
    detail: { ...plan.detail, citus },
  };
}
