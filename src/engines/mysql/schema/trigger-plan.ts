import type { Pool } from 'mysql2/promise';
import { UserError } from '../../../core/engine/errors.js';
import { readTriggers } from './inspect.js';
import { qualified } from '../server/sql.js';

/** A trigger of the original, to be created on the shadow at the cut-over under its new name. */
export interface TriggerPlan {
  name: string;
  newName: string;
  create: string;
  sqlMode: string;
  /** `user@host` as information_schema spells it: the CREATE keeps it, so the body runs with the owner's rights. */
  definer?: string;
  body?: string;
  /** The session the original was made in, taken again for the CREATE (absent in a checkpoint of an older version). */
  characterSetClient?: string;
  collationConnection?: string;
  databaseCollation?: string;
}

/**
 * Trigger names are unique per database and the original keeps its triggers until the RENAME, so the
 * new table's carry a suffix (or lose it, with removeSuffixIfExists, so names alternate across runs).
 * Whether the new names are free is the triggers check's.
 */
export async function planTriggers(
  pool: Pool,
  database: string,
  table: string,
  shadow: string,
  options: { suffix: string; removeSuffixIfExists: boolean },
): Promise<TriggerPlan[]> {
  if (!options.suffix) throw new UserError('--trigger-suffix must not be empty: trigger names are unique per database');
  const plans: TriggerPlan[] = [];
  for (const t of await readTriggers(pool, database, table)) {
    const newName = options.removeSuffixIfExists && t.name.endsWith(options.suffix) ? t.name.slice(0, -options.suffix.length) : t.name + options.suffix;
    const at = t.definer.lastIndexOf('@');
    const definer = `'${t.definer.slice(0, at).replace(/'/g, "''")}'@'${t.definer.slice(at + 1).replace(/'/g, "''")}'`;
    plans.push({
      name: t.name,
      newName,
      create: `CREATE DEFINER=${definer} TRIGGER ${qualified(database, newName)} ${t.timing} ${t.event} ON ${qualified(database, shadow)} FOR EACH ROW ${t.body}`,
      sqlMode: t.sqlMode,
      definer: t.definer,
      body: t.body,
      characterSetClient: t.characterSetClient,
      collationConnection: t.collationConnection,
      databaseCollation: t.databaseCollation,
    });
  }
  return plans;
}
