import type { Connection } from 'mysql2/promise';
import { connectOne, type MysqlTarget } from './connect.js';

/**
 * How long INNODB_TRX must go unread before the server fills it again: InnoDB refreshes that cache
 * only once nobody has read it for 100 ms (a margin on top). A session reading it more often keeps
 * every reader's listing as it was, for as long as it goes on (seen on MariaDB 10.11: seconds, with
 * a reader every 20 ms).
 */
export const TRX_LIST_IDLE_MS = 110;

/**
 * A transaction of ours that a listing of INNODB_TRX must show before it is believed: one that shows
 * a transaction begun after a moment was made after that moment, so it shows every transaction then
 * open that is still open. No wait proves a listing fresh, since any session's reads hold the cache.
 * A consistent snapshot is listed (a read-only transaction is not). It is known by its connection's
 * id, so each is a new connection: a pooled one's id may be in an old listing already, from a
 * transaction it ran before (seen in CI: a trigger log's change lost so).
 */
export class TrxCanary {
  private conn: Connection | null = null;

  constructor(private readonly target: MysqlTarget) {}

  /** Begun now (again, if one was begun before). */
  async begin(): Promise<void> {
    await this.end();
    const conn = await connectOne(this.target);
    try {
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
      this.conn = conn;
    } catch (error) {
      conn.destroy();
      throw error;
    }
  }

  get begun(): boolean {
    return this.conn !== null;
  }

  /** Its connection's id, as INNODB_TRX's `trx_mysql_thread_id` shows it; 0 when not begun. */
  get thread(): number {
    return this.conn?.threadId ?? 0;
  }

  /** Whether a listing with these threads was made after `begin` (while not ended). */
  shownIn(threads: unknown[]): boolean {
    return this.conn !== null && threads.some((t) => Number(t) === this.conn!.threadId);
  }

  async end(): Promise<void> {
    const conn = this.conn;
    this.conn = null;
    if (!conn) return;
    await conn.end().catch(() => conn.destroy());
  }
}
