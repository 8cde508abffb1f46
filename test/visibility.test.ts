// An apply reads only what is visible (docs/invariants.md, invariant 3). Each engine gets a writer whose
// changes are already in the change stream while its commit is still invisible to other sessions,
// held there for as long as the test wants; the apply of those keys must bring the shadow to the
// committed state, not to the state before the commit.
import type mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeBuffer } from '../src/core/migrate/capture/change-buffer.js';
import type { ChangeStream, Engine, Migration } from '../src/core/engine/types.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { createPostgresEngine } from '../src/engines/postgres/index.js';
import { adminPool, differences, mysqlUrl } from './support/mysql.js';
import { migratePg, pgPool, pgUrl, postgresDatabase } from './support/pg.js';
import { background, waitFor } from './support/run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Shadow created, stream open, every row copied: the state in which the copy meets the stream. */
async function copied(engine: Engine, table: string, alter: string, url: string) {
  const migration = await engine.prepare({ url, table, alter });
  await migration.createShadow();
  const buffer = new ChangeBuffer();
  const stream = await migration.changes.open(buffer, undefined, { lockTimeoutMs: 1000, attempts: 1, warn: () => {} });
  await migration.copyRange({ after: null, upTo: null });
  // As the runner: the key before any apply.
  await migration.keylessShadow?.build();
  return { migration, buffer, stream };
}

/** Applies what the stream delivered while the writer's commit is still invisible, then lets it finish. */
async function applyWhileInvisible(migration: Migration, buffer: ChangeBuffer, keys: number, release: () => Promise<void>) {
  await waitFor('the writer’s keys in the stream', () => buffer.size >= keys, null);
  const applying = background(migration.applyKeys(buffer.take(100).keys));
  // Long enough for an apply that does not wait to finish reading the rows as they were.
  await sleep(500);
  await release();
  await waitFor('the apply', () => applying.settled, null);
  if (applying.error) throw applying.error;
}

/**
 * Names a synchronous standby that does not exist, and returns once a commit really waits for it
 * (the setting reaches the committing backends a moment after the reload).
 */
async function absentSynchronousStandby(db: pg.Pool, everyone = false): Promise<void> {
  await db.query(`ALTER SYSTEM SET synchronous_standby_names = 'shadowcut_absent_standby'`);
  // The test servers run with synchronous_commit off; `everyone` makes on the default, as on most servers.
  if (everyone) await db.query('ALTER SYSTEM SET synchronous_commit = on');
  await db.query('SELECT pg_reload_conf()');
  const probe = new pg.Client({ connectionString: pgUrl() });
  await probe.connect();
  probe.on('error', () => {});
  try {
    const pid = Number((await probe.query('SELECT pg_backend_pid() AS p')).rows[0].p);
    for (;;) {
      await probe.query('SET synchronous_commit = on');
      await probe.query('BEGIN');
      // A commit waits only if its transaction wrote WAL.
      await probe.query(`SELECT pg_logical_emit_message(true, 'shadowcut-test', 'probe')`);
      const commit = probe.query('COMMIT');
      let waiting = false;
      for (let i = 0; i < 20 && !waiting; i++) {
        const { rows } = await db.query('SELECT wait_event FROM pg_stat_activity WHERE pid = $1', [pid]);
        waiting = rows[0]?.wait_event === 'SyncRep';
        if (!waiting) await sleep(25);
      }
      if (waiting) await db.query('SELECT pg_cancel_backend($1)', [pid]);
      await commit.catch(() => {});
      if (waiting) return;
    }
  } finally {
    await probe.end();
  }
}

describe('PostgreSQL: a commit waiting for a synchronous standby', () => {
  let db: pg.Pool;
  let engine: Engine;
  let stream: ChangeStream | undefined;
  let migration: Migration | undefined;

  beforeAll(async () => {
    db = pgPool();
    engine = await createPostgresEngine(pgUrl());
    await engine.cleanupLeftovers('vis_pg', { dropOld: true });
    await db.query('DROP TABLE IF EXISTS vis_pg');
    await db.query('CREATE TABLE vis_pg (id int PRIMARY KEY, v text)');
    await db.query(`INSERT INTO vis_pg SELECT g, 'v' || g FROM generate_series(1, 10) g`);
  });

  afterAll(async () => {
    await db.query('ALTER SYSTEM RESET synchronous_standby_names');
    await db.query('SELECT pg_reload_conf()');
    await stream?.stop();
    if (migration) await migration.cleanup({ dropOld: true, cutOver: false });
    await engine.close();
    await db.end();
  });

  it('is applied once visible: the deleted row stays deleted, the update and the insert arrive', async () => {
    const run = await copied(engine, 'vis_pg', 'ADD COLUMN n int', pgUrl());
    ({ stream, migration } = run);
    // Commits wait for a standby that does not exist; shadowcut's own sessions commit locally.
    await absentSynchronousStandby(db);

    const writer = new pg.Client({ connectionString: pgUrl() });
    await writer.connect();
    writer.on('error', () => {});
    const pid = Number((await writer.query('SELECT pg_backend_pid() AS p')).rows[0].p);
    try {
      await writer.query(`SET synchronous_commit = on`);
      await writer.query('BEGIN');
      await writer.query('DELETE FROM vis_pg WHERE id = 5');
      await writer.query(`UPDATE vis_pg SET v = 'changed' WHERE id = 6`);
      await writer.query(`INSERT INTO vis_pg VALUES (11, 'inserted')`);
      const commit = writer.query('COMMIT');
      commit.catch(() => {});
      await waitFor(
        'the writer waiting for the standby',
        async () => {
          const { rows } = await db.query('SELECT wait_event FROM pg_stat_activity WHERE pid = $1', [pid]);
          return rows[0]?.wait_event === 'SyncRep';
        },
        null,
      );
      // Still invisible to everyone else while it waits.
      expect((await db.query('SELECT count(*)::int AS n FROM vis_pg WHERE id = 5')).rows[0].n).toBe('1');

      // Cancelling the wait ends it: the commit, already durable locally, becomes visible.
      await applyWhileInvisible(run.migration, run.buffer, 3, async () => {
        await db.query('SELECT pg_cancel_backend($1)', [pid]);
        await commit;
      });
    } finally {
      await writer.end();
    }
    expect((await db.query('SELECT count(*)::int AS n FROM vis_pg WHERE id = 5')).rows[0].n).toBe('0');
    // The shadow has every column of the original plus n (NULL): compare on the original's columns.
    expect(await postgresDatabase(db).differences('vis_pg', '(SELECT id, v FROM vis_pg__new) s')).toEqual([]);
  });
});

describe('PostgreSQL: a synchronous standby that is gone, and every commit waiting for it', () => {
  // The test's own commits do not wait.
  const db = new pg.Pool({ connectionString: pgUrl(), options: '-c synchronous_commit=local' });
  beforeAll(async () => {
    await db.query('DROP TABLE IF EXISTS vis_sync, vis_sync__new, vis_sync__old');
    await db.query('CREATE TABLE vis_sync (id int PRIMARY KEY, v text)');
    await db.query(`INSERT INTO vis_sync SELECT g, 'v' || g FROM generate_series(1, 5000) g`);
    await absentSynchronousStandby(db, true);
  });
  afterAll(async () => {
    await db.query('ALTER SYSTEM RESET synchronous_commit');
    await db.query('ALTER SYSTEM RESET synchronous_standby_names');
    await db.query('SELECT pg_reload_conf()');
    await db.query('DROP TABLE IF EXISTS vis_sync, vis_sync__new, vis_sync__old');
    await db.end();
  });

  // Each commit of the run (copy, applies, checkpoint, the fence under the cut-over lock, the swap)
  // would wait for it forever; shadowcut's own commits are local.
  it('holds up none of shadowcut’s commits: the migration completes', async () => {
    const result = await migratePg('vis_sync', 'ADD COLUMN n int');
    expect(result.rowsCopied).toBe(5000);
    expect((await db.query(`SELECT count(*) AS n FROM vis_sync WHERE n IS NULL`)).rows[0].n).toBe('5000');
  }, 60_000);
});

describe('MySQL/MariaDB: a commit waiting for a semi-synchronous replica', () => {
  let db: mysql.Pool;
  let engine: Engine;
  let stream: ChangeStream | undefined;

  beforeAll(async () => {
    db = adminPool();
    engine = await createMysqlEngine(mysqlUrl());
    await db.query('DROP TABLE IF EXISTS vis_my, vis_my__new, vis_my__old, vis_my__state, vis_my_expected');
    await db.query('CREATE TABLE vis_my (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB');
    await db.query(`INSERT INTO vis_my VALUES ${Array.from({ length: 10 }, (_, i) => `(${i + 1}, 'v${i + 1}')`).join(',')}`);
  });

  afterAll(async () => {
    await db.query('SET GLOBAL rpl_semi_sync_master_enabled = OFF');
    await stream?.stop();
    await db.query('DROP TABLE IF EXISTS vis_my, vis_my__new, vis_my__old, vis_my_expected');
    await engine.close();
    await db.end();
  });

  it('is applied once visible: the locking read waits for the commit behind its binlog event', async () => {
    const run = await copied(engine, 'vis_my', 'ADD COLUMN n INT', mysqlUrl());
    stream = run.stream;
    // AFTER_SYNC: the transaction is in the binlog (and so in our stream) but not yet committed in
    // InnoDB while it waits for a replica's acknowledgement. No replica here is semi-synchronous,
    // so it waits out the timeout.
    await db.query(`SET GLOBAL rpl_semi_sync_master_wait_point = AFTER_SYNC`);
    await db.query('SET GLOBAL rpl_semi_sync_master_timeout = 3000');
    await db.query('SET GLOBAL rpl_semi_sync_master_wait_no_slave = ON');
    await db.query('SET GLOBAL rpl_semi_sync_master_enabled = ON');
    const writer = await db.getConnection();
    try {
      await writer.query('BEGIN');
      await writer.query('DELETE FROM vis_my WHERE id = 5');
      await writer.query(`UPDATE vis_my SET v = 'changed' WHERE id = 6`);
      await writer.query(`INSERT INTO vis_my VALUES (11, 'inserted')`);
      const commit = writer.query('COMMIT');
      commit.catch(() => {});
      await waitFor(
        'the writer waiting for the acknowledgement',
        async () => {
          const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = ?', [writer.threadId]);
          return /semi-sync|semisync/i.test(String(rows[0]?.STATE));
        },
        null,
      );
      // UPDATE reports before and after images: 4 keys, 3 distinct.
      await applyWhileInvisible(run.migration, run.buffer, 3, async () => {
        await commit;
      });
    } finally {
      writer.release();
    }
    await db.query('CREATE TABLE vis_my_expected LIKE vis_my__new');
    await db.query('INSERT INTO vis_my_expected (id, v) SELECT id, v FROM vis_my');
    expect(await differences(db, 'vis_my__new', 'vis_my_expected')).toEqual([]);
  });
});
