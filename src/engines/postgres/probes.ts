import type pg from 'pg';
import { UserError } from '../../core/errors.js';
import type { Probes } from '../../core/types.js';
import type { PgDetail } from './plan.js';

/** Server load from pg_stat_activity; standby lag is not measured yet. */
export async function openPostgresProbes(pool: pg.Pool, _d: PgDetail, replicas: string[]): Promise<Probes> {
  if (replicas.length) throw new UserError('--replica is not supported yet');
  return {
    replicaLag: async () => [],
    load: async () => {
      const { rows } = await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid()`);
      return { active_backends: Number(rows[0].n) };
    },
    close: async () => {},
  };
}
