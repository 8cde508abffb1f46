import type pg from 'pg';
import type { Plan } from '../../../core/engine/types.js';
import { dropStream } from '../capture/logical/source.js';
import { buildReversePlan } from '../schema/reverse-plan.js';
import type { CitusDetail, PgDetail } from '../schema/plan.js';
import { citusDetail } from './detail.js';
import type { CitusNodes } from './nodes.js';
import { ensureNodeStream } from './stream.js';

/**
 * A revert window over a distributed table (../README.md "The way back"): on one server the old
 * table follows the new one by triggers on the shadow, but a trigger on a distributed table fires on
 * each shard's node, where no log of the coordinator's is at hand. So the way back follows the new
 * table as the forward run followed the old one, by logical decoding on every node, with streams of
 * its own: a publication over the shadow's shards on each node and a slot made before the swap, so
 * every change from the swap's instant on is in it (the forward applies into the shadow before the
 * swap come too, harmlessly: an apply copies a key's row as it is). The publication names the shards
 * by their relation, which the swap renames without changing.
 */
export function reverseStream(d: Pick<PgDetail, 'slot' | 'publication'>): { slot: string; publication: string } {
  return { slot: `${d.slot}_r`, publication: `${d.publication}_r` };
}

/** Before the swap: the way back's publication and slot on every node that holds the shadow's shards. Idempotent. */
export async function installReverseStreams(pool: pg.Pool, nodes: CitusNodes, d: PgDetail): Promise<void> {
  const shadow = await citusDetail(pool, d.schema, d.shadow);
  const names = { ...d, ...reverseStream(d) };
  for (const node of shadow.nodes) await ensureNodeStream(await nodes.node(node), names, node);
}

/** The way back's streams, gone: no window follows (the run did not cut over, or ended without one). */
export async function dropReverseStreams(nodes: CitusNodes, citus: CitusDetail, d: PgDetail): Promise<void> {
  const { slot, publication } = reverseStream(d);
  for (const node of citus.nodes) await dropStream((await nodes.node(node)).pool, slot, publication);
}

/** The PostgreSQL way back (the new table as the original, the old one as its shadow), placed where the new table's shards are and followed by the streams made before the swap. */
export async function reverseCitusPlan(pool: pg.Pool, forward: Plan<PgDetail>): Promise<Plan<PgDetail>> {
  const plan = await buildReversePlan(pool, forward);
  const citus = await citusDetail(pool, plan.detail.schema, plan.detail.name);
  return { ...plan, detail: { ...plan.detail, ...reverseStream(forward.detail), citus } };
}
