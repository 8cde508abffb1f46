import { verdict, type Check } from '../../../core/check.js';
import { missingPrivileges, privilegesRefusal } from '../server/grants.js';
import type { MysqlCheckContext } from './context.js';

export const privileges: Check<MysqlCheckContext> = {
  name: 'privileges',
  async run({ pool, plan }) {
    const missing = await missingPrivileges(pool, plan.database, plan.log === undefined);
    return verdict('privileges', missing.length === 0, 'granted', privilegesRefusal(missing, plan.database));
  },
};
