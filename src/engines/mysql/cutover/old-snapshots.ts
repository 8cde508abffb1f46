import type { Connection, Pool, RowDataPacket } from 'mysql2/promise';
import type { OldSnapshot } from '../../../core/types.js';

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
 * which both views need to show other users' sessions.
 */
export async function mysqlOldSnapshots(client: Pool | Connection, locked: boolean, gate?: string): Promise<OldSnapshot[] | null> {
  const [rows] = await client
    .query<RowDataPacket[]>(
      `SELECT t.trx_mysql_thread_id AS id, t.trx_id, CAST(t.trx_started AS CHAR) AS since, p.USER AS user, p.HOST AS host,
              COALESCE(p.STATE, p.COMMAND) AS state, LEFT(COALESCE(t.trx_query, p.INFO), 200) AS query
         FROM information_schema.INNODB_TRX t LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id
        WHERE t.trx_mysql_thread_id <> CONNECTION_ID() AND t.trx_isolation_level IN ('REPEATABLE READ', 'SERIALIZABLE')
          AND t.trx_autocommit_non_locking = 0 AND NOT (? AND COALESCE(p.STATE, '') LIKE 'Waiting for table%lock')
          AND NOT (? AND LOCATE(?, COALESCE(p.INFO, '')) > 0)
        ORDER BY t.trx_started, t.trx_mysql_thread_id`,
      [locked, locked && gate !== undefined, gate ?? ''],
    )
    .catch((error: { code?: string }) => (error.code === 'ER_SPECIFIC_ACCESS_DENIED_ERROR' ? [null] : Promise.reject(error)));
  if (rows === null) return null;
  return rows.map((r) => ({
    session: String(r.id),
    transaction: `${r.id}/${r.trx_id}`,
    user: r.user ?? null,
    client: r.host ?? null,
    since: r.since ?? null,
    state: r.state || null,
    query: r.query === null ? null : String(r.query).replace(/\s+/g, ' '),
  }));
}
