import type { Pool, RowDataPacket } from 'mysql2/promise';
import { UserError } from '../../core/errors.js';
import type { Probes } from '../../core/types.js';
import type { MysqlTarget } from './connect.js';
import type { MysqlPlan } from './plan.js';

/** Server load from SHOW GLOBAL STATUS; replica lag is not measured yet. */
export async function openMysqlProbes(_target: MysqlTarget, pool: Pool, _plan: MysqlPlan, replicas: string[]): Promise<Probes> {
  if (replicas.length) throw new UserError('--replica is not supported yet');
  return {
    replicaLag: async () => [],
    load: async (names) => {
      const [rows] = await pool.query<RowDataPacket[]>('SHOW GLOBAL STATUS WHERE Variable_name IN (?)', [names]);
      return Object.fromEntries(rows.map((r) => [String(r.Variable_name), Number(r.Value)]));
    },
    close: async () => {},
  };
}
