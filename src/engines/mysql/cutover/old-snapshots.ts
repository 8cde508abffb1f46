import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import { sleep } from '../../../core/backoff.js';
import { LockTimeoutError } from '../../../core/errors.js';
import type { OldSnapshot } from '../../../core/types.js';
import type { MysqlTarget } from '../server/connect.js';
import { TRX_LIST_IDLE_MS, TrxCanary } from '../server/trx-canary.js';

/**
 * InnoDB transactions at REPEATABLE READ or SERIALIZABLE, other than this session's: such a
 * transaction keeps the read view of its first consistent read, and opening the new table under it
 * fails with error 1412 or misses rows. InnoDB does not say which of them made a read view yet, so
 * every one that has started counts. A transaction is listed only once it has touched InnoDB, and
 * autocommitted reads (one statement) are left out: neither can hold an older view. Across schemas:
 * a transaction is not bound to one. With `locked` (asked on the session holding the cut-over lock),
 * those waiting for a table lock are left out: queued behind ours, they open the table once the swap
 * is done, and counting them would give up every attempt while writers queue. On Galera (`gate`, the
 * gate table's qualified name) writers wait at the gate instead, inside a transaction the UPDATE has
 * begun: those running the gate trigger's read are left out too, since the RENAME aborts them
 * (an autocommit statement is retried in a new transaction). Null without the PROCESS privilege,
 * which both views need to show other users' sessions. INNODB_TRX is a cache that other sessions' reads
 * can keep old: a listing is believed once it shows a canary begun for it (server/trx-canary.ts).
 */
export async function mysqlOldSnapshots(target: MysqlTarget, client: Pool | Connection, locked: boolean, gate?: string): Promise<OldSnapshot[] | null> {
  for (let look = 1; ; look++) {
    const canary = new TrxCanary(target);
    await canary.begin();
    const thread = canary.thread;
    let rows: RowDataPacket[] | null;
    try {
      rows = await listed(client, locked, gate, thread);
    } finally {
      await canary.end();
    }
    if (rows === null) return null;
    const others = rows.filter((r) => Number(r.id) !== thread);
    if (others.length < rows.length) return others.map(snapshotOf);
    // Unlocked, an old listing costs a longer wait at most (one that shows what has ended), and what
    // it misses the look under the lock finds: believed after a few tries. Under the lock, a reader it
    // misses fails after the swap: the attempt gives way.
    if (look === STALE_TRIES) {
      if (!locked) return others.map(snapshotOf);
      throw new LockTimeoutError(
        `the server's list of transactions (INNODB_TRX) stayed older than the lock: some session reads it more often than every 100 ms`,
      );
    }
    await sleep(TRX_LIST_IDLE_MS);
  }
}

/** Tries at a listing that shows the canary, each after the cache's idle time. */
const STALE_TRIES = 3;

/** The candidates, and the canary. */
async function listed(client: Pool | Connection, locked: boolean, gate: string | undefined, canary: number): Promise<RowDataPacket[] | null> {
  const [rows] = await client
    .query<RowDataPacket[]>(
      `SELECT t.trx_mysql_thread_id AS id, t.trx_id, CAST(t.trx_started AS CHAR) AS since, p.USER AS user, p.HOST AS host,
              COALESCE(p.STATE, p.COMMAND) AS state, LEFT(COALESCE(t.trx_query, p.INFO), 200) AS query
         FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
        WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND (t.trx_mysql_thread_id = ? OR
              t.trx_isolation_level IN ('REPEATABLE READ', 'SERIALIZABLE') AND t.trx_autocommit_non_locking = 0
              AND NOT (? AND COALESCE(p.STATE, '') LIKE 'Waiting for table%lock') AND NOT (? AND LOCATE(?, COALESCE(p.INFO, '')) > 0))
        ORDER BY t.trx_started, t.trx_mysql_thread_id`,
      [canary, locked, locked && gate !== undefined, gate ?? ''],
    )
    .catch((error: { code?: string }) => (error.code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR' ? [null] : Promise.reject(error)));
  return rows;
}

function snapshotOf(r: RowDataPacket): OldSnapshot {
  return {
    session: String(r.id),
    transaction: `${r.id}/${r.trx_id}`,
    user: r.user ?? null,
    client: r.host ?? null,
    since: r.since ?? null,
    state: r.state || null,
    query: r.query === null ? null : String(r.query).replace(/\s+/g, ' '),
  };
}
