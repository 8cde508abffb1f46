import { verdict, type Check } from '../../../core/engine/checks/check.js';
import type { MysqlCheckContext } from './context.js';

/** The binlog, the locking reads and the consistent snapshots all assume InnoDB. */
export const storageEngine: Check<MysqlCheckContext> = {
  name: 'storage engine',
  async run({ plan }) {
    return verdict(
      'engine',
      plan.facts.engine === 'InnoDB',
      'InnoDB',
      `${plan.database}.${plan.table} uses ${plan.facts.engine}; only InnoDB tables can be changed online`,
    );
  },
};
