import pg from 'pg';
import type { ClaimSession } from '../../../core/engine/types.js';
import { pgConfig, type PgTarget } from './target.js';
import { CLOSING, ignoreFailure } from '../../../core/engine/errors.js';

/**
 * A client of its own, outside the pool, holding a session advisory lock keyed by a hash of the
 * table's name (not its oid, which the swap changes).
 */
export async function openClaim(target: PgTarget, qualifiedTable: string): Promise<ClaimSession> {
  const client = new pg.Client(pgConfig(target, { application_name: 'shadowcut claim' }));
  client.on('error', () => {});
  await client.connect();
  const name = `shadowcut:${qualifiedTable}`;
  return {
    async take() {
      const { rows } = await client.query('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS got', [name]);
      return rows[0].got === true;
    },
    async holder() {
      // A bigint key shows in pg_locks as its high half (classid) and low half (objid).
      const { rows } = await client.query(
        `SELECT l.pid, a.client_addr FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
            AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)`,
        [name],
      );
      if (rows.length === 0) return null;
      return `server process ${rows[0].pid}${rows[0].client_addr ? ` from ${rows[0].client_addr}` : ''}`;
    },
    async ping() {
      await client.query('SELECT 1');
    },
    async close() {
      // Released before the connection goes: the server frees a session's locks as its backend exits,
      // a moment after the client has gone, and a run started right after would be refused meanwhile.
      await client
        .query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [name])
        .catch(ignoreFailure('the lock goes with the session, which ends next: releasing it first only spares the next run a wait'));
      await client.end().catch(ignoreFailure(CLOSING));
    },
  };
}
