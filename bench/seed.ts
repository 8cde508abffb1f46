// The bench table (bench/workloads.ts), seeded server-side (MariaDB's seq_1_to_N, PostgreSQL's generate_series) with the
// same deterministic rows every time, in a database of its own that is dropped and recreated before
// every run. Also: waiting for the replica/standby to catch up between runs, and a check that a run
// really changed the table.
import mysql from 'mysql2/promise';
import pg from 'pg';
import { sleep } from './exec.js';
import { databaseOf, withDatabase } from './servers.js';
import type { Workload } from './workloads.js';

export const BENCH_DB = 'shadowcut_bench';

const CHUNK = 100_000;

export type MysqlConn = mysql.Connection;

export async function mysqlConnect(url: string): Promise<MysqlConn> {
  return mysql.createConnection({ uri: url, multipleStatements: true, dateStrings: true, supportBigNumbers: true, bigNumberStrings: true });
}

/** Drops and recreates the bench database, creates the workload's table and fills it with `rows` rows. */
export async function seedMysql(adminUrl: string, w: Workload, rows: number): Promise<void> {
  const conn = await mysqlConnect(adminUrl);
  const table = w.table;
  try {
    await conn.query(`DROP DATABASE IF EXISTS ${BENCH_DB}; CREATE DATABASE ${BENCH_DB}; USE ${BENCH_DB}`);
    await conn.query(w.mysql.ddl);
    const cols = w.columns.join(', ');
    let haveSeq = true;
    try {
      await conn.query('SELECT seq FROM seq_1_to_1');
    } catch {
      haveSeq = false; // not MariaDB (no SEQUENCE engine): a recursive CTE does the same
    }
    // Chunks keep each transaction (and each binlog event group the replica replays) moderate.
    for (let from = 1; from <= rows; from += CHUNK) {
      const to = Math.min(rows, from + CHUNK - 1);
      if (haveSeq) {
        await conn.query(`INSERT INTO ${table} (${cols}) SELECT ${w.mysql.values('seq', rows)} FROM seq_${from}_to_${to}`);
      } else {
        await conn.query(`SET SESSION cte_max_recursion_depth = ${CHUNK + 10}`);
        await conn.query(
          `INSERT INTO ${table} (${cols}) WITH RECURSIVE s(n) AS (SELECT ${from} UNION ALL SELECT n + 1 FROM s WHERE n < ${to}) ` +
            `SELECT ${w.mysql.values('n', rows)} FROM s`,
        );
      }
    }
    await conn.query(`ANALYZE TABLE ${table}`);
  } finally {
    await conn.end();
  }
}

/**
 * Lets the previous run's aftermath finish before the next one: the replica replays everything,
 * then (private servers only) old binlogs are purged so the disk does not fill over many seeds.
 */
export async function settleMysql(adminUrl: string, replicaUrl: string | undefined, own: boolean, settleMs: number, log: (m: string) => void): Promise<void> {
  const conn = await mysqlConnect(adminUrl);
  try {
    if (replicaUrl) {
      const [rows] = await conn.query('SELECT @@gtid_binlog_pos AS pos');
      const pos = (rows as Array<{ pos: string }>)[0]?.pos ?? '';
      const replica = await mysqlConnect(replicaUrl);
      try {
        const t0 = Date.now();
        const [r] = await replica.query('SELECT MASTER_GTID_WAIT(?, 900) AS w', [pos]);
        const w = Number((r as Array<{ w: number | string }>)[0]?.w);
        if (w !== 0) log(`replica did not reach ${pos} within 900 s; going on`);
        else if (Date.now() - t0 > 2000) log(`waited ${((Date.now() - t0) / 1000).toFixed(1)} s for the replica to catch up`);
      } catch (e) {
        log(`cannot wait for the replica (${(e as Error).message}); going on`);
      } finally {
        await replica.end();
      }
    }
    if (own) await conn.query('FLUSH BINARY LOGS; PURGE BINARY LOGS BEFORE NOW()');
  } finally {
    await conn.end();
  }
  await sleep(settleMs);
}

/**
 * A Galera cluster's aftermath: every node has applied everything (a causal read on each, then its
 * receive queue empty), and the binlogs of the nodes that keep one are purged (private cluster only).
 */
export async function settleGalera(urls: string[], own: boolean, settleMs: number): Promise<void> {
  for (const url of urls) {
    const conn = await mysqlConnect(url);
    try {
      await conn.query('SET STATEMENT wsrep_sync_wait = 1 FOR SELECT 1');
      for (;;) {
        const [rows] = await conn.query("SHOW GLOBAL STATUS LIKE 'wsrep_local_recv_queue'");
        if (Number((rows as Array<{ Value: string }>)[0]?.Value ?? 0) === 0) break;
        await sleep(100);
      }
      const [[bin]] = (await conn.query('SELECT @@log_bin AS b')) as unknown as [Array<{ b: number }>];
      if (own && Number(bin.b) === 1) await conn.query('FLUSH BINARY LOGS; PURGE BINARY LOGS BEFORE NOW()');
    } finally {
      await conn.end();
    }
  }
  await sleep(settleMs);
}

export interface TableState {
  /** The table has the workload's new schema. */
  altered: boolean;
  rows: number;
}

export async function inspectMysql(benchUrl: string, w: Workload, table: string): Promise<TableState> {
  const conn = await mysqlConnect(benchUrl);
  try {
    const [cols] = await conn.query(
      `SELECT COLUMN_NAME AS name, DATA_TYPE AS type FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?`,
      [table],
    );
    const types = new Map((cols as Array<{ name: string; type: string }>).map((c) => [c.name, c.type.toLowerCase()]));
    const [count] = await conn.query(`SELECT COUNT(*) AS n FROM \`${table}\``);
    return {
      altered: w.altered(types),
      rows: Number((count as Array<{ n: string | number }>)[0]?.n),
    };
  } finally {
    await conn.end();
  }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

function pgAdminUrl(url: string): string {
  return databaseOf(url) === BENCH_DB ? withDatabase(url, 'postgres') : url;
}

async function pgRun<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function seedPostgres(serverUrl: string, w: Workload, rows: number): Promise<void> {
  const table = w.table;
  await pgRun(pgAdminUrl(serverUrl), async (c) => {
    // A slot left behind by a failed run would keep DROP DATABASE from working.
    await c.query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`, [BENCH_DB]);
    await c.query(`DROP DATABASE IF EXISTS ${BENCH_DB} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${BENCH_DB}`);
  });
  await pgRun(withDatabase(serverUrl, BENCH_DB), async (c) => {
    await c.query(w.postgres.ddl);
    for (let from = 1; from <= rows; from += CHUNK) {
      const to = Math.min(rows, from + CHUNK - 1);
      await c.query(`INSERT INTO ${table} (${w.columns.join(', ')}) SELECT ${w.postgres.values('g', rows)} FROM generate_series($1::bigint, $2::bigint) AS g`, [
        from,
        to,
      ]);
    }
    await c.query(`SELECT setval(pg_get_serial_sequence('${table}', 'id'), $1)`, [rows]);
    for (const sql of w.postgres.indexes) await c.query(sql);
    // Hint bits and visibility map set now, not by whichever tool reads the table first.
    await c.query(`VACUUM (ANALYZE) ${table}`);
  });
}

export async function settlePostgres(serverUrl: string, standbyUrl: string | undefined, settleMs: number, log: (m: string) => void): Promise<void> {
  const lsn = await pgRun(pgAdminUrl(serverUrl), async (c) => {
    try {
      await c.query('CHECKPOINT');
    } catch (e) {
      log(`CHECKPOINT refused (${(e as Error).message}); going on`);
    }
    return (await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0].lsn;
  });
  if (standbyUrl) {
    try {
      await pgRun(pgAdminUrl(standbyUrl), async (c) => {
        const deadline = Date.now() + 900_000;
        for (;;) {
          const r = await c.query<{ ok: boolean }>('SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS ok', [lsn]);
          if (r.rows[0]?.ok) return;
          if (Date.now() > deadline) {
            log('standby did not catch up within 900 s; going on');
            return;
          }
          await sleep(200);
        }
      });
    } catch (e) {
      log(`cannot wait for the standby (${(e as Error).message}); going on`);
    }
  }
  await sleep(settleMs);
}

export async function inspectPostgres(benchUrl: string, w: Workload, table: string): Promise<TableState> {
  return pgRun(benchUrl, async (c) => {
    const cols = await c.query<{ name: string; type: string }>(
      `SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1`,
      [table],
    );
    const types = new Map(cols.rows.map((r) => [r.name, r.type]));
    const count = await c.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${table}"`);
    return { altered: w.altered(types), rows: Number(count.rows[0].n) };
  });
}
