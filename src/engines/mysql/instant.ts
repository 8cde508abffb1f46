import type { Pool } from 'mysql2/promise';
import { LockTimeoutError } from '../../core/errors.js';
import { connectOne, type MysqlTarget } from './connect.js';
import { withDeadline } from './lock.js';
import type { MysqlPlan } from './plan.js';
import { qualified } from './sql.js';

/**
 * gh-ost's --attempt-instant-ddl: many ALTERs (adding a column, dropping one on MariaDB, widening a
 * VARCHAR, changing a default) only rewrite metadata when asked for ALGORITHM=INSTANT, and need no
 * copy at all. The server refuses the ones that would touch rows, and then the online path goes on.
 * The metadata lock it needs queues writers behind it like a cut-over does, so it gets the same
 * millisecond deadline. Returns true when done, or why not.
 */
export async function alterInstantly(target: MysqlTarget, killer: Pool, p: MysqlPlan, alter: string, timeoutMs: number): Promise<true | string> {
  const conn = await connectOne(target);
  try {
    await withDeadline(conn, killer, `ALTER TABLE ${qualified(p.database, p.table)} ${alter}, ALGORITHM=INSTANT`, timeoutMs);
    return true;
  } catch (error) {
    if (error instanceof LockTimeoutError) return `the table's metadata lock was not free within ${timeoutMs} ms`;
    const code = (error as { code?: string }).code ?? '';
    if (NOT_INSTANT.has(code)) return (error as Error).message;
    throw error;
  } finally {
    // A watchdog's KILL QUERY may still be on its way: this connection runs nothing else.
    conn.destroy();
  }
}

const NOT_INSTANT = new Set(['ER_ALTER_OPERATION_NOT_SUPPORTED', 'ER_ALTER_OPERATION_NOT_SUPPORTED_REASON', 'ER_WRONG_USAGE', 'ER_PARSE_ERROR']);
