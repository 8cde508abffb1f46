import { createHash } from 'node:crypto';
import mysql from 'mysql2/promise';
import type { ClaimSession } from '../../../core/engine/types.js';
import type { MysqlTarget } from './target.js';
import { ignoreFailure } from '../../../core/engine/errors.js';

/** GET_LOCK names longer than 64 characters are an error on MySQL 5.7+, so long ones are hashed. */
function lockName(qualifiedTable: string): string {
  const name = `shadowcut:${qualifiedTable}`;
  return name.length <= 64 ? name : `shadowcut:${createHash('sha1').update(qualifiedTable).digest('hex')}`;
}

/** A connection of its own, outside the pool, so nothing else ever runs on the session holding the lock. */
export async function openClaim(target: MysqlTarget, qualifiedTable: string): Promise<ClaimSession> {
  const conn = await mysql.createConnection(target.config);
  conn.on('error', () => {});
  const name = lockName(qualifiedTable);
  return {
    async take() {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT GET_LOCK(?, 0) AS got', [name]);
      return Number(rows[0].got) === 1;
    },
    async holder() {
      const [rows] = await conn.query<mysql.RowDataPacket[]>('SELECT IS_USED_LOCK(?) AS id', [name]);
      return rows[0].id === null ? null : `server connection ${rows[0].id}`;
    },
    async ping() {
      await conn.query('SELECT 1');
    },
    async close() {
      // Released before the connection goes: the server frees a dead session's locks only once it has
      // noticed, and a run started right after this one ends would be refused meanwhile.
      await conn
        .query('SELECT RELEASE_LOCK(?)', [name])
        .catch(ignoreFailure('the lock goes with the session, which ends next: releasing it first only spares the next run a wait'));
      await conn.end().catch(() => conn.destroy());
    },
  };
}
