import type { Connection, Pool } from 'mysql2/promise';
import { LockTimeoutError } from '../../core/errors.js';
import type { Session } from '../../core/types.js';

/**
 * Runs a statement that waits for a metadata lock, with a millisecond deadline. lock_wait_timeout
 * counts whole seconds (and at least one on MySQL), too coarse for a statement that must block
 * writers well under a second, so a watchdog on another connection cancels the wait with KILL QUERY.
 * Returns whether the watchdog fired: if it raced the statement's success, the statement took effect.
 */
export async function withDeadline(conn: Connection, killer: Pool, sql: string, timeoutMs: number): Promise<{ killed: boolean }> {
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    killer.query(`KILL QUERY ${conn.threadId}`).catch(() => {});
  }, timeoutMs);
  try {
    await conn.query(sql);
  } catch (error) {
    if (killed || isLockWait(error)) throw new LockTimeoutError(`could not lock the table within ${timeoutMs} ms`);
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return { killed };
}

/** LOCK TABLES with a millisecond deadline (see withDeadline). */
export async function lockTables(conn: Connection, killer: Pool, sql: string, timeoutMs: number): Promise<void> {
  const { killed } = await withDeadline(conn, killer, sql, timeoutMs);
  if (killed) {
    // The kill raced the grant: we may hold the lock, but the next statement could be cancelled.
    await conn.query('UNLOCK TABLES').catch(() => {});
    throw new LockTimeoutError(`could not lock the table within ${timeoutMs} ms`);
  }
}

function isLockWait(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_QUERY_INTERRUPTED' || code === 'ER_STATEMENT_TIMEOUT';
}

/** A connection handed to the runner while it holds LOCK TABLES; applies on it skip locking reads. */
export class LockedSession implements Session {
  readonly id: string;
  constructor(readonly conn: Connection) {
    this.id = `mysql-thread-${conn.threadId}`;
  }
}
