import type { Check } from '../../../core/engine/checks/check.js';
import type { MysqlCheckContext } from './context.js';
import { binlog } from './binlog.js';
import { foreignKeys } from './foreign-keys.js';
import { groupReplication } from './group-replication.js';
import { galera } from './galera.js';
import { key } from './key.js';
import { leftovers } from './leftovers.js';
import { privileges } from './privileges.js';
import { storageEngine } from './storage-engine.js';
import { triggers } from './triggers.js';

/**
 * In the order a dry run lists them: the server, then the table, then what an earlier run left.
 * Galera first: on a cluster nothing else matters until it has a cut-over safe under TOI.
 */
export const mysqlChecks: readonly Check<MysqlCheckContext>[] = [
  galera,
  groupReplication,
  privileges,
  storageEngine,
  binlog,
  foreignKeys,
  triggers,
  key,
  leftovers,
];
