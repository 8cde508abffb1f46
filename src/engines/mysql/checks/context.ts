import type { Pool } from 'mysql2/promise';
import type { MysqlTarget } from '../server/target.js';
import type { ServerZone } from '../server/connect.js';
import type { MysqlPlan } from '../schema/plan.js';

/** What MySQL's checks read: the plan `prepare` built, the server, and whether a dead run is resumed. */
export interface MysqlCheckContext {
  pool: Pool;
  target: MysqlTarget;
  plan: MysqlPlan;
  zone: ServerZone;
  resuming: boolean;
}
