import type pg from 'pg';
import { LockTimeoutError, ignoreFailure } from '../../../core/engine/errors.js';
import type { WorkWaits } from '../../../core/engine/ports/in-place.js';
import { errorCode } from '../server/errors.js';
import type { Client } from '../server/connect.js';

const POLL_MS = 50;
/** Waits for another transaction to end (its virtual or real transaction id), not for a lock on an object. */
const OLDER_TRANSACTION = ['virtualxid', 'transactionid'];

interface Watch {
  lockWaitSince: number | null;
  olderWaitMs: number;
  lastPoll: number;
  named: Set<number>;
  last: string;
  cancelled: 'lock' | 'older' | null;
}

/**
 * A CONCURRENTLY statement, watched from another connection instead of bounded by `lock_timeout`,
 * which would also count its waits for every older transaction in the database (docs/invariants.md,
 * invariant 11: waits for locks are bounded, work is not cancelled). While it waits for a lock on a
 * relation longer than the lock timeout, it is cancelled as a lock timeout (the caller retries);
 * while it waits for an older transaction to end, that transaction is named and the statement is
 * cancelled only after `waits.snapshotWaitMs` in all. A statement that runs is never cancelled:
 * the cancel itself is conditional on the wait still being there.
 */
export async function runWatched(pool: pg.Pool, client: Client, sql: string, lockTimeoutMs: number, waits: WorkWaits, what: string): Promise<void> {
  const pid = client.processID;
  const watch: Watch = { lockWaitSince: null, olderWaitMs: 0, lastPoll: Date.now(), named: new Set(), last: '', cancelled: null };
  await client.query('SET lock_timeout = 0');
  let done = false;
  const watcher = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (!done)
        await poll(pool, pid, watch, lockTimeoutMs, waits).catch(ignoreFailure('a poll that failed (its connection lost) is tried again at the next tick'));
    }
  })();
  try {
    await client.query(sql);
  } catch (error) {
    if (errorCode(error) !== '57014' || !watch.cancelled) throw error;
    if (watch.cancelled === 'lock') throw new LockTimeoutError(`${what}: lock not granted in time`);
    throw new Error(
      `waited ${watch.olderWaitMs} ms (--snapshot-wait-ms) for older transactions to end${watch.last ? `, last ${watch.last}` : ''}; end it or raise --snapshot-wait-ms`,
    );
  } finally {
    done = true;
    await watcher;
  }
}

async function poll(pool: pg.Pool, pid: number, watch: Watch, lockTimeoutMs: number, waits: WorkWaits): Promise<void> {
  const { rows } = await pool.query(
    `SELECT a.wait_event_type, a.wait_event, b.pid, b.xact_start, b.state, left(b.query, 200) AS query
       FROM pg_stat_activity a LEFT JOIN LATERAL unnest(pg_blocking_pids(a.pid)) AS blocker(pid) ON true
       LEFT JOIN pg_stat_activity b ON b.pid = blocker.pid WHERE a.pid = $1`,
    [pid],
  );
  const now = Date.now();
  const elapsed = now - watch.lastPoll;
  watch.lastPoll = now;
  const first = rows[0];
  const waiting = first?.wait_event_type === 'Lock';
  const older = waiting && OLDER_TRANSACTION.includes(first.wait_event);
  if (!waiting || older) watch.lockWaitSince = null;
  if (waiting && !older) {
    watch.lockWaitSince ??= now - elapsed;
    if (now - watch.lockWaitSince > lockTimeoutMs) await cancelIfWaiting(pool, pid, first.wait_event, watch, 'lock');
    return;
  }
  if (!older) return;
  watch.olderWaitMs += elapsed;
  for (const r of rows) {
    if (r.pid === null) continue;
    watch.last = `pid ${r.pid} (transaction started ${r.xact_start}, ${r.state}: ${String(r.query).replace(/\s+/g, ' ')})`;
    if (!watch.named.has(Number(r.pid))) {
      watch.named.add(Number(r.pid));
      waits.report(`waits for an older transaction to end: ${watch.last}; gives up after --snapshot-wait-ms ${waits.snapshotWaitMs}`);
    }
  }
  if (watch.olderWaitMs > waits.snapshotWaitMs) await cancelIfWaiting(pool, pid, first.wait_event, watch, 'older');
}

async function cancelIfWaiting(pool: pg.Pool, pid: number, event: string, watch: Watch, why: 'lock' | 'older'): Promise<void> {
  watch.cancelled = why;
  const { rows } = await pool.query(
    `SELECT pg_cancel_backend(pid) AS sent FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock' AND wait_event = $2`,
    [pid, event],
  );
  if (!rows.length) watch.cancelled = null;
}
