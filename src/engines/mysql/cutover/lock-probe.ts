import type { LockProbe } from '../../../core/types.js';
import { createPool, type MysqlTarget } from '../server/connect.js';
import type { MysqlPlan } from '../schema/plan.js';
import { qualified } from '../server/sql.js';

/**
 * Opening the table takes the shared metadata lock that an application's INSERT or UPDATE takes
 * first: it queues behind LOCK TABLES and the RENAME as those would. LIMIT 0 reads no row.
 */
export function mysqlLockProbe(target: MysqlTarget, p: Pick<MysqlPlan, 'database' | 'table'>): LockProbe {
  const pool = createPool(target, 1);
  const sql = `SELECT 1 FROM ${qualified(p.database, p.table)} LIMIT 0`;
  return {
    probe: async () => {
      await pool.query(sql);
    },
    close: () => pool.end(),
  };
}
