import pg from 'pg';
import type { LockProbe } from '../../../core/engine/types.js';
import { qualified } from '../server/sql.js';

/**
 * Planning the statement takes ACCESS SHARE on the table, which queues behind the cut-over's ACCESS
 * EXCLUSIVE (granted or still waiting) as an application's ROW EXCLUSIVE does. LIMIT 0 reads no row.
 */
export function pgLockProbe(pool: pg.Pool, schema: string, name: string): LockProbe {
  const probes = new pg.Pool({ ...pool.options, max: 1 });
  // A connection lost between probes must not crash the process; the next probe reconnects.
  probes.on('error', () => {});
  const sql = `SELECT 1 FROM ${qualified(schema, name)} LIMIT 0`;
  return {
    probe: async () => {
      await probes.query(sql);
    },
    close: () => probes.end(),
  };
}
