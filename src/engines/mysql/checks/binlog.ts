import { verdict, type Check } from '../../../core/check.js';
import { binlogVerdicts } from '../capture/binlog/readiness.js';
import type { MysqlCheckContext } from './context.js';

/** Changes are followed through the binlog: every row event must carry the whole row, uncompressed. Trigger capture needs none of it. */
export const binlog: Check<MysqlCheckContext> = {
  name: 'binlog settings',
  async run({ pool, plan }) {
    if (plan.log !== undefined) return verdict('binlog', true, 'not read: changes are captured by triggers', '');
    return binlogVerdicts(pool);
  },
};
