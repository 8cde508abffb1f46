import { verdict, type Check } from '../../../core/engine/checks/check.js';
import { binlogVerdicts, binlogVariables } from '../capture/binlog/readiness.js';
import type { MysqlCheckContext } from './context.js';

/** Changes are followed through the binlog: every row event must carry the whole row, uncompressed. Trigger capture needs none of it. */
export const binlog: Check<MysqlCheckContext> = {
  name: 'binlog settings',
  async run({ pool, plan }) {
    if (plan.log === undefined) return binlogVerdicts(pool);
    // The copy reads in READ COMMITTED, which InnoDB cannot log as statements.
    const vars = await binlogVariables(pool);
    const statements = (vars.log_bin === 'ON' || vars.log_bin === '1') && vars.binlog_format === 'STATEMENT';
    return verdict(
      'binlog',
      !statements,
      'not read: changes are captured by triggers',
      "binlog_format is STATEMENT, in which the server cannot log the copy's READ COMMITTED writes: SET GLOBAL binlog_format = 'MIXED' or 'ROW'",
    );
  },
};
