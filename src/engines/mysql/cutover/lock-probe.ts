import type { LockProbe } from '../../../core/engine/types.js';
import { createPool } from '../server/connect.js';
import type { MysqlTarget } from '../server/target.js';
import { helperNames, type MysqlPlan } from '../schema/plan.js';
import { GATE_SLOTS } from '../galera/gate.js';
import { qualified } from '../server/sql.js';

/**
 * Opening the table takes the shared metadata lock that an application's INSERT or UPDATE takes
 * first: it queues behind LOCK TABLES and the RENAME as those would. LIMIT 0 reads no row. On a
 * Galera cluster (`galera`) writers wait at the gate instead (`../galera/gate.ts`): the probe then also
 * locks its row of the gate as the gate's triggers do, once the gate is there.
 */
export function mysqlLockProbe(target: MysqlTarget, p: Pick<MysqlPlan, 'database' | 'table'>, galera = false): LockProbe {
  const pool = createPool(target, 1);
  const sql = `SELECT 1 FROM ${qualified(p.database, p.table)} LIMIT 0`;
  const gate = `SELECT closed FROM ${qualified(p.database, helperNames(p.table).gate)} WHERE node = @@wsrep_node_name AND slot = CONNECTION_ID() MOD ${GATE_SLOTS} FOR UPDATE`;
  return {
    probe: async () => {
      await pool.query(sql);
      if (galera) await pool.query(gate).catch((error: { code?: string }) => (error.code === 'ER_NO_SUCH_TABLE' ? null : Promise.reject(error)));
    },
    close: () => pool.end(),
  };
}
