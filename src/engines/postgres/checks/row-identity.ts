import { verdict, type Check } from '../../../core/check.js';
import type { PgCheckContext } from './context.js';

/** Read again, not taken from the plan: a resumed run's table may have lost its key since. */
export const rowIdentity: Check<PgCheckContext> = {
  name: 'row identity',
  async run({ table: t }) {
    return verdict('row identity', t.key !== null, `key (${t.key?.columns.join(', ')}) matches the replica identity`, t.noKeyReason);
  },
};
