import { verdict, type Check } from '../../../core/engine/checks/check.js';
import type { PgCheckContext } from './context.js';

/** Options that only mean something on MySQL are refused, not ignored: whoever gave one expected it to act. */
export const mysqlOptions: Check<PgCheckContext> = {
  name: 'MySQL-only options',
  async run({ request }) {
    const given = [
      request?.discardForeignKeys && '--discard-foreign-keys is for MySQL/MariaDB; on PostgreSQL foreign keys are carried over to the new table',
      request?.triggers && '--include-triggers is for MySQL/MariaDB; on PostgreSQL triggers are always carried over to the new table',
    ].filter((m): m is string => typeof m === 'string');
    return verdict('options', given.length === 0, 'none for MySQL only', given.join('; '));
  },
};
