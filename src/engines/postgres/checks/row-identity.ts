import { verdict, type Check } from '../../../core/engine/checks/check.js';
import type { PgCheckContext } from './context.js';

/**
 * Read again, not taken from the plan: a resumed run's table may have lost its key since. A table the
 * stream cannot follow (no primary key) passes only with trigger capture.
 */
export const rowIdentity: Check<PgCheckContext> = {
  name: 'row identity',
  async run({ table: t, capture }) {
    if (t.key !== null && t.noStreamReason && capture === 'trigger') {
      return verdict('row identity', true, `key (${t.key.columns.join(', ')}): unique index ${t.key.index} on NOT NULL columns, followed by triggers`, '');
    }
    return verdict(
      'row identity',
      t.key !== null && !t.noStreamReason,
      `key (${t.key?.columns.join(', ')}) matches the replica identity`,
      t.noKeyReason || t.noStreamReason,
    );
  },
};
