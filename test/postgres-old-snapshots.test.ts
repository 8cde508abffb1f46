// Found in CI (postgres-corpus-keys, writers serialised by an advisory lock): a writer waiting for
// the advisory lock of another writer, whose INSERT waits for the cut-over's lock, was counted as an
// old snapshot, and every cut-over attempt waited for it until its end. It is queued behind the
// cut-over as surely as the INSERT is.
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgOldSnapshots } from '../src/engines/postgres/cutover/old-snapshots.js';
import { pgPool } from './support/pg.js';
import { waitFor } from './support/run.js';

let db: pg.Pool;

beforeAll(async () => {
  db = pgPool();
  await db.query('DROP TABLE IF EXISTS os_t; CREATE TABLE os_t (id int PRIMARY KEY)');
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS os_t');
  await db.end();
});

/** Until `pid` waits for a lock. */
async function waiting(pid: number): Promise<void> {
  const waits = async () => Boolean((await db.query(`SELECT wait_event_type = 'Lock' AS w FROM pg_stat_activity WHERE pid = $1`, [pid])).rows[0]?.w);
  await waitFor(`backend ${pid} waiting for a lock`, waits, null);
}

describe('PostgreSQL: sessions queued behind the cut-over lock', () => {
  it('a session waiting for one that waits for the lock is not an old snapshot; one holding a snapshot of its own is', async () => {
    const [locker, holder, waiter, reader] = [await db.connect(), await db.connect(), await db.connect(), await db.connect()];
    const pid = async (c: pg.PoolClient) => Number((await c.query('SELECT pg_backend_pid() AS p')).rows[0].p);
    const pending: Promise<unknown>[] = [];
    // Read first: a session's queries queue behind the one it waits in.
    const [lockerPid, holderPid, waiterPid, readerPid] = [await pid(locker), await pid(holder), await pid(waiter), await pid(reader)];
    try {
      await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await reader.query('SELECT count(*) FROM pg_class'); // a snapshot, and no lock on the table
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE os_t IN ACCESS EXCLUSIVE MODE');
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock(4243)');
      pending.push(holder.query('INSERT INTO os_t VALUES (1)'));
      await waiting(holderPid);
      await waiter.query('BEGIN');
      pending.push(waiter.query('SELECT pg_advisory_xact_lock(4243)'));
      await waiting(waiterPid);
      const listed = (await pgOldSnapshots(locker, lockerPid)).map((s) => Number(s.session));
      expect(listed).toEqual([readerPid]);
    } finally {
      // In the order they wait for each other: the holder's INSERT, then the waiter's advisory lock.
      await locker.query('ROLLBACK');
      await pending[0]?.catch(() => {});
      await holder.query('ROLLBACK').catch(() => {});
      await Promise.allSettled(pending);
      for (const c of [waiter, reader]) await c.query('ROLLBACK').catch(() => {});
      for (const c of [locker, holder, waiter, reader]) c.release();
    }
  });
});
