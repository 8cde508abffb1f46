import net from 'node:net';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AbortedError } from '../src/core/errors.js';
import { adminPool, differences, migrateMysql, mysqlDatabase, schemaOf } from './support/mysql.js';
import { MirrorWorkload, type Statement } from './support/workload.js';
import { background, runState, waitFor } from './support/run.js';

const SEED = 40_000;
const ALTER = 'ADD COLUMN note VARCHAR(100) NULL, MODIFY qty BIGINT NOT NULL';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: mysql.Pool;
let replica: mysql.Pool;

function replicaUrl(): string {
  const url = process.env.SHADOWCUT_MYSQL_REPLICA_URL;
  if (!url) throw new Error('SHADOWCUT_MYSQL_REPLICA_URL is not set; the vitest global setup starts the servers');
  return url;
}

beforeAll(() => {
  db = adminPool();
  replica = mysql.createPool({ uri: replicaUrl(), connectionLimit: 2 });
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS th_orders, th_orders_mirror, th_orders__old, th_small, th_small__old');
  await db.end();
  await replica.end();
});

async function freshTable(name: string, rows: number): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${name}, ${name}__new, ${name}__old, ${name}__state, ${name}__hb`);
  await db.query(`CREATE TABLE ${name} (id INT PRIMARY KEY, qty INT NOT NULL, label VARCHAR(64), at DATETIME(6) NOT NULL) ENGINE=InnoDB`);
  await db.query(`INSERT INTO ${name} SELECT seq, seq % 13, CONCAT('row ', seq), '2024-01-01 00:00:00.000001' + INTERVAL seq SECOND FROM seq_1_to_${rows}`);
}

/** Every helper table a run can create; none may outlive it, except the old table after a cut-over. */
async function helpers(table: string): Promise<string[]> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    `SELECT TABLE_NAME t FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE ? ORDER BY 1`,
    [`${table.replaceAll('_', '\\_')}\\_\\_%`],
  );
  return rows.map((r) => String(r.t));
}

/** Brings the replica's SQL thread back and waits until it has replayed everything the primary wrote. */
async function resumeReplica(): Promise<void> {
  await replica.query('START SLAVE SQL_THREAD');
  const [[primary]] = await db.query<mysql.RowDataPacket[]>('SELECT @@gtid_binlog_pos AS pos');
  const [[waited]] = await replica.query<mysql.RowDataPacket[]>('SELECT MASTER_GTID_WAIT(?, 60) AS r', [primary.pos]);
  if (Number(waited.r) !== 0) throw new Error('the replica did not catch up within 60 s');
}

/** Updates, inserts, deletes and key changes; worker w owns the ids congruent to w mod 3. */
const nextId = [0, 1, 2].map((w) => 1_000_000 + w);
function writes(worker: number, ids: Set<number>): Statement {
  const pick = () => [...ids][Math.floor(Math.random() * ids.size)];
  const fresh = () => (nextId[worker] += 3);
  const r = Math.random();
  if (r < 0.4 && ids.size) {
    // A client-side value: a server function would differ between the table and its mirror.
    const micros = String(Math.floor(Math.random() * 1_000_000)).padStart(6, '0');
    return { sql: 'UPDATE {t} SET qty = qty + 1, at = ? WHERE id = ?', values: [`2025-06-01 12:00:00.${micros}`, pick()] };
  }
  if (r < 0.65 || ids.size < 100) {
    const id = fresh();
    ids.add(id);
    return { sql: `INSERT INTO {t} (id, qty, label, at) VALUES (?, 1, 'new', '2025-01-01 00:00:00.000002')`, values: [id] };
  }
  if (r < 0.8) {
    const id = pick();
    ids.delete(id);
    return { sql: 'DELETE FROM {t} WHERE id = ?', values: [id] };
  }
  const [from, to] = [pick(), fresh()];
  ids.delete(from);
  ids.add(to);
  return { sql: 'UPDATE {t} SET id = ? WHERE id = ?', values: [to, from] };
}
const owned = [0, 1, 2].map((w) => new Set([...Array(SEED).keys()].map((i) => i + 1).filter((id) => id % 3 === w)));

describe('MariaDB replica lag', () => {
  it('holds back without cutting over while the replica SQL thread is stopped, then finishes with parity under writes', async () => {
    await freshTable('th_orders', SEED);
    await db.query('DROP TABLE IF EXISTS th_orders_mirror');
    await db.query('CREATE TABLE th_orders_mirror LIKE th_orders');
    await db.query('INSERT INTO th_orders_mirror SELECT * FROM th_orders');
    const schemaBefore = await schemaOf(db, 'th_orders');
    const state = runState('th_orders', ALTER, 'mysql', { maxLagMs: 500 });
    const load = new MirrorWorkload(mysqlDatabase(db), ['th_orders', 'th_orders_mirror'], (w) => writes(w, owned[w]));

    await replica.query('STOP SLAVE SQL_THREAD');
    try {
      load.start();
      const run = migrateMysql('th_orders', ALTER, { replicas: [replicaUrl()], state, chunkTimeMs: 50, checksumChunkRows: 5000 });
      const outcome = background(run);
      await waitFor('a throttle on replica lag', () => state.status.state === 'throttled', outcome);
      expect(state.status.throttleReason).toMatch(/^replica lag \d+ ms > 500 ms$/);

      // Held: for as long as the replica stays stopped, nothing is copied and nothing is cut over.
      const copied = state.status.rowsCopied;
      await sleep(3000);
      expect(outcome.settled).toBe(false);
      expect(state.status.state).toBe('throttled');
      expect(state.status.rowsCopied).toBe(copied);
      expect(await schemaOf(db, 'th_orders')).toBe(schemaBefore);
      expect(await helpers('th_orders')).toContain('th_orders__hb');

      await resumeReplica();
      const result = await run;
      await sleep(300); // writes after the cut-over land in the new table
      const stats = await load.stop();

      await db.query(`ALTER TABLE th_orders_mirror ${ALTER}`);
      expect(stats.errors).toEqual([]);
      expect(result.changesApplied).toBeGreaterThan(0);
      expect(state.status.state).toBe('done');
      expect(state.status.maxLagSeenMs).toBeGreaterThan(500);
      expect(state.status.throttledMs.replica).toBeGreaterThan(0);
      expect(await schemaOf(db, 'th_orders')).toBe(await schemaOf(db, 'th_orders_mirror'));
      expect(await differences(db, 'th_orders', 'th_orders_mirror')).toEqual([]);
      expect(await helpers('th_orders')).toEqual(['th_orders__old']);
    } finally {
      await load.stop();
      await resumeReplica();
    }
  });

  it('fails closed on a replica it cannot reach, naming it, and an abort then leaves nothing behind', async () => {
    await freshTable('th_small', 5000);
    const schemaBefore = await schemaOf(db, 'th_small');
    const port = await closedPort();
    const state = runState('th_small', ALTER, 'mysql', {});
    const run = migrateMysql('th_small', ALTER, { replicas: [`mysql://shadowcut:secret@127.0.0.1:${port}/shadowcut_test`], state });
    const outcome = background(run);
    await waitFor('a throttle on the unreachable replica', () => state.status.state === 'throttled', outcome);
    expect(state.status.throttleReason).toMatch(new RegExp(`^replica mysql://shadowcut:\\*\\*\\*@127\\.0\\.0\\.1:${port}/shadowcut_test cannot be measured \\(.*ECONNREFUSED`));

    state.abortReason = 'operator gave up';
    await expect(run).rejects.toThrow(/aborted: operator gave up/);
    expect(await helpers('th_small')).toEqual([]);
    expect(await schemaOf(db, 'th_small')).toBe(schemaBefore);
  });
});

describe('MariaDB server load', () => {
  // Threads_running counts the SHOW STATUS that reads it, so it is never below 1: a limit of 1 always applies.
  it('critical load aborts cleanly, leaving the original as it was and no helper table', async () => {
    await freshTable('th_small', 5000);
    const schemaBefore = await schemaOf(db, 'th_small');
    const run = migrateMysql('th_small', ALTER, { criticalLoad: { Threads_running: 1 } });
    await expect(run).rejects.toThrow(AbortedError);
    await expect(run).rejects.toThrow(/aborted: critical load: Threads_running=\d+ reached 1/);
    expect(await helpers('th_small')).toEqual([]);
    expect(await schemaOf(db, 'th_small')).toBe(schemaBefore);
  });

  it('with --critical-load-hibernate-seconds, critical load holds the copy back instead, and the run goes on once it passes', async () => {
    await freshTable('th_small', 5000);
    const state = runState('th_small', ALTER, 'mysql', { criticalLoad: { Threads_running: 1 } });
    const run = migrateMysql('th_small', ALTER, { state, criticalLoadHibernateSeconds: 1 });
    const outcome = background(run);
    await waitFor('hibernation', () => state.status.state === 'throttled', outcome);
    expect(state.status.throttleReason).toMatch(/^critical load: Threads_running=\d+ reached 1; hibernating 1 s$/);
    expect(state.status.rowsCopied).toBe(0);
    state.set('critical-load', '');
    await run;
    expect(state.status.state).toBe('done');
    expect(state.status.rowsCopied).toBe(5000);
    expect(state.status.throttledMs.critical).toBeGreaterThan(0);
  });

  it('max load holds back without cutting over, and the run goes on once the limit is lifted', async () => {
    await freshTable('th_small', 5000);
    const schemaBefore = await schemaOf(db, 'th_small');
    // The operator's spelling of the name need not match the server's.
    const state = runState('th_small', ALTER, 'mysql', { maxLoad: { threads_running: 1 } });
    const run = migrateMysql('th_small', ALTER, { state });
    const outcome = background(run);
    await waitFor('a throttle on load', () => state.status.state === 'throttled', outcome);
    expect(state.status.throttleReason).toMatch(/^load: threads_running=\d+ >= 1$/);
    await sleep(1000);
    expect(state.status.state).toBe('throttled');
    expect(state.status.rowsCopied).toBe(0);
    expect(await schemaOf(db, 'th_small')).toBe(schemaBefore);

    state.set('max-load', ''); // as `shadowcut set max-load ""` does through the control endpoint
    await run;
    expect(state.status.state).toBe('done');
    const [[count]] = await db.query<mysql.RowDataPacket[]>('SELECT COUNT(*) n, SUM(note IS NULL) nulls FROM th_small');
    expect([Number(count.n), Number(count.nulls)]).toEqual([5000, 5000]);
    expect(await helpers('th_small')).toEqual(['th_small__old']);
  });
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
