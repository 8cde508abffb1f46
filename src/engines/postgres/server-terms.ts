import type { ServerTerms } from '../../core/engine/server-terms.js';

/** PostgreSQL's words for what core's messages name (core/engine/server-terms.ts). */
export const postgresTerms: ServerTerms = {
  session: 'pid',
  // The new table's name is resolved afresh, but read with the old snapshot: what was written to the
  // shadow after it is not there.
  oldSnapshotHarm: (table, their) =>
    `read ${table} after the swap without the rows written to the new table since ${their} snapshot (all of them, if it predates the copy)`,
  // pg_stat_activity shows every role the sessions' backend_xmin, so the list is never hidden; said
  // should a future look be unable to read it.
  seeingTransactions: 'PostgreSQL: grant pg_read_all_stats',
  // A table's identity is its oid and owner, read from pg_class by any role: unreadable only when the table is gone.
  identityUnreadable: 'the table is gone',
};
