import { CLOSING, ignoreFailure } from '../core/engine/errors.js';
import type { Engine } from '../core/engine/types.js';
import { refuseSpreadTables } from '../core/preflight/placement.js';
import { createEngine } from '../engines/index.js';

/** The commands that change a hash-distributed or reference table where its shards are (engines/postgres/citus/). */
const ONLINE_ON_SHARDS: Record<string, ('hash' | 'reference')[]> = {
  migrate: ['hash', 'reference'],
  plan: ['hash', 'reference'],
  verify: ['hash', 'reference'],
  backfill: ['hash', 'reference'],
};

/**
 * The engine for a command that changes or reads the named tables whole, once each is one the
 * command can work on where its rows are: a distributed table is refused here, before anything is
 * made (core/preflight/placement.ts).
 */
export async function engineForTables(url: string, tables: string[], command: string): Promise<Engine> {
  const engine = await createEngine(url);
  try {
    await refuseSpreadTables(engine, tables, command, ONLINE_ON_SHARDS[command]);
  } catch (error) {
    await engine.close().catch(ignoreFailure(CLOSING));
    throw error;
  }
  return engine;
}
