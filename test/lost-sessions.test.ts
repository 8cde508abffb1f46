// Found by the chaos tester (MySQL seed 9, "killed a server session"): a session lost in the middle
// of the verification ended the run with an internal error and a stack trace. A lost session is an
// outage to ride out: the checksum round starts again on a fresh view.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnknownSwapError } from '../src/core/engine/errors.js';
import type { ConsistentView, KeyRange } from '../src/core/engine/types.js';
import { databases, migrateOn, type Database } from './support/fixture.js';
import { withMigration } from './support/wrap.js';
import { background, runState, waitFor } from './support/run.js';

/** The sessions holding a consistent view's snapshot open: a transaction that has read something. */
const viewSessions = (db: Database) =>
  db.kind === 'mysql'
    ? 'SELECT trx_mysql_thread_id FROM information_schema.INNODB_TRX WHERE trx_mysql_thread_id <> CONNECTION_ID()'
    : "SELECT pid FROM pg_stat_activity WHERE application_name = 'shadowcut' AND state = 'idle in transaction' AND backend_xmin IS NOT NULL";

/** A table and its mirror, alike. */
async function twins(db: Database, t: string, rows: number): Promise<void> {
  await db.drop(t, `${t}_m`);
  for (const table of [t, `${t}_m`]) {
    await db.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v VARCHAR(20))`);
    await db.query(`INSERT INTO ${table} (id, v) SELECT g, 'x' FROM (${db.series(rows)}) s`);
  }
}

describe.each(databases)('$name: a session lost during the verification', ({ open }) => {
  let db: Database;
  beforeAll(() => {
    db = open();
  });
  afterAll(() => db.close());

  it('starts the checksum round again on a new view, and the run ends equal to a mirror', async () => {
    const t = 'lost_view';
    await twins(db, t, 5000);
    let killed = 0;
    const real = await db.engine();
    // The view's sessions are killed on its second chunk, whether it was opened under a lock or with none (MariaDB).
    const killing = <V extends ConsistentView>(view: V): V => {
      let chunks = 0;
      return Object.assign(Object.create(view) as V, {
        async checksum(range: KeyRange) {
          if (++chunks === 2 && killed === 0) {
            for (const [id] of await db.query(viewSessions(db))) await db.killSession(Number(id));
            killed++;
          }
          return view.checksum(range);
        },
      });
    };
    const engine = withMigration(real, (migration) => ({
      async consistentView(...args: Parameters<typeof migration.consistentView>): Promise<ConsistentView> {
        return killing(await migration.consistentView(...args));
      },
      // Only where the engine has one (MariaDB): PostgreSQL's view is always the locked one.
      ...(migration.snapshotView && {
        async snapshotView(catchUp: () => Promise<void>) {
          const view = await migration.snapshotView!(catchUp);
          return view && killing(view);
        },
      }),
    }));
    try {
      const result = await migrateOn(db, t, 'ADD COLUMN note INT NULL', { checksumChunkRows: 500, dropOld: true }, { engine });
      expect(killed).toBe(1);
      expect(result.checksumRounds).toBeGreaterThanOrEqual(1);
    } finally {
      await real.close();
    }
    await db.query(`ALTER TABLE ${t}_m ADD COLUMN note INT NULL`);
    expect(await db.differences(t, `${t}_m`)).toEqual([]);
  });

  // Found by the chaos tester (PostgreSQL seeds 1 and 81): the session proving the column mapping at
  // verification was killed, and the run ended with an internal error instead of proving it again.
  it('in the mapping proof, proves the mapping again on a new session, and the run ends equal to a mirror', async () => {
    const t = 'lost_proof';
    await twins(db, t, 3000);
    // What the driver reports for a session the server ended (MySQL: the socket closed; PostgreSQL: admin_shutdown).
    const lost = Object.assign(new Error('the session was ended'), { code: db.kind === 'mysql' ? 'PROTOCOL_CONNECTION_LOST' : '57P01' });
    let proofs = 0;
    const real = await db.engine();
    const engine = withMigration(real, (migration) => ({
      async compareWithAlter(...args: Parameters<typeof migration.compareWithAlter>) {
        // The first proof is the preflight's; the second, at verification, loses its session.
        if (++proofs === 2) throw lost;
        return migration.compareWithAlter(...args);
      },
    }));
    try {
      const result = await migrateOn(db, t, 'ADD COLUMN note INT NULL', { dropOld: true }, { engine });
      expect(proofs).toBe(3);
      expect(result.mappingProofs).toHaveLength(2);
    } finally {
      await real.close();
    }
    await db.query(`ALTER TABLE ${t}_m ADD COLUMN note INT NULL`);
    expect(await db.differences(t, `${t}_m`)).toEqual([]);
  });
});

// Found by the chaos tester (PostgreSQL seed 25, copy path; MariaDB Galera seed 20): the cut-over's own
// session was killed while it held the lock, and the run ended with an internal error. Nothing was
// swapped, so the original was untouched: another attempt is what a lock timeout would have had.
describe.each(databases)('$name: the cut-over session lost before its point of no return', ({ open }) => {
  let db: Database;
  beforeAll(() => {
    db = open();
  });
  afterAll(() => db.close());

  it('is another attempt, and the run ends equal to a mirror', async () => {
    const t = 'lost_cutover';
    await twins(db, t, 3000);
    let killed = 0;
    const real = await db.engine();
    const engine = withMigration(real, (migration) => ({
      cutover(options: Parameters<typeof migration.cutover>[0]) {
        return migration.cutover({
          ...options,
          async catchUp(session) {
            if (killed === 0) {
              // The session that holds the lock: PostgreSQL's ACCESS EXCLUSIVE holder, MySQL's LOCK TABLES locker (this very session).
              const holders =
                db.kind === 'postgres'
                  ? await db.query(`SELECT pid FROM pg_locks WHERE relation = '${t}'::regclass AND mode = 'AccessExclusiveLock' AND granted`)
                  : [[(session as unknown as { conn: { threadId: number } }).conn.threadId]];
              for (const [pid] of holders) await db.killSession(Number(pid));
              killed = holders.length;
            }
            return options.catchUp(session);
          },
        });
      },
    }));
    try {
      const result = await migrateOn(db, t, 'ADD COLUMN note INT NULL', { dropOld: true }, { engine });
      expect(killed).toBe(1);
      expect(result.cutoverAttempts).toBe(2);
    } finally {
      await real.close();
    }
    await db.query(`ALTER TABLE ${t}_m ADD COLUMN note INT NULL`);
    expect(await db.differences(t, `${t}_m`)).toEqual([]);
  });
});

// Found by the chaos tester (MySQL seed 63 on the revert path, "killed a server session"): the
// session that made the revert window's log was lost, and the run ended with a stack trace.
describe.each(databases)('$name: a session lost while the revert triggers are made', ({ open }) => {
  let db: Database;
  beforeAll(() => {
    db = open();
  });
  afterAll(() => db.close());

  it('is another attempt, and the window opens', async () => {
    const t = 'lost_revert';
    await twins(db, t, 500);
    let lost = 0;
    const real = await db.engine();
    const engine = withMigration(real, (migration) => ({
      async installReverseCapture(lockTimeoutMs: number) {
        if (lost++ === 0) throw Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'ECONNRESET' });
        return migration.installReverseCapture(lockTimeoutMs);
      },
    }));
    const state = runState(t, 'ADD COLUMN note INT NULL', db.kind);
    try {
      const run = background(migrateOn(db, t, 'ADD COLUMN note INT NULL', { state, revertWindowMs: 600_000 }, { engine }));
      await waitFor('the revert window', () => state.status.state === 'revert-window' && state.status.phase === 'revert window', run, 120_000);
      state.completeRequested = true;
      await waitFor('the end of the window', () => run.settled, null, 60_000);
      if (run.error) throw run.error;
    } finally {
      await real.close();
    }
    expect(lost).toBe(2);
    await db.query(`ALTER TABLE ${t}_m ADD COLUMN note INT NULL`);
    expect(await db.differences(t, `${t}_m`)).toEqual([]);
  });
});

// A session lost after the swap's point of no return (its RENAME or COMMIT sent, no answer): whether
// the swap was made is unknown, so the run stops as it is and the resume looks at the tables.
describe.each(databases)('$name: a swap whose outcome is unknown', ({ open }) => {
  let db: Database;
  beforeAll(() => {
    db = open();
  });
  afterAll(() => db.close());

  it.each([
    ['made', true],
    ['not made', false],
  ])('stops with one line and cleans up nothing; the resume finishes the run (the swap %s)', async (_, made) => {
    const t = made ? 'lost_made' : 'lost_unmade';
    await twins(db, t, 2000);
    const real = await db.engine();
    let stopped = 0;
    const engine = withMigration(real, (migration) => ({
      async cutover(options: Parameters<typeof migration.cutover>[0]) {
        if (stopped++ > 0) return migration.cutover(options);
        if (made) await migration.cutover(options);
        throw new UnknownSwapError(Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST' }));
      },
    }));
    try {
      await expect(migrateOn(db, t, 'ADD COLUMN note INT NULL', { dropOld: true }, { engine })).rejects.toThrow(
        /the session was lost while the swap was being made .*run it again with --resume/,
      );
      // Left for the resume: the checkpoint, and the shadow unless the swap took it.
      const left = await db.helpers(t);
      expect(left).toContain(`${t}__state`);
      expect(left.includes(`${t}__new`)).toBe(!made);
      const result = await migrateOn(db, t, 'ADD COLUMN note INT NULL', { dropOld: true, resume: true }, { engine });
      expect(result.resumed).toBe(true);
      expect(stopped).toBe(made ? 1 : 2);
    } finally {
      await real.close();
    }
    await db.query(`ALTER TABLE ${t}_m ADD COLUMN note INT NULL`);
    expect(await db.differences(t, `${t}_m`)).toEqual([]);
    expect(await db.helpers(t)).toEqual([]);
  });
});
