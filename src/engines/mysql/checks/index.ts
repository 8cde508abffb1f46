import type { Pool } from 'mysql2/promise';
import type { Check } from '../../../core/check.js';
import type { ServerZone } from '../connect.js';
import type { MysqlPlan } from '../plan.js';
import { binlog } from './binlog.js';
import { foreignKeys } from './foreign-keys.js';
import { key } from './key.js';
import { leftovers } from './leftovers.js';
import { privileges } from './privileges.js';
import { storageEngine } from './storage-engine.js';
import { triggers } from './triggers.js';

/** What MySQL's checks read: the plan `prepare` built, the server, and whether a dead run is resumed. */
export interface MysqlCheckContext {
  pool: Pool;
  plan: MysqlPlan;
  zone: ServerZone;
  resuming: boolean;
}

/** In the order a dry run lists them: the server, then the table, then what an earlier run left. */
export const mysqlChecks: readonly Check<MysqlCheckContext>[] = [
  privileges,
  storageEngine,
  binlog,
  foreignKeys,
  triggers,
  key,
  leftovers,
];
