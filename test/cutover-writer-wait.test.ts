// What shadowcut reports as writers' wait at the cut-over must be what a writer sees: the time its
// write queues behind the cut-over's pending lock request (here, one that waits for a transaction
// holding the table) counts, though the lock holder's own timer starts only once it has the lock.
import { describe, expect, it } from 'vitest';
import { sleep } from '../src/core/engine/retry/backoff.js';
import { databases, migrateOn, useDatabase } from './support/fixture.js';
import { background, runState, waitFor } from './support/run.js';

describe.each(databases)('$name: the writers’ wait at the cut-over', ({ open }) => {
  const db = useDatabase(open, 'ww_t');

  it('counts the time a write queues behind a cut-over lock that waits for another transaction', async () => {
    await db.drop('ww_t');
    await db.query('CREATE TABLE ww_t (id INT PRIMARY KEY, v INT)');
    await db.query(`INSERT INTO ww_t (id, v) SELECT g, g FROM (${db.series(300)}) s`);
    // Holds the table's shared lock (metadata lock, ACCESS SHARE) until it ends: every attempt's lock waits for it.
    const holder = await db.session();
    await holder.query(db.kind === 'postgres' ? 'BEGIN' : 'START TRANSACTION');
    await holder.query('SELECT count(*) FROM ww_t');
    const state = runState('ww_t', 'ADD COLUMN x INT', db.kind);
    const migration = migrateOn(db, 'ww_t', 'ADD COLUMN x INT', { state, lockTimeoutMs: 500, oldSnapshotWaitMs: 0, oldSnapshots: 'proceed' });
    const run = background(migration);
    await waitFor('the cut-over', () => state.status.phase === 'cutover', run);
    // An application's write, timed as the application would, while an attempt's lock request waits.
    await sleep(200);
    const writer = await db.session();
    const began = performance.now();
    const wrote = writer.query('UPDATE ww_t SET v = v + 1 WHERE id = 1').then(() => performance.now() - began);
    await sleep(1000);
    await holder.query('ROLLBACK');
    holder.release();
    await waitFor('the run to end', () => run.settled, null);
    expect(run.error).toBeUndefined();
    const result = await migration;
    const waited = await wrote;
    writer.release();
    // Writes that came during an attempt queued behind its lock request, up to the lock timeout.
    expect(result.cutoverWriterWaitMs).toBeGreaterThanOrEqual(300);
    expect(result.cutoverWriterWaitMs).toBeGreaterThanOrEqual(waited / 2);
  });
});
