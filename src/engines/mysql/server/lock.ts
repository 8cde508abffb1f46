import type { Connection, Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { backoffMs } from '../../../core/engine/retry/backoff.js';
import { retryBounded } from '../../../core/engine/retry/retry.js';
import { LockTimeoutError, UserError, failedAs, ignoreFailure } from '../../../core/engine/errors.js';
import type { Session } from '../../../core/engine/types.js';
import { connectOne } from './connect.js';
import type { MysqlTarget } from './target.js';
import { runsInTotalOrder } from './galera-node.js';
import { NOTHING_TO_KILL } from './sql.js';

const NOT_SEEN_WAITING = 'the look at whether the statement waits for a lock failed: it counts as not waiting, and nothing is killed on a guess';

/** PROCESSLIST states of a statement waiting for a lock (metadata, table, global read, backup) or a flush. */
const LOCK_WAIT = /^Waiting for .*\b(?:lock|flush)$/i;
/** How often a statement past its deadline is looked at again: its next lock wait is cut within this. */
const WATCH_MS = 20;

/**
 * Runs a statement that may wait for a metadata lock, with a millisecond deadline on its waits, not
 * on its work. lock_wait_timeout counts whole seconds (and at least one on MySQL), too coarse for a
 * statement that must block writers well under a second, so a watchdog on another connection looks
 * at the statement's PROCESSLIST state once the deadline is past: KILL QUERY while it waits for a
 * lock, otherwise it is working (an ALTER between its two metadata lock waits, a DROP removing its
 * files), and the watchdog looks again every few milliseconds, to cut its next wait (an ALTER's
 * upgrade at its end) as soon as it starts. A statement that waits has done nothing yet, or is atomic.
 * `onlyWaits`: the statement does nothing but wait (LOCK TABLES), so it is cut at the deadline as it stands.
 * Returns whether the watchdog fired: if it raced the statement's success, the statement took effect.
 */
export async function withDeadline(conn: Connection, killer: Pool, sql: string, timeoutMs: number, onlyWaits = false): Promise<{ killed: boolean }> {
  // A DDL on a Galera node (TOI) is made by the other nodes before it waits here: it is never cut short.
  if (!onlyWaits && (await runsInTotalOrder(conn))) return uncut(conn, sql);
  let killed = false;
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const watch = async () => {
    const waiting = onlyWaits || (await waitsForLock(killer, conn.threadId).catch(failedAs(false, NOT_SEEN_WAITING)));
    if (finished) return;
    if (!waiting) {
      timer = setTimeout(() => void watch(), WATCH_MS);
      return;
    }
    killed = true;
    await killer.query(`KILL QUERY ${conn.threadId}`).catch(ignoreFailure(NOTHING_TO_KILL));
  };
  timer = setTimeout(() => void watch(), timeoutMs);
  try {
    await conn.query(sql);
  } catch (error) {
    if (killed || isLockWait(error)) throw new LockTimeoutError(`could not lock the table within ${timeoutMs} ms`);
    throw error;
  } finally {
    finished = true;
    clearTimeout(timer);
  }
  return { killed };
}

/**
 * A TOI statement runs to its end: KILL is refused for it anyway, and a server-wide
 * `max_statement_time` would end it on this node alone after the others made it (galera-node.ts).
 */
async function uncut(conn: Connection, sql: string): Promise<{ killed: boolean }> {
  await withoutStatementLimit(conn, () => conn.query(sql));
  return { killed: false };
}

/**
 * `work` on `conn` with no statement time limit, then the session's default back (a connection whose
 * default cannot be put back is destroyed, so that no pool hands it out unlimited).
 */
export async function withoutStatementLimit<T>(conn: Connection | PoolConnection, work: () => Promise<T>): Promise<T> {
  await conn.query('SET SESSION max_statement_time = 0');
  try {
    return await work();
  } finally {
    await conn.query('SET SESSION max_statement_time = DEFAULT').catch(() => conn.destroy());
  }
}

async function waitsForLock(pool: Pool, threadId: number): Promise<boolean> {
  // A session sees its own user's threads without the PROCESS privilege.
  const [rows] = await pool.query<RowDataPacket[]>('SELECT STATE AS state FROM information_schema.PROCESSLIST WHERE ID = ?', [threadId]);
  return rows.length > 0 && LOCK_WAIT.test(String(rows[0].state ?? ''));
}

/** LOCK TABLES with a millisecond deadline (see withDeadline): it only ever waits, so the watchdog cuts it at the deadline. */
export async function lockTables(conn: Connection, killer: Pool, sql: string, timeoutMs: number): Promise<void> {
  const { killed } = await withDeadline(conn, killer, sql, timeoutMs, true);
  if (killed) {
    // The kill raced the grant: we may hold the lock, but the next statement could be cancelled.
    await conn
      .query('UNLOCK TABLES')
      .catch(
        ignoreFailure('the lock may never have been granted; the attempt fails as a lock timeout either way, and the caller unlocks or ends the session again'),
      );
    throw new LockTimeoutError(`could not lock the table within ${timeoutMs} ms`);
  }
}

/** A statement ended while it waited for a lock: by a lock wait timeout, or by a watchdog's KILL QUERY. */
export function isLockWait(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code === 'ER_LOCK_WAIT_TIMEOUT' || code === 'ER_QUERY_INTERRUPTED';
}

/**
 * MariaDB's ER_STATEMENT_TIMEOUT, a statement cut by `max_statement_time`. mysql2 names MySQL's
 * error numbers only, so this one comes with its number and no code.
 */
export function isStatementTimeout(error: unknown): boolean {
  return (error as { errno?: number }).errno === 1969;
}

/** A connection handed to the runner while it holds LOCK TABLES; applies on it skip locking reads. */
export class LockedSession implements Session {
  readonly id: string;
  constructor(
    readonly conn: Connection,
    /** When the lock was granted (performance.now()): what was listed after it shows who could still read around it. */
    readonly lockedAt = performance.now(),
  ) {
    this.id = `mysql-thread-${conn.threadId}`;
  }
}

/** A metadata-only statement (CREATE/DROP TRIGGER, DROP/RENAME TABLE), given the lock for at most `timeoutMs` (see withDeadline). */
export async function quickDdl(target: MysqlTarget, pool: Pool, sql: string, timeoutMs: number): Promise<void> {
  const conn = await connectOne(target);
  try {
    await withDeadline(conn, pool, sql, timeoutMs);
  } finally {
    // A watchdog's KILL QUERY may still be on its way: this connection runs nothing else.
    conn.destroy();
  }
}

const BOUNDED_WAIT_MS = 1000;
const BOUNDED_ATTEMPTS = 20;

/**
 * A metadata-only statement that never holds writers up for long: a bounded wait per attempt, then
 * one clear line, `failure` saying what could not be done.
 */
export function boundedDdl(target: MysqlTarget, pool: Pool, sql: string, failure: string): Promise<void> {
  return retryBounded(
    {
      attempts: BOUNDED_ATTEMPTS,
      retryable: (error) => error instanceof LockTimeoutError,
      pauseMs: (n) => backoffMs(n - 1, 250),
      exhausted: () => new UserError(`${failure}: a transaction keeps the table busy; run "shadowcut cleanup" when it is quieter`),
    },
    () => quickDdl(target, pool, sql, BOUNDED_WAIT_MS),
  );
}
