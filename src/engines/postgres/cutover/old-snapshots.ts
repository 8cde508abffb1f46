import type pg from 'pg';
import type { OldSnapshot } from '../../../core/engine/types.js';
import type { Client } from '../server/connect.js';

/**
 * Sessions of this database holding a snapshot (`backend_xmin`): a REPEATABLE READ or SERIALIZABLE
 * transaction from its first statement on, a READ COMMITTED one only while a statement runs (the
 * server does not say which isolation a session runs at, so those count too, briefly). Left out:
 * single-statement transactions (they can no longer open the table by name once running), other
 * backends than clients (autovacuum, walsenders: our own stream among them), and, with `lockHolder`,
 * sessions queued behind that lock: their statement resolves the table's name once it is granted.
 * Queued behind it too are those waiting for a session that waits for it (a writer's advisory lock
 * held by another writer whose INSERT waits for ours): counted, they held every attempt to its end.
 * `backend_xmin` is shown to every role; the rest of another role's session only with pg_read_all_stats.
 */
export async function pgOldSnapshots(client: Client | pg.Pool, lockHolder: number | null): Promise<OldSnapshot[]> {
  // The activity a session reads is kept until its transaction ends: under the lock, a reader that
  // ended would look open until the attempt's budget ran out.
  if (lockHolder !== null) await client.query('SELECT pg_catalog.pg_stat_clear_snapshot()');
  const { rows } = await client.query(
    `WITH RECURSIVE behind(pid) AS (
       SELECT w.pid FROM pg_stat_activity w WHERE $1::int IS NOT NULL AND $1 = ANY (pg_blocking_pids(w.pid))
       UNION
       SELECT w.pid FROM pg_stat_activity w, behind b WHERE w.wait_event_type = 'Lock' AND b.pid = ANY (pg_blocking_pids(w.pid)))
     SELECT a.pid::text AS pid, coalesce(a.xact_start::text, 'xmin ' || a.backend_xmin::text) AS transaction, a.usename AS user,
            nullif(concat_ws(' ', nullif(a.application_name, ''), host(a.client_addr)), '') AS client,
            a.xact_start::text AS since, a.state, left(a.query, 200) AS query
       FROM pg_stat_activity a
      WHERE a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND a.pid <> pg_backend_pid() AND a.backend_xmin IS NOT NULL AND a.usesysid IS NOT NULL
        AND coalesce(a.backend_type, 'client backend') = 'client backend'
        AND NOT coalesce(a.state = 'active' AND a.xact_start = a.query_start, false)
        AND a.pid NOT IN (SELECT pid FROM behind)
      ORDER BY a.xact_start, a.pid`,
    [lockHolder],
  );
  return rows.map((r) => ({
    session: r.pid,
    transaction: r.transaction,
    user: r.user,
    client: r.client,
    since: r.since,
    state: r.state,
    query: r.query === null ? null : String(r.query).replace(/\s+/g, ' '),
  }));
}
