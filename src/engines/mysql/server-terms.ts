import type { ServerTerms } from '../../core/engine/server-terms.js';

/** MySQL's and MariaDB's words for what core's messages name (core/engine/server-terms.ts). */
export const mysqlTerms: ServerTerms = {
  session: 'connection',
  // InnoDB checks the table's definition against the read view: a read view older than the new table
  // fails with error 1412 (ER_TABLE_DEF_CHANGED), or, where it does not, misses the rows written since.
  oldSnapshotHarm: (table, their) =>
    `fail on ${table} after the swap with error 1412 (Table definition has changed), or miss rows written to it since ${their} read view`,
  // INNODB_TRX lists other users' transactions only to a role with PROCESS.
  seeingTransactions: 'MySQL: grant PROCESS',
  // A backup's identity is InnoDB's table id, which INNODB_TABLES shows only to a role with PROCESS.
  identityUnreadable: 'MySQL needs the PROCESS privilege',
};
