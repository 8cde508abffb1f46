import type { Pool } from 'mysql2/promise';
import { LockTimeoutError, UserError } from '../../../core/engine/errors.js';
import { connectOne } from '../server/connect.js';
import type { MysqlTarget } from '../server/target.js';
import { quickDdl } from '../server/lock.js';

// How contract and restore change a table without copying it: instantly where the server can,
// else in place with writes going on, never by a copy that blocks writes.

export const NOT_SUPPORTED = new Set(['ER_ALTER_OPERATION_NOT_SUPPORTED', 'ER_ALTER_OPERATION_NOT_SUPPORTED_REASON']);

/**
 * ALGORITHM=INSTANT where the server can (MariaDB 10.4+ and MySQL 8.0.29+ drop a column so), with a
 * millisecond deadline on its metadata lock. Else INPLACE, LOCK=NONE: it rebuilds the table while
 * writes go on, so no deadline can bound the statement; lock_wait_timeout (whole seconds) bounds
 * each wait for its metadata lock instead. Never a copy, which would block writes throughout.
 */
export async function inPlace(target: MysqlTarget, pool: Pool, alter: string, timeoutMs: number): Promise<string> {
  try {
    await quickDdl(target, pool, `${alter}, ALGORITHM=INSTANT`, timeoutMs);
    return 'ALGORITHM=INSTANT';
  } catch (error) {
    if (!NOT_SUPPORTED.has((error as { code?: string }).code ?? '')) throw error;
  }
  const conn = await connectOne(target);
  try {
    await conn.query(`SET SESSION lock_wait_timeout = ${Math.max(1, Math.ceil(timeoutMs / 1000))}`);
    await conn.query(`${alter}, ALGORITHM=INPLACE, LOCK=NONE`);
    return 'ALGORITHM=INPLACE, LOCK=NONE';
  } catch (error) {
    const code = (error as { code?: string }).code ?? '';
    if (code === 'ER_LOCK_WAIT_TIMEOUT') throw new LockTimeoutError("the table's metadata lock was not free in time");
    if (NOT_SUPPORTED.has(code)) {
      throw new UserError(`the server can only make this change by copying the table, which blocks writes: ${(error as Error).message}; use shadowcut migrate`);
    }
    throw error;
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}
