import { verdict, type Check } from '../../../core/check.js';
import { checkpointLeftOver } from '../../../core/checkpoint.js';
import { tableExists } from '../schema/inspect.js';
import { helperNames } from '../schema/plan.js';
import { qualified } from '../server/sql.js';
import type { MysqlCheckContext } from './context.js';

/**
 * A dead run's checkpoint or helper tables: another run would take their names. A resumed run is the
 * one that continues them.
 */
export const leftovers: Check<MysqlCheckContext> = {
  name: 'leftovers',
  async run({ pool, plan, resuming }) {
    if (resuming) return verdict('leftovers', true, "resuming: the interrupted run's helper tables are reused", '');
    const { database, table } = plan;
    const { shadow, old, state, heartbeat } = helperNames(table);
    if (await tableExists(pool, database, state)) {
      return verdict('leftovers', false, '', checkpointLeftOver(`${database}.${table}`));
    }
    const found: string[] = [];
    for (const helper of [shadow, old, heartbeat]) if (await tableExists(pool, database, helper)) found.push(helper);
    return verdict(
      'leftovers',
      found.length === 0,
      'no helper tables of an earlier run',
      found
        .map(
          (helper) =>
            `helper table ${database}.${helper} already exists (left by an earlier run?): ` +
            `run "shadowcut cleanup --url ... --table ${table}" or DROP TABLE ${qualified(database, helper)}`,
        )
        .join('; '),
    );
  },
};
