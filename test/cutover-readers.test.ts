// A transaction whose snapshot is older than the swap reads the new table wrongly once it first opens
// it after the swap: PostgreSQL reads it with the old snapshot (here: empty, the snapshot predates
// the copy), InnoDB fails it with error 1412. The oracle: such a reader reads the table after the
// run reached its cut-over and sees every row, because the cut-over waited for it; or the run
// refuses, names it, and swaps nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../src/core/engine/retry/backoff.js';
import type { MigrateResult } from '../src/core/run/config.js';
import { silentReporter } from '../src/core/report/reporter.js';
import type { RunState } from '../src/core/run/run-state.js';
import { databases, migrateOn, type Database, type Session } from './support/fixture.js';
import { keepTrxListOld } from './support/mysql.js';
import { runState, waitFor } from './support/run.js';
import { withMigration } from './support/wrap.js';

const ROWS = 300;

describe.each(databases)('$name: the cut-over and readers older than it', ({ open, kind }) => {
  let db: Database;
  const table = 'cr_orders';
  const other = 'cr_other';
  const idOf = kind === 'postgres' ? 'SELECT pg_backend_pid()' : 'SELECT CONNECTION_ID()';
  const label = kind === 'postgres' ? 'pid' : 'connection';

  beforeAll(async () => {
    db = open();
    await db.drop(other);
    await db.query(`CREATE TABLE ${other} (id INT PRIMARY KEY)`);
    await db.query(`INSERT INTO ${other} (id) VALUES (1)`);
  });
  afterAll(async () => {
    await db.drop(table, other);
    await db.close();
  });

  async function fresh() {
    await db.drop(table);
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v INT)`);
    await db.query(`INSERT INTO ${table} (id, v) SELECT g, g FROM (${db.series(ROWS)}) s`);
  }

  /** A session whose transaction took its snapshot (a consistent read of another table) before the run began. */
  async function reader(isolation = 'REPEATABLE READ'): Promise<{ session: Session; id: string }> {
    const session = await db.session();
    const id = String((await session.query(idOf))[0][0]);
    if (kind === 'postgres') await session.query(`BEGIN ISOLATION LEVEL ${isolation}`);
    else await session.query(`SET SESSION TRANSACTION ISOLATION LEVEL ${isolation}`).then(() => session.query('START TRANSACTION'));
    await session.query(`SELECT count(*) FROM ${other}`);
    return { session, id };
  }

  /** How many rows the reader sees in the table, or the error it gets. */
  const count = async (s: Session) =>
    s.query(`SELECT count(*) FROM ${table}`).then(
      (rows) => Number(rows[0][0]),
      (error: Error) => error.message,
    );

  /** Resolves once the run says it waits for (or postponed for) `id`, or once the run is over, whichever comes first. */
  async function reachedReader(state: RunState, id: string, run: Promise<unknown>, until: (s: RunState) => boolean): Promise<boolean> {
    let over = false;
    let reached = false;
    void run.then(
      () => (over = true),
      () => (over = true),
    );
    await waitFor(
      `the run waiting for ${id}, or its end`,
      () => over || (reached = state.status.oldSnapshots.some((r) => r.session === id) && until(state)),
      null,
      300_000,
    );
    return reached;
  }

  it('waits for a REPEATABLE READ reader older than it, which then reads every row, and cuts over once it ends', async () => {
    await fresh();
    const { session, id } = await reader();
    const state = runState(table, 'ADD COLUMN x INT', kind);
    const run = migrateOn(db, table, 'ADD COLUMN x INT', { state, oldSnapshotWaitMs: 600_000 });
    try {
      // Without the wait the run is over here, and the reader's first look at the table comes after the swap.
      const waited = await reachedReader(state, id, run, () => true);
      expect(await count(session)).toBe(ROWS);
      expect(waited).toBe(true);
      await session.query('COMMIT');
    } finally {
      await session.query('ROLLBACK').catch(() => {});
      session.release();
    }
    const result: MigrateResult = await run;
    expect(result.state.status.oldSnapshots.find((r) => r.session === id)?.outcome).toBe('ended');
    expect(Number((await db.query(`SELECT count(*) FROM ${table} WHERE x IS NULL`))[0][0])).toBe(ROWS);
  });

  it('by default (--old-snapshots fail), names the reader in one line on stderr and swaps nothing', async () => {
    await fresh();
    const { session, id } = await reader();
    try {
      const before = await db.schema(table);
      const args = ['migrate', '--force-copy', '--url', '$URL', '--table', table, '--alter', 'ADD COLUMN x INT', '--execute', '--old-snapshot-wait', '0'];
      const { code, stderr } = await db.cliAsync(args);
      expect(code).not.toBe(0);
      const line = stderr.split('\n').find((l) => l.includes(`${label} ${id} (`));
      expect(line, stderr).toMatch(/older than the cut-over.*nothing was swapped/);
      expect(await db.schema(table)).toBe(before);
      expect(await db.helpers(table)).toEqual([]);
      expect(await count(session)).toBe(ROWS);
    } finally {
      await session.query('ROLLBACK').catch(() => {});
      session.release();
    }
  });

  it('with --old-snapshots postpone, holds the cut-over until "shadowcut cutover", then waits for the reader again', async () => {
    await fresh();
    const { session, id } = await reader();
    const state = runState(table, 'ADD COLUMN x INT', kind);
    const run = migrateOn(db, table, 'ADD COLUMN x INT', { state, oldSnapshotWaitMs: 0, oldSnapshots: 'postpone' });
    try {
      expect(await reachedReader(state, id, run, (s) => s.status.state === 'postponed')).toBe(true);
      expect(await count(session)).toBe(ROWS);
      await session.query('COMMIT');
    } finally {
      await session.query('ROLLBACK').catch(() => {});
      session.release();
    }
    state.cutoverRequested = true;
    const result = await run;
    expect(result.state.status.oldSnapshots.find((r) => r.session === id)?.outcome).toBe('ended');
    expect(await db.helpers(table)).toEqual([`${table}__old`]);
  });

  it('with --old-snapshots proceed, cuts over under the reader and says what it will see', async () => {
    await fresh();
    const { session, id } = await reader();
    const warnings: string[] = [];
    try {
      const reporter = { ...silentReporter, warn: (message: string) => void warnings.push(message) };
      const result = await migrateOn(db, table, 'ADD COLUMN x INT', { reporter, oldSnapshotWaitMs: 0, oldSnapshots: 'proceed' });
      expect(result.state.status.oldSnapshots.find((r) => r.session === id)?.outcome).toBe('cut over under it');
      const warning = warnings.find((w) => w.includes(`${label} ${id} (`));
      expect(warning).toMatch(kind === 'postgres' ? /without the rows written to the new table/ : /error 1412/);
      // What the warning said: the reader now sees the new table wrongly.
      expect(await count(session)).toEqual(kind === 'postgres' ? 0 : expect.stringMatching(/Table definition has changed/));
    } finally {
      await session.query('ROLLBACK').catch(() => {});
      session.release();
    }
  });

  it('looks again under the cut-over lock, for a reader that took its snapshot after the first look', async () => {
    await fresh();
    const { session, id } = await reader();
    // The first look, before the lock, is made to miss it: as if it took its snapshot just after.
    const engine = withMigration(await db.engine(), (migration) => ({
      oldSnapshots: async (locked) => (locked ? migration.oldSnapshots(locked) : []),
    }));
    try {
      const failure = await migrateOn(db, table, 'ADD COLUMN x INT', { oldSnapshotWaitMs: 0, oldSnapshots: 'fail', cutoverAttempts: 1 }, { engine }).then(
        () => null,
        (error: Error) => error.message,
      );
      expect(failure).toContain(`${label} ${id} (`);
      expect(failure).toContain('took a snapshot before the swap');
      expect(await db.helpers(table)).toEqual([]);
      expect(await count(session)).toBe(ROWS);
    } finally {
      await session.query('ROLLBACK').catch(() => {});
      session.release();
      await engine.close();
    }
  });

  it('under the lock, sees such a reader end and cuts over in the same attempt', async () => {
    await fresh();
    const { session, id } = await reader();
    const ending: { commit?: Promise<unknown> } = {};
    const lockedLooks: string[][] = [];
    // As above; the reader ends a moment after the look under the lock finds it. The lock's own
    // session must see it gone: a listing kept from its first look (PostgreSQL keeps the activity it
    // read until its transaction ends, MySQL's INNODB_TRX is a cache its own polling kept old) held
    // the attempt to the end of its budget, every attempt.
    const engine = withMigration(await db.engine(), (migration) => ({
      oldSnapshots: async (locked) => {
        if (!locked) return [];
        const found = await migration.oldSnapshots(locked);
        lockedLooks.push((found ?? []).map((r) => r.session));
        ending.commit ??= sleep(300).then(() => session.query('COMMIT'));
        return found;
      },
    }));
    try {
      const result = await migrateOn(db, table, 'ADD COLUMN x INT', { oldSnapshotWaitMs: 0, oldSnapshots: 'fail', cutoverAttempts: 1 }, { engine });
      expect(result.cutoverAttempts).toBe(1);
      expect(lockedLooks[0]).toContain(id);
      expect(lockedLooks.at(-1)).not.toContain(id);
      await ending.commit;
      expect(await count(session)).toBe(ROWS);
    } finally {
      await ending.commit?.catch(() => {});
      await session.query('ROLLBACK').catch(() => {});
      session.release();
      await engine.close();
    }
  });

  it.runIf(kind === 'mysql')('does not believe a listing older than the lock, which another session keeps reading', async () => {
    await fresh();
    // A monitor reading INNODB_TRX every 20 ms from before the reader began: InnoDB refills that cache
    // only once nobody has read it for 100 ms, so every listing is as it was then, without the reader.
    // It first goes unread a while: a cache kept from an earlier test could show the reader's pooled
    // connection in a transaction of that test.
    await sleep(300);
    const monitor = await db.session();
    const stopMonitor = keepTrxListOld((sql) => monitor.query(sql), 20);
    await sleep(300);
    const { session, id } = await reader();
    try {
      const failure = await migrateOn(db, table, 'ADD COLUMN x INT', { oldSnapshotWaitMs: 0, oldSnapshots: 'fail', cutoverAttempts: 1 }).then(
        () => null,
        (error: Error) => error.message,
      );
      // On a loaded machine the monitor can fall more than 100 ms behind and the cache is refilled:
      // the listing then shows the reader, which is named. Either refusal is right; a cut-over is not.
      expect(failure ?? 'cut over, under a reader the listing did not show').toMatch(new RegExp(`INNODB_TRX|${label} ${id} \\(`));
      expect(await db.helpers(table)).toEqual([]);
      expect(await count(session)).toBe(ROWS);
      await stopMonitor();
      // Read by nobody else, the list shows the reader.
      const named = await migrateOn(db, table, 'ADD COLUMN x INT', { oldSnapshotWaitMs: 0, oldSnapshots: 'fail', cutoverAttempts: 1 }).then(
        () => null,
        (error: Error) => error.message,
      );
      expect(named).toContain(`${label} ${id} (`);
      expect(await count(session)).toBe(ROWS);
    } finally {
      await stopMonitor().catch(() => {});
      monitor.release();
      await session.query('ROLLBACK').catch(() => {});
      session.release();
    }
  });

  it.runIf(kind === 'postgres')('is not held up by a READ COMMITTED transaction idle between statements', async () => {
    await fresh();
    const committed = await reader('READ COMMITTED');
    const repeatable = await reader();
    try {
      const failure = await migrateOn(db, table, 'ADD COLUMN x INT', { oldSnapshotWaitMs: 0, oldSnapshots: 'fail' }).then(
        () => null,
        (error: Error) => error.message,
      );
      expect(failure).toContain(`${label} ${repeatable.id} (`);
      expect(failure).not.toContain(`${label} ${committed.id} (`);
      await repeatable.session.query('ROLLBACK');
      await migrateOn(db, table, 'ADD COLUMN x INT', { oldSnapshotWaitMs: 0, oldSnapshots: 'fail' });
      expect(await count(committed.session)).toBe(ROWS);
    } finally {
      for (const { session } of [committed, repeatable]) {
        await session.query('ROLLBACK').catch(() => {});
        session.release();
      }
    }
  });
});
