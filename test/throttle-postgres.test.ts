import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { differences, migratePg, pgPool } from './support/pg.js';
import { background, runState, waitFor } from './support/run.js';

// Large enough that the copy outlasts --max-lag-ms even on a fast machine: lag from a fresh heartbeat starts at 0.
const SEED = 300_000;
const ALTER = `ADD COLUMN note text DEFAULT 'none', ALTER COLUMN qty TYPE bigint`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: pg.Pool;
let standby: pg.Pool;
let standbyUrl: string;

beforeAll(() => {
  db = pgPool();
  standbyUrl = process.env.SHADOWCUT_PG_STANDBY_URL ?? '';
  if (!standbyUrl) throw new Error('SHADOWCUT_PG_STANDBY_URL is not set; the vitest global setup starts the servers');
  standby = new pg.Pool({ connectionString: standbyUrl, max: 2 });
});

afterAll(async () => {
  await db.query('DROP TABLE IF EXISTS tp_orders, tp_orders_mirror, tp_orders__old, tp_small, tp_small__old');
  await db.end();
  await standby.end();
});

async function freshTable(name: string, rows: number): Promise<void> {
  await db.query(`DROP TABLE IF EXISTS ${name}, ${name}__new, ${name}__old, ${name}__state, ${name}__hb`);
  await db.query(`CREATE TABLE ${name} (id int8 PRIMARY KEY, qty int NOT NULL, label text, at timestamptz NOT NULL)`);
  await db.query(
    `INSERT INTO ${name} SELECT g, g % 13, 'row ' || g, '2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1.000001 second'
       FROM generate_series(1, ${rows}) g`,
  );
}

/** Helper tables, slots and publications a run can leave; only the old table may outlive a cut-over. */
async function helpers(table: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT relname AS name FROM pg_class WHERE relname LIKE $1 AND relkind = 'r'
     UNION ALL SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $2
     UNION ALL SELECT pubname FROM pg_publication WHERE pubname LIKE $2 ORDER BY 1`,
    [`${table.replaceAll('_', '\\_')}\\_\\_%`, `shadowcut\\_${table.replaceAll('_', '\\_')}\\_%`],
  );
  return rows.map((r) => r.name);
}

async function columns(table: string): Promise<string[]> {
  const { rows } = await db.query(
    `SELECT attname || ' ' || format_type(atttypid, atttypmod) AS c FROM pg_attribute
      WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  );
  return rows.map((r) => r.c);
}

/** Resumes replay and waits until the standby has replayed everything the primary wrote so far. */
async function resumeStandby(): Promise<void> {
  await standby.query('SELECT pg_wal_replay_resume()');
  const { rows } = await db.query('SELECT pg_current_wal_lsn() AS lsn');
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { rows: replayed } = await standby.query('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done', [rows[0].lsn]);
    if (replayed[0].done) return;
    if (Date.now() > deadline) throw new Error('the standby did not catch up within 60 s');
    await sleep(50);
  }
}

/**
 * Writers applying each statement to the table and its mirror in one transaction. Worker w owns
 * the ids congruent to w mod 3, so writers never conflict: any error is shadowcut's.
 */
function mirrorWorkload(tables: [string, string]) {
  let running = true;
  const errors: string[] = [];
  let transactions = 0;
  const nextId = [0, 1, 2].map((w) => 1_000_000 + w);
  const owned = [0, 1, 2].map((w) => [...Array(SEED).keys()].map((i) => i + 1).filter((id) => id % 3 === w));
  const statement = (w: number): [string, unknown[]] => {
    const ids = owned[w];
    const i = Math.floor(Math.random() * ids.length);
    const r = Math.random();
    const micros = String(Math.floor(Math.random() * 1_000_000)).padStart(6, '0');
    if (r < 0.4) return ['UPDATE {t} SET qty = qty + 1, at = $1 WHERE id = $2', [`2025-06-01 12:00:00.${micros}+00`, ids[i]]];
    if (r < 0.65 || ids.length < 100) {
      ids.push((nextId[w] += 3));
      return [`INSERT INTO {t} (id, qty, label, at) VALUES ($1, 1, 'new', '2025-01-01 00:00:00.000002+00')`, [nextId[w]]];
    }
    if (r < 0.8) return ['DELETE FROM {t} WHERE id = $1', ids.splice(i, 1)];
    const from = ids[i];
    ids[i] = nextId[w] += 3;
    return ['UPDATE {t} SET id = $1 WHERE id = $2', [ids[i], from]];
  };
  const loop = async (w: number) => {
    const client = await db.connect();
    try {
      while (running) {
        const [sql, values] = statement(w);
        try {
          await client.query('BEGIN');
          for (const table of tables) await client.query(sql.replaceAll('{t}', table), values);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          errors.push((error as Error).message);
        }
        transactions++;
        await sleep(2);
      }
    } finally {
      client.release();
    }
  };
  const loops = [0, 1, 2].map(loop);
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { transactions, errors };
    },
  };
}

describe('PostgreSQL standby lag', () => {
  it('holds back without cutting over while the standby replay is paused, then finishes with parity under writes', async () => {
    await freshTable('tp_orders', SEED);
    await db.query('DROP TABLE IF EXISTS tp_orders_mirror');
    await db.query('CREATE TABLE tp_orders_mirror (LIKE tp_orders INCLUDING ALL)');
    await db.query('INSERT INTO tp_orders_mirror SELECT * FROM tp_orders');
    const columnsBefore = await columns('tp_orders');
    const state = runState('public.tp_orders', ALTER, 'postgres', { maxLagMs: 500 });

    await standby.query('SELECT pg_wal_replay_pause()');
    const load = mirrorWorkload(['tp_orders', 'tp_orders_mirror']);
    try {
      const run = migratePg('tp_orders', ALTER, { replicas: [standbyUrl], state, chunkTimeMs: 50, checksumChunkRows: 5000 });
      const outcome = background(run);
      await waitFor('a throttle on standby lag', () => state.status.state === 'throttled', outcome);
      expect(state.status.throttleReason).toMatch(/^replica lag \d+ ms > 500 ms$/);

      // Held: for as long as replay stays paused, nothing is copied and nothing is cut over.
      const copied = state.status.rowsCopied;
      await sleep(3000);
      expect(outcome.settled).toBe(false);
      expect(state.status.state).toBe('throttled');
      expect(state.status.rowsCopied).toBe(copied);
      expect(await columns('tp_orders')).toEqual(columnsBefore);
      expect(await helpers('tp_orders')).toContain('tp_orders__hb');

      await resumeStandby();
      const result = await run;
      await sleep(300); // writes after the cut-over land in the new table
      const stats = await load.stop();

      await db.query(`ALTER TABLE tp_orders_mirror ${ALTER}`);
      expect(stats.errors).toEqual([]);
      expect(result.changesApplied).toBeGreaterThan(0);
      expect(state.status.state).toBe('done');
      expect(state.status.maxLagSeenMs).toBeGreaterThan(500);
      expect(state.status.throttledMs.replica).toBeGreaterThan(0);
      expect(await columns('tp_orders')).toEqual(await columns('tp_orders_mirror'));
      expect(await differences(db, 'tp_orders', 'tp_orders_mirror')).toEqual([]);
      expect(await helpers('tp_orders')).toEqual(['tp_orders__old']);
    } finally {
      await load.stop();
      await resumeStandby();
    }
  });

  it('fails closed on a standby it cannot reach, naming it, and an abort then leaves nothing behind', async () => {
    await freshTable('tp_small', 5000);
    const columnsBefore = await columns('tp_small');
    const port = await closedPort();
    const state = runState('public.tp_small', ALTER, 'postgres', {});
    const run = migratePg('tp_small', ALTER, { replicas: [`postgres://postgres:secret@127.0.0.1:${port}/shadowcut_test`], state });
    const outcome = background(run);
    await waitFor('a throttle on the unreachable standby', () => state.status.state === 'throttled', outcome);
    expect(state.status.throttleReason).toMatch(new RegExp(`^replica postgres://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${port}/shadowcut_test cannot be measured \\(.*ECONNREFUSED`));

    state.abortReason = 'operator gave up';
    await expect(run).rejects.toThrow(/aborted: operator gave up/);
    expect(await helpers('tp_small')).toEqual([]);
    expect(await columns('tp_small')).toEqual(columnsBefore);
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

describe('--throttle-query (PostgreSQL)', () => {
  it('holds the copy back while it returns more than 0, then lets the run finish with parity', async () => {
    await freshTable('tp_small', 5_000);
    await db.query('DROP TABLE IF EXISTS tp_gate, tp_small_copy');
    await db.query('CREATE TABLE tp_gate (closed int NOT NULL)');
    await db.query('INSERT INTO tp_gate VALUES (1)');
    await db.query('CREATE TABLE tp_small_copy AS SELECT * FROM tp_small');
    const state = runState('public.tp_small', ALTER, 'postgres');
    const run = migratePg('tp_small', ALTER, { state, throttleQuery: 'SELECT sum(closed) FROM tp_gate' });
    const watch = background(run);
    try {
      await waitFor('the throttle query to hold the copy back', () => state.status.throttleReason === 'throttle query returned 1', watch);
      expect(state.status.rowsCopied).toBe(0);
      await db.query('UPDATE tp_gate SET closed = 0');
      expect((await run).rowsCopied).toBe(5_000);
    } finally {
      await db.query('DROP TABLE tp_gate');
    }
    await db.query(`ALTER TABLE tp_small_copy ADD PRIMARY KEY (id), ${ALTER}`);
    expect(await differences(db, 'tp_small', 'tp_small_copy')).toEqual([]);
    await db.query('DROP TABLE tp_small_copy');
  });
});
