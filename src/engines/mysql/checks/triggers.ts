import type { Pool } from 'mysql2/promise';
import { verdict, type Check } from '../../../core/check.js';
import type { CheckResult } from '../../../core/types.js';
import { triggerExists } from '../schema/inspect.js';
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
    return moved.length && !resuming ? [present, await newNames(pool, plan)] : present;
  },
};

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
