import { verdict, type Check } from '../../../core/engine/checks/check.js';
import { checkpointLeftOver } from '../../../core/engine/state/checkpoint.js';
import { existingTriggers, tableExists } from '../schema/inspect.js';
import { keptByRevert } from '../schema/kept-by-revert.js';
import { oldTables } from '../schema/old-tables.js';
import { helperNames } from '../schema/plan.js';
import { qualified } from '../server/sql.js';
import type { MysqlCheckContext } from './context.js';

/**
 * A dead run's checkpoint or helper tables: another run would take their names. A resumed run is the
 * one that continues them. An old table (`<table>__old`, `__old_<n>`) is none of them: an earlier
 * run kept it, or a user made it, and the plan chose a free name beside it. Only the triggers a dead
 * run's swap took there are looked for on it, as trigger names are the database's.
 */
export const leftovers: Check<MysqlCheckContext> = {
  name: 'leftovers',
  async run({ pool, plan, resuming }) {
    if (resuming) return verdict('leftovers', true, "resuming: the interrupted run's helper tables are reused", '');
    const { database, table } = plan;
    const { shadow, state, heartbeat, log, captureTriggers, reverseLog, reverseTriggers, reversePrelockTriggers, gate, gateTriggers } = helperNames(table);
    if (await tableExists(pool, database, state)) {
      return verdict('leftovers', false, '', checkpointLeftOver(`${database}.${table}`));
    }
    const found: string[] = [];
    const olds = [...new Set([plan.old, ...(await oldTables(pool, database, table))])];
    for (const helper of [shadow, heartbeat, log, reverseLog, gate]) if (await tableExists(pool, database, helper)) found.push(helper);
    const kept = found.includes(shadow) && (await keptByRevert(pool, database, shadow));
    const triggers = [
      ...(await existingTriggers(pool, database, Object.values(captureTriggers), [table, ...olds])),
      // A revert window's, on the new table (made while it was the shadow).
      ...(await existingTriggers(pool, database, Object.values(reverseTriggers), [table, shadow])),
    ];
    const prelock = await existingTriggers(pool, database, Object.values(reversePrelockTriggers), [table, ...olds]);
    const gates = await existingTriggers(pool, database, Object.values(gateTriggers), [table, ...olds]);
    return verdict(
      'leftovers',
      found.length + triggers.length + prelock.length + gates.length === 0,
      'no helper tables or capture triggers of an earlier run',
      [
        ...triggers.map(
          (name) =>
            `capture trigger ${database}.${name} of an earlier run is still on the table, logging every write: ` +
            `run "shadowcut cleanup --url ... --table ${table}" or DROP TRIGGER ${qualified(database, name)}`,
        ),
        ...prelock.map(
          (name) =>
            `trigger ${database}.${name} of an earlier run's revert window is still on the table, opening its log on every write: ` +
            `run "shadowcut cleanup --url ... --table ${table}" or DROP TRIGGER ${qualified(database, name)}`,
        ),
        ...gates.map(
          (name) =>
            `Galera gate trigger ${database}.${name} of an earlier run is still on the table, reading the gate on every write: ` +
            `run "shadowcut cleanup --url ... --table ${table}" or DROP TRIGGER ${qualified(database, name)}`,
        ),
        ...found.map((helper) =>
          kept && helper === shadow
            ? `${database}.${helper} is the new table a revert kept, which cleanup never drops: DROP TABLE ${qualified(database, helper)}, or rename it if you need it`
            : `helper table ${database}.${helper} already exists (left by an earlier run?): ` +
              `run "shadowcut cleanup --url ... --table ${table}" or DROP TABLE ${qualified(database, helper)}`,
        ),
      ].join('; '),
    );
  },
};
