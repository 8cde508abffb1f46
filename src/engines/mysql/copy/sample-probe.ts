import type { Pool } from 'mysql2/promise';
import { UniqueViolationError, UserError, CLEANUP_AFTER_FAILURE, ignoreFailure } from '../../../core/engine/errors.js';
import type { SampleProbe } from '../../../core/engine/ports/preflight.js';
import type { KeyRange } from '../../../core/engine/types.js';
import { helperNames, type MysqlPlan } from '../schema/plan.js';
import { createMarkedProbe } from '../schema/probe.js';
import { qualified } from '../server/sql.js';
import { digestQuery, hasCrc32c, planSides, rangeDigest } from './checksum.js';
import { Copier } from './copy.js';
import { buildDeferred, dropDeferred } from './deferred-indexes.js';

/**
 * A real, marked probe made as `createShadow` makes the shadow (the ALTER applied, the deferred
 * indexes dropped), written by the run's own Copier and digested with the verification's own SQL.
 * Real, not TEMPORARY: the run's chunks and digests each take a pooled session of their own.
 */
export async function openMysqlSampleProbe(pool: Pool, p: MysqlPlan, flavor: 'mariadb' | 'mysql'): Promise<SampleProbe> {
  const name = helperNames(p.table).probes[2];
  const probe = qualified(p.database, name);
  const conn = await pool.getConnection();
  try {
    await createMarkedProbe(conn, p.database, p.table, name);
  } finally {
    conn.release();
  }
  const close = () => pool.query(`DROP TABLE IF EXISTS ${probe}`).then(() => {});
  try {
    await pool.query(`ALTER TABLE ${probe} ${p.shadowAlter}`);
    await dropDeferred(pool, p.database, name, p.deferredIndexes);
  } catch (error) {
    await close().catch(ignoreFailure(CLEANUP_AFTER_FAILURE));
    throw error;
  }
  const plan = { ...p, shadow: name };
  const copier = new Copier(plan, flavor);
  const crc32c = await hasCrc32c(pool);
  const [original, shadow] = planSides(plan).map((side) => digestQuery(crc32c, side));
  return {
    nextBoundary: (after, rows) => copier.nextBoundary(pool, after, rows),
    copy: (range) =>
      copier.copyRange(pool, range).catch((error: Error) => {
        // The probe is ours and the read takes no locks: a refusal here is about the rows.
        if (!(error instanceof UserError || error instanceof UniqueViolationError)) throw error;
        throw new UserError(`the copy fails on the table's first rows: ${error.message.replaceAll(name, p.table)}`);
      }),
    async buildIndexes() {
      await buildDeferred(pool, p.database, name, p.deferredIndexes);
      return p.deferredIndexes.map((i) => i.name);
    },
    settle: async () => {},
    digest: (side: 'original' | 'shadow', range: KeyRange) => onConnection(pool, (c) => rangeDigest(c, side === 'original' ? original : shadow, range)),
    close,
  };
}

async function onConnection(pool: Pool, fn: (conn: Awaited<ReturnType<Pool['getConnection']>>) => Promise<unknown>): Promise<void> {
  const conn = await pool.getConnection();
  try {
    await fn(conn);
  } finally {
    conn.release();
  }
}
