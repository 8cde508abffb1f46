import { verdict, type Check } from '../../../core/engine/checks/check.js';
import type { MysqlCheckContext } from './context.js';
import { childKeyName, childKeyProblem, describeChildKey } from '../cutover/child-keys.js';
import { parentKeyProblem } from '../cutover/parent-keys.js';
import { cascadeProblem } from '../capture/cascades.js';
import { foreignKeyName, keysOutsideSet } from '../schema/plan.js';

export const foreignKeys: Check<MysqlCheckContext> = {
  name: 'foreign keys',
  async run({ plan }) {
    const t = `${plan.database}.${plan.table}`;
    const unfollowed = (plan.cascades ?? []).flatMap((c) => {
      const problem = cascadeProblem(c, plan);
      return problem ? [`${c.name} -> ${c.parent} ON DELETE ${c.onDelete} ON UPDATE ${c.onUpdate}: ${problem}`] : [];
    });
    const followed = (plan.cascades ?? []).filter((c) => cascadeProblem(c, plan) === null);
    const out = keysOutsideSet(plan).filter((k) => !plan.droppedForeignKeys.includes(foreignKeyName(k)));
    const unfit = plan.children.flatMap((k) => {
      const problem = childKeyProblem(k, plan.original, plan.shadowShape);
      return problem ? [`${childKeyName(k)}: ${problem}`] : [];
    });
    const parentKeys = plan.parentKeys ?? [];
    const unfitOut = parentKeys.flatMap((k) => {
      const problem = plan.shadowRefusesKeys ?? parentKeyProblem(k, plan.original, plan.shadowShape);
      return problem ? [`${k.name}: ${problem}`] : [];
    });
    return [
      // Keys from other tables are pointed at the new table at the cut-over: it must be able to take them.
      verdict(
        'foreign keys in',
        unfit.length === 0,
        plan.children.length ? `re-pointed to the new table at the cut-over: ${plan.children.map(describeChildKey).join('; ')}` : 'none',
        `${t} is referenced by foreign keys the new table could not take (${unfit.join('; ')}); change the referencing tables first, or use a blocking ALTER`,
      ),
      // Keys to other tables are moved to the new table at the cut-over, unless the operator discards them.
      verdict(
        'foreign keys out',
        unfitOut.length === 0 && (out.length === 0 || plan.discardForeignKeys),
        out.length
          ? `discarded on request: ${out.join(', ')}`
          : parentKeys.length
            ? `moved to the new table at the cut-over, under their names: ${parentKeys.map(describeChildKey).join('; ')}`
            : 'none',
        unfitOut.length
          ? `${t} has foreign keys the new table could not take (${unfitOut.join('; ')}); the native ALTER refuses that too: drop the key in the same ALTER, or change it first`
          : // Every key is moved or discarded on request; one that is neither would be lost.
            `${t} has foreign keys (${out.join(', ')}) that the cut-over would not move to the new table; pass --discard-foreign-keys to migrate without them, or use a blocking ALTER`,
      ),
      // InnoDB makes cascaded changes itself: they reach the binlog as no row event at all. The run
      // follows the parent's events for them (capture/cascades.ts) where it can; elsewhere the copy
      // would keep rows the original lost. Discarding the key does not stop the original cascading.
      verdict(
        'cascading foreign keys',
        unfollowed.length === 0,
        followed.length ? `followed through their parents' row events: ${followed.map((c) => `${c.name} -> ${c.parent}`).join(', ')}` : 'none',
        `${t} has foreign keys whose changes cascade into it that the run could not follow (${unfollowed.join('; ')}); drop them or make them RESTRICT for the migration, or use a blocking ALTER`,
      ),
    ];
  },
};
