import { UserError } from '../engine/errors.js';
import type { EnginePlacement, TablePlacement } from '../engine/ports/placement.js';
import type { EngineServer } from '../engine/ports/server.js';
import { bytes } from '../report/units.js';

/**
 * A table that lives on many servers stays one table (docs/invariants.md, invariant 21). Until a command can
 * change a distributed table where its rows are, it refuses it here, before anything is made: copied
 * through the coordinator, every shard would pour into one local table that the swap then puts in the
 * distributed table's place. `command` begins the message, as the operator typed it.
 */
export async function refuseSpreadTables(
  engine: EnginePlacement & Pick<EngineServer, 'qualify'>,
  tables: string[],
  command: string,
  /** The distributed shapes this command changes where their shards are (`migrate` and `plan`: hash-distributed tables). */
  supported: DistributedShape[] = [],
): Promise<void> {
  for (const table of tables) {
    const placement = await engine.placement(table);
    if (placement.kind === 'local' || (placement.kind === 'distributed' && supported.includes(placement.shape) && placement.onCoordinator)) continue;
    throw new UserError(spreadRefusal(engine.qualify(table), placement, command));
  }
}

type DistributedShape = Extract<TablePlacement, { kind: 'distributed' }>['shape'];

function spreadRefusal(table: string, p: Exclude<TablePlacement, { kind: 'local' }>, command: string): string {
  if (p.kind === 'shard') {
    return `${table} is a shard of the Citus table ${p.of}: a shard changes only with its table; point shadowcut at the coordinator and give --table ${p.of}`;
  }
  const by = p.column ? `by ${p.column}; ` : '';
  const size = `${by}${p.shards} shard${p.shards === 1 ? '' : 's'} on ${p.nodes} node${p.nodes === 1 ? '' : 's'}, about ${p.size.rows} rows, ${bytes(p.size.dataBytes)}`;
  const where = p.onCoordinator ? '' : ', seen from a worker';
  return (
    `${table} is a Citus ${SHAPES[p.shape]} (${size})${where}: ${command} cannot change a ${SHAPES[p.shape]} online yet ` +
    `(a copy through the coordinator would make it a local table); nothing was changed. Citus's own ALTER TABLE on the coordinator changes it, blocking its writers`
  );
}

const SHAPES: Record<DistributedShape, string> = {
  hash: 'hash-distributed table',
  range: 'range-distributed table',
  append: 'append-distributed table',
  reference: 'reference table',
  'citus-local': 'local table',
  'single-shard': 'single-shard distributed table',
};
