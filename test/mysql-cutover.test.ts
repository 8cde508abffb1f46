import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type mysql from 'mysql2/promise';
import { adminPool, helperTables, migrateMysql, mysqlUrl, runCli, schemaOf, tableChecksum } from './support/mysql.js';
import { background, runState, waitFor } from './support/run.js';
import { createMysqlEngine } from '../src/engines/mysql/index.js';
import { isSwapped, lostRenameOutcome, pendingRename } from '../src/engines/mysql/cutover/rename-outcome.js';
import type { MysqlPlan } from '../src/engines/mysql/schema/plan.js';
import type { Migration } from '../src/core/engine/types.js';
import { qualified } from '../src/engines/mysql/server/sql.js';

let db: mysql.Pool;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  db = adminPool();
});

afterAll(async () => {
  await db.query(
    'DROP TABLE IF EXISTS c_lock, c_lock__new, c_lock__old, c_kill, c_kill__new, c_kill__old, c_auto, c_auto__old, c_lost, c_lost__new, c_lost__old',
  );
  await db.end();
});

async function freshTable(name: string, rows: number) {
  await db.query(`DROP TABLE IF EXISTS ${name}, ${name}__new, ${name}__old`);
  await db.query(`CREATE TABLE ${name} (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64) NOT NULL, pad CHAR(200) NOT NULL DEFAULT '')`);
  await db.query(`INSERT INTO ${name} (id, v) SELECT seq, MD5(seq) FROM seq_1_to_${rows}`);
}

/** Inserts one row at a time until stopped; returns how many succeeded and the errors. */
function writer(table: string) {
  let running = true;
  const errors: string[] = [];
  let written = 0;
  const done = (async () => {
    while (running) {
      try {
        await db.query(`INSERT INTO ${table} (v) VALUES ('w')`);
        written++;
      } catch (e) {
        errors.push((e as Error).message);
      }
      await sleep(5);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return { written, errors };
    },
  };
}

describe('cut-over', () => {
  it('carries the AUTO_INCREMENT counter: ids of rows inserted and deleted before they were applied are not handed out again', async () => {
    await freshTable('c_auto', 2000);
    const alter = 'ADD COLUMN note INT NULL';
    const state = runState('c_auto', alter, 'mysql');
    const run = background(migrateMysql('c_auto', alter, { state, postponeCutover: true, dropOld: true }));
    await waitFor('the postponed cut-over', () => state.status.state === 'postponed', run);
    // Inserted and deleted in one transaction: when the keys are applied, the rows are gone.
    const conn = await db.getConnection();
    await conn.query('BEGIN');
    for (let i = 0; i < 10; i++) await conn.query("INSERT INTO c_auto (v) VALUES ('gone')");
    await conn.query("DELETE FROM c_auto WHERE v = 'gone'");
    await conn.query('COMMIT');
    conn.release();
    state.cutoverRequested = true;
    await waitFor('the run to end', () => run.settled, null, 30_000);
    expect(run.error).toBeUndefined();
    const [result] = await db.query<mysql.ResultSetHeader>("INSERT INTO c_auto (v) VALUES ('after')");
    expect(result.insertId).toBe(2011);
  });

  it('leaves the counter to an ALTER that sets AUTO_INCREMENT itself, as the native ALTER does (gh-ost corpus: autoinc-copy-deletes-user-defined)', async () => {
    await freshTable('c_auto', 2000);
    await db.query('DELETE FROM c_auto WHERE id > 1990');
    await migrateMysql('c_auto', 'ADD COLUMN note INT NULL, AUTO_INCREMENT = 1995', { dropOld: true });
    const [result] = await db.query<mysql.ResultSetHeader>("INSERT INTO c_auto (v) VALUES ('after')");
    expect(result.insertId).toBe(1995);
  });

  it('gives up cleanly when another session keeps the lock: original unchanged and serving, nothing left behind', async () => {
    await freshTable('c_lock', 2000);
    const schemaBefore = await schemaOf(db, 'c_lock');
    const blocker = await db.getConnection();
    // READ COMMITTED: a lock holder only; at REPEATABLE READ it would also be a reader older than the
    // cut-over, which the cut-over waits for before it tries the lock (test/cutover-readers.test.ts).
    await blocker.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
    await blocker.query('BEGIN');
    await blocker.query('SELECT * FROM c_lock LIMIT 1'); // holds a metadata lock until COMMIT
    const w = writer('c_lock');
    try {
      await expect(migrateMysql('c_lock', 'ADD COLUMN x INT', { lockTimeoutMs: 200, cutoverAttempts: 3 })).rejects.toThrow(
        /cut-over failed 3 times.*original table is unchanged/,
      );
    } finally {
      await blocker.query('COMMIT');
      blocker.release();
    }
    const { written, errors } = await w.stop();
    expect(errors).toEqual([]);
    expect(written).toBeGreaterThan(0);
    expect(await schemaOf(db, 'c_lock')).toBe(schemaBefore);
    const [[n]] = await db.query<mysql.RowDataPacket[]>('SELECT COUNT(*) n FROM c_lock');
    expect(Number(n.n)).toBe(2000 + written);
    expect(await helperTables(db, 'c_lock')).toEqual([]);
  });

  it('retries with backoff and succeeds once the lock is released', async () => {
    await freshTable('c_lock', 2000);
    const blocker = await db.getConnection();
    await blocker.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED'); // a lock holder only, as above
    await blocker.query('BEGIN');
    await blocker.query('SELECT * FROM c_lock LIMIT 1');
    // Held until an attempt has given up and the next one began.
    const state = runState('c_lock', 'ADD COLUMN x INT', 'mysql');
    const release = waitFor('a second cut-over attempt', () => state.status.cutoverAttempts >= 2, null, 60_000).then(async () => {
      await blocker.query('COMMIT');
      blocker.release();
    });
    const result = await migrateMysql('c_lock', 'ADD COLUMN x INT', { lockTimeoutMs: 200, cutoverAttempts: 20, state });
    await release;
    expect(result.cutoverAttempts).toBeGreaterThan(1);
    expect(await schemaOf(db, 'c_lock')).toMatch(/`x` int/);
    expect(await helperTables(db, 'c_lock')).toEqual(['c_lock__old']);
  });
});

describe('kill -9 during the copy', () => {
  it('leaves the original untouched, and cleanup removes what the dead run left', async () => {
    await freshTable('c_kill', 200_000);
    const before = await tableChecksum(db, 'c_kill');
    const cli = fileURLToPath(new URL('../dist/bin/shadowcut.js', import.meta.url));
    const child = spawn(
      process.execPath,
      [cli, 'migrate', '--force-copy', '--url', mysqlUrl(), '--table', 'c_kill', '--alter', 'ADD COLUMN x INT', '--execute', '--chunk-time-ms', '5'],
      {
        stdio: 'ignore',
      },
    );
    const exited = new Promise((r) => child.on('exit', r));
    let copied = 0;
    const copying = async () => {
      if ((await helperTables(db, 'c_kill')).includes('c_kill__new')) {
        const [[row]] = await db.query<mysql.RowDataPacket[]>('SELECT COUNT(*) n FROM c_kill__new');
        copied = Number(row.n);
      }
      return copied > 0;
    };
    // Not failed here on a timeout: the assertions below say what was seen.
    await waitFor('rows in c_kill__new', copying, null, 10_000).catch(() => {});
    child.kill('SIGKILL');
    await exited;
    expect(copied).toBeGreaterThan(0);
    expect(copied).toBeLessThan(200_000);
    expect(await tableChecksum(db, 'c_kill')).toBe(before);
    expect(await helperTables(db, 'c_kill')).toEqual(['c_kill__new']);
    const r = runCli(['cleanup', '--url', '$URL', '--table', 'c_kill']);
    expect(r.code).toBe(0);
    expect(await helperTables(db, 'c_kill')).toEqual([]);
    // And the table can be migrated afterwards.
    await migrateMysql('c_kill', 'ADD COLUMN x INT');
    expect(await schemaOf(db, 'c_kill')).toMatch(/`x` int/);
  });
});

// A RENAME whose session went without an answer (the network, the client's end) may still be waiting
// on the server, or have run: found out, not guessed (cutover/cutover.ts, lostRenameOutcome).
describe('a RENAME whose session is lost', () => {
  const plan = { database: '', table: 'c_lost', shadow: 'c_lost__new', old: 'c_lost__old' } as MysqlPlan;

  async function pair() {
    const [[row]] = await db.query<mysql.RowDataPacket[]>('SELECT DATABASE() AS d');
    plan.database = String(row.d);
    await db.query('DROP TABLE IF EXISTS c_lost, c_lost__new, c_lost__old');
    await db.query('CREATE TABLE c_lost (id INT PRIMARY KEY)');
    await db.query('CREATE TABLE c_lost__new (id INT PRIMARY KEY, note INT)');
  }
  // As the cut-over sends it, every name qualified.
  const rename = () => {
    const [orig, shadow, old] = [plan.table, plan.shadow, plan.old].map((t) => qualified(plan.database, t));
    return `RENAME TABLE ${orig} TO ${old}, ${shadow} TO ${orig}`;
  };

  /**
   * A RENAME of the swap queued behind a session holding the table, and the run's migration to ask
   * about it: `work` gets both, and the holder to let go.
   */
  async function withQueuedRename(
    work: (queued: { migration: Migration; renamer: mysql.PoolConnection; renamed: Promise<unknown>; holder: mysql.PoolConnection }) => Promise<void>,
  ): Promise<void> {
    await pair();
    const holder = await db.getConnection();
    const renamer = await db.getConnection();
    const engine = await createMysqlEngine(mysqlUrl());
    try {
      const migration = await engine.prepare({ url: mysqlUrl(), table: 'c_lost', alter: 'ADD COLUMN note INT' });
      await holder.query('LOCK TABLES c_lost READ');
      const renamed = renamer.query(rename()).catch((error: Error) => error);
      await waitFor('the RENAME to wait', async () => (await pendingRename(db, plan)) === renamer.threadId, null);
      await work({ migration, renamer, renamed, holder });
    } finally {
      await holder.query('UNLOCK TABLES');
      holder.release();
      renamer.destroy(); // one test ends it while it waits
      await engine.close();
    }
  }

  it('still waiting for a lock: it is ended, nothing was swapped, and until then a resume is refused', () =>
    withQueuedRename(async ({ migration, renamer, renamed, holder }) => {
      // A resume asks whether the swap was made: not while the RENAME may still make it.
      await expect(migration.swapped()).rejects.toThrow(/RENAME of .*c_lost is still waiting on the server \(connection \d+\)/);
      const thread = renamer.threadId;
      renamer.destroy(); // no answer will come
      expect(await lostRenameOutcome(db, thread, plan)).toBe(false);
      expect(await renamed).toBeInstanceOf(Error);
      expect(await pendingRename(db, plan)).toBeNull();
      await holder.query('UNLOCK TABLES');
      expect(await isSwapped(db, plan)).toBe(false);
      const [tables] = await db.query<mysql.RowDataPacket[]>("SHOW TABLES LIKE 'c\\_lost%'");
      expect(tables.map((t) => String(Object.values(t)[0])).sort()).toEqual(['c_lost', 'c_lost__new']);
    }));

  it('that ends as a resume asks: the answer waits a moment for it, since the server lists a statement a little after it has answered', () =>
    // Seen under load: cleanup asked right after a swap in the same process, and found its own RENAME
    // still listed. The old look refused at once; this one is the RENAME granted while it asks.
    withQueuedRename(async ({ migration, renamed, holder }) => {
      const asked = migration.swapped();
      await new Promise((r) => setTimeout(r, 100));
      await holder.query('UNLOCK TABLES');
      expect(await renamed).not.toBeInstanceOf(Error);
      expect(await asked).toBe(true);
    }));

  it('that ran before its answer was lost: found made', async () => {
    await pair();
    const renamer = await db.getConnection();
    await renamer.query(rename());
    const thread = renamer.threadId;
    renamer.destroy();
    expect(await lostRenameOutcome(db, thread, plan)).toBe(true);
  });
});
