import type pg from 'pg';
import type { CatchUp, ConsistentView, KeyRange, RangeDigest } from '../../core/types.js';
import { asLockTimeout, ident, PgSession } from './connect.js';
import type { Copier } from './copy.js';
import { fence } from './stream.js';

/**
 * Both tables as of one instant. Writers are held off with SHARE (readers are not), the shadow is
 * caught up on a second connection whose applies commit at once, and only then does that connection
 * open a REPEATABLE READ snapshot: it sees the original frozen and the shadow level with it.
 * (Applying on the lock's own connection would not do: its uncommitted writes are invisible to any
 * other snapshot, exported ones included, and committing it would release the lock too early.)
 */
export async function openConsistentView(
  pool: pg.Pool,
  copier: Copier,
  catchUp: CatchUp,
  lockTimeoutMs: number,
): Promise<ConsistentView> {
  const lock = await pool.connect();
  const view = await pool.connect();
  // More readers on the same snapshot (exported by the first): the original and the shadow are
  // hashed at once, on two cores, while the third finds the next chunk's boundary.
  const twin = await pool.connect();
  const scout = await pool.connect();
  try {
    await lock.query('BEGIN');
    await lock.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(lockTimeoutMs))}`);
    await lock.query(`LOCK TABLE ${copier.original} IN SHARE MODE`);
    await catchUp(await fence(pool), new PgSession(view, false));
    await view.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    // The first statement fixes the snapshot, while writers are still held off.
    const { rows } = await view.query('SELECT pg_export_snapshot() AS id');
    for (const reader of [twin, scout]) {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      await reader.query(`SET TRANSACTION SNAPSHOT '${rows[0].id}'`);
    }
    await lock.query('COMMIT');
  } catch (error) {
    await lock.query('ROLLBACK').catch(() => {});
    lock.release(error as Error); // discarded after a failure, in case its connection broke
    for (const reader of [view, twin, scout]) {
      await reader.query('ROLLBACK').catch(() => {});
      reader.release(error as Error);
    }
    throw asLockTimeout(error, 'checksum lock');
  }
  lock.release();
  return {
    nextBoundary: (after, rows) => copier.nextBoundary(scout, after, rows),
    checksum: (range) => Promise.all([digest(view, copier, range, 'original'), digest(twin, copier, range, 'shadow')]),
    async close() {
      for (const reader of [scout, twin, view]) {
        // A reader whose COMMIT fails (its connection broke) is discarded, not returned to the pool.
        const failure = await reader.query('COMMIT').then(() => undefined, (error: Error) => error);
        reader.release(failure);
      }
    },
  };
}

/**
 * Row count and the sum of a 64-bit hash of each row's text over the copied columns (summed as
 * numeric, so it never overflows). The original's values go through the same conversion as the copy
 * and are cast to the shadow's types, so a changed type compares equal when the values are. A sum,
 * unlike xor, does not cancel out duplicated rows. hashtextextended costs a fraction of md5 here.
 */
async function digest(client: pg.PoolClient, copier: Copier, range: KeyRange, side: 'original' | 'shadow'): Promise<RangeDigest> {
  const columns = copier.d.columns.map((c) => (side === 'original' ? `CAST((${c.source}) AS ${c.type})` : ident(c.target)));
  const where = (side === 'original' ? copier.originalKeys : copier.shadowKeys).range(range);
  const { rows } = await client.query(
    `SELECT count(*) AS n, coalesce(sum(hashtextextended(ROW(${columns.join(', ')})::text, 0)), 0) AS sum
       FROM ${side === 'original' ? copier.original : copier.shadow} WHERE ${where.sql}`,
    where.params,
  );
  return { rows: Number(rows[0].n), digest: rows[0].sum };
}
