import type { Pool, RowDataPacket } from 'mysql2/promise';
import { verdict, type Check } from '../../../core/engine/checks/check.js';
import type { CheckResult } from '../../../core/engine/types.js';
import { columnsGoneFromTrigger, triggerExists } from '../schema/inspect.js';
import { grantsOn } from '../server/grants.js';
import type { MysqlPlan } from '../schema/plan.js';
import type { MysqlCheckContext } from './context.js';

/** Triggers would not fire on the new table unless moved, and moved ones need names of their own. */
export const triggers: Check<MysqlCheckContext> = {
  name: 'triggers',
  async run({ pool, plan, resuming }) {
    const moved = plan.triggers;
    const present = verdict(
      'triggers',
      plan.facts.triggers.length === 0 || moved.length > 0,
      moved.length ? `moved at the cut-over: ${moved.map((x) => `${x.name} -> ${x.newName}`).join(', ')}` : 'none',
      `${plan.database}.${plan.table} has triggers (${plan.facts.triggers.join(', ')}); pass --include-triggers to move them to the new table at the cut-over`,
    );
    // A resumed run's names were judged when it began; a killed cut-over may have left them on the shadow (resumeShadow clears them).
    if (!moved.length) return present;
    const movable = await asTheyWere(pool, plan);
    return resuming ? [present, movable] : [present, await newNames(pool, plan), movable];
  },
};

/**
 * Each moved trigger is made again as it was (invariants 16 and 17), or the run is refused before
 * anything is made: under its own DEFINER, so its body keeps running with its owner's rights and
 * never with the migrating user's (naming another DEFINER takes SET USER or SUPER); in the session
 * it was made in (character_set_client, collation_connection; the database's collation cannot be set
 * for it, only kept); and on a table that still has every `OLD.c` / `NEW.c` it reads (the server
 * would refuse the CREATE at the cut-over; a native ALTER keeps such a trigger, which then fails
 * every write it fires on).
 */
async function asTheyWere(pool: Pool, plan: MysqlPlan): Promise<CheckResult> {
  const [[server]] = await pool.query<RowDataPacket[]>(
    `SELECT CURRENT_USER() AS me, @@log_bin AS binlog, @@log_bin_trust_function_creators AS trusted,
            (SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?) AS collation`,
    [plan.database],
  );
  const grants = await grantsOn(pool, plan.database); // null under a role: trusted
  // Naming another DEFINER: SET USER on MariaDB 10.5+, SET_USER_ID (8.0) or SET_ANY_DEFINER (8.2+) on MySQL, SUPER on both.
  const mayNameDefiner = grants === null || ['SET USER', 'SET_USER_ID', 'SET_ANY_DEFINER', 'SUPER'].some((p) => grants.has(p));
  const me = String(server.me);
  const after = plan.shadowShape.columns.map((c) => c.name);
  const problems: string[] = [];
  for (const t of plan.triggers) {
    const gone = columnsGoneFromTrigger(t.body ?? t.create, after);
    if (gone.length) {
      problems.push(
        `trigger ${t.name} reads ${gone.join(', ')}, which the ALTER drops or renames: it could not be made on the new table (after a native ALTER it would fail every write it fires on); change or drop the trigger first`,
      );
    }
    if (t.definer && t.definer !== me && !mayNameDefiner) {
      problems.push(
        `trigger ${t.name} is defined by ${t.definer} and must keep that DEFINER (its body runs with the definer's rights), which ${me} may set only with SET USER or SUPER: GRANT SET USER ON *.* TO the user shadowcut connects as, or run as ${t.definer}`,
      );
    }
    if (t.databaseCollation && server.collation !== null && t.databaseCollation !== String(server.collation)) {
      problems.push(
        `trigger ${t.name} was made when ${plan.database}'s collation was ${t.databaseCollation} (now ${String(server.collation)}), which a trigger made again cannot keep`,
      );
    }
    const utf8 = /^utf8/i.test(t.characterSetClient ?? 'utf8mb4');
    if (!utf8 && [...t.create].some((c) => c.charCodeAt(0) > 0x7f)) {
      problems.push(
        `trigger ${t.name} was made with character_set_client ${t.characterSetClient} and its definition is not plain ASCII, which shadowcut cannot send in that character set`,
      );
    }
  }
  if (Number(server.binlog) === 1 && Number(server.trusted) !== 1 && grants !== null && !grants.has('SUPER')) {
    problems.push(
      `the server logs binary and ${me} lacks SUPER, which it then requires to create the moved triggers: SET GLOBAL log_bin_trust_function_creators = 1, or GRANT SUPER`,
    );
  }
  return verdict('moved triggers', problems.length === 0, 'made again under their own DEFINER, sql_mode, character set and collation', problems.join('; '));
}

/** The original keeps its triggers until the RENAME, and trigger names are unique per database. */
async function newNames(pool: Pool, plan: MysqlPlan): Promise<CheckResult> {
  const problems: string[] = [];
  for (const x of plan.triggers) {
    if (x.newName.length > 64) {
      problems.push(`trigger ${x.name} would be named ${x.newName} on the new table, longer than 64 characters; use a shorter --trigger-suffix`);
    } else if (await triggerExists(pool, plan.database, x.newName)) {
      problems.push(`trigger ${x.newName} already exists in ${plan.database}; choose another --trigger-suffix`);
    }
  }
  return verdict('trigger names', problems.length === 0, 'free', problems.join('; '));
}
