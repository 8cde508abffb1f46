import { startExtraMariadb, type ExtraMariadb } from './extra-mariadb.js';
import { startExtraPostgres, startExtraStandby, type ExtraPostgres } from './extra-postgres.js';
import type { Database } from './database.js';
import { mysqlDatabase } from './mysql.js';
import { postgresDatabase } from './pg.js';
import { OwnedIds, type Statement } from './workload.js';

/**
 * The fault matrix's axes (test/fault-matrix.test.ts), shared with the manual's check
 * (test/docs.test.ts): docs/crash-and-resume.md has a line for every cell, and no other. Below them,
 * the servers a fault may break (of the test's own), the cells' table and its writes.
 */
export const FAULTS = ['the server restarted', "shadowcut's sessions killed"] as const;
/** The phases a fault lands in, as the run's JSON log names them. */
export const PHASES = ['setup', 'copy', 'catch-up', 'verify', 'postponed', 'cutover', 'cleanup', 'revert window'] as const;
export type Fault = (typeof FAULTS)[number];
export type Phase = (typeof PHASES)[number];

/** Rows in each cell's table: a copy of a second or two, long enough for a fault to land in. */
export const ROWS = 30_000;

export interface Server {
  /** What the writers and the oracle use: another account (MariaDB) or application name (PostgreSQL) than shadowcut's. */
  db: Database;
  /** shadowcut's own URL. */
  url: string;
  restart(): Promise<void>;
  /** Ends every session of shadowcut's on the server, as a proxy's idle timeout or a DBA's KILL would. */
  killShadowcut(): Promise<number>;
  /** PostgreSQL's server, for a standby of it. */
  server?: ExtraPostgres;
  stop(): Promise<void>;
}

export async function mariadb(): Promise<Server> {
  // utf8mb4, as scripts/servers.sh starts the shared ones (the randomized tester writes emoji).
  const server: ExtraMariadb = await startExtraMariadb(['--character-set-server=utf8mb4', '--collation-server=utf8mb4_general_ci']);
  const root = await server.root();
  await root.query(`CREATE DATABASE faults; CREATE USER 'app'@'%' IDENTIFIED BY 'app'; GRANT ALL ON faults.* TO 'app'@'%'`);
  await root.end();
  const db = mysqlDatabase({ url: server.url('faults').replace('shadowcut:shadowcut', 'app:app') });
  return {
    db,
    url: server.url('faults'),
    restart: () => server.restart(),
    async killShadowcut() {
      const ids = await db.query(`SELECT ID FROM information_schema.PROCESSLIST WHERE USER = 'shadowcut'`);
      for (const [id] of ids) await db.query(`KILL ${Number(id)}`).catch(() => {}); // one that ended meanwhile is what was wanted
      return ids.length;
    },
    async stop() {
      await db.close();
      await server.stop();
    },
  };
}

export async function postgres(): Promise<Server> {
  const server: ExtraPostgres = await startExtraPostgres({
    settings: ['wal_level = logical', 'max_replication_slots = 8', 'max_wal_senders = 8'],
    hba: ['host all all 127.0.0.1/32 trust', 'host replication all 127.0.0.1/32 trust'],
  });
  const url = `postgres://postgres@127.0.0.1:${server.port}/postgres`;
  const db = postgresDatabase({ url: `${url}?application_name=writers` });
  return {
    db,
    url,
    server,
    restart: () => server.restart(),
    async killShadowcut() {
      const pids = await db.query(`SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'shadowcut%' AND pid <> pg_backend_pid()`);
      for (const [pid] of pids) await db.query('SELECT pg_terminate_backend($1)', [pid]);
      return pids.length;
    },
    async stop() {
      await db.close();
      await server.stop();
    },
  };
}

/** Both engines' servers of the test's own, for a `describe.each` over the engines. */
export const ENGINES = [
  { name: 'MariaDB', start: mariadb },
  { name: 'PostgreSQL', start: postgres },
];

/** A PostgreSQL of its own with a streaming standby, which a cell stops for a while. */
export async function postgresWithStandby(): Promise<Server & { standbyUrl: string; standbyDown(ms: number): Promise<void> }> {
  const primary = await postgres();
  const standby = await startExtraStandby(primary.server!);
  return {
    ...primary,
    standbyUrl: `postgres://postgres@127.0.0.1:${standby.port}/postgres`,
    standbyDown: (ms) => standby.restart(ms),
    async stop() {
      await standby.stop();
      await primary.stop();
    },
  };
}

export const dialects = {
  mysql: {
    create: (t: string) => `CREATE TABLE ${t} (id INT PRIMARY KEY, qty INT NOT NULL, at DATETIME(6) NOT NULL, body TEXT)`,
    fill: (t: string) =>
      `INSERT INTO ${t} SELECT seq, seq % 50, '2024-01-01 00:00:00.000001' + INTERVAL seq SECOND, REPEAT('b', seq % 300) FROM seq_1_to_${ROWS}`,
    alter: 'ADD COLUMN note VARCHAR(50) NULL, MODIFY qty BIGINT NOT NULL',
    later: 'at + INTERVAL 1 MICROSECOND',
  },
  postgres: {
    create: (t: string) => `CREATE TABLE ${t} (id int PRIMARY KEY, qty int NOT NULL, at timestamptz NOT NULL, body text)`,
    fill: (t: string) =>
      `INSERT INTO ${t} SELECT g, g % 50, '2024-01-01 00:00:00.000001+00'::timestamptz + g * interval '1 second', repeat('b', g % 300) FROM generate_series(1, ${ROWS}) g`,
    alter: 'ALTER COLUMN qty TYPE bigint, ADD COLUMN note text',
    later: `at + interval '1 microsecond'`,
  },
};

/** Updates (the key moved too), deletes and inserts, each writer on ids of its own. */
export function writes(db: Database): (worker: number) => Statement {
  const ids = new OwnedIds(ROWS);
  const p = (n: number) => db.param(n);
  const { later } = dialects[db.kind];
  return (w) => {
    const r = Math.random();
    if (r < 0.5) return { sql: `UPDATE {t} SET qty = qty + 1, at = ${later} WHERE id = ${p(1)}`, values: [ids.pick(w)] };
    if (r < 0.6) return { sql: `UPDATE {t} SET id = ${p(1)} WHERE id = ${p(2)}`, values: [ids.fresh(w), ids.remove(w)] };
    if (r < 0.8) return { sql: `DELETE FROM {t} WHERE id = ${p(1)}`, values: [ids.remove(w)] };
    return { sql: `INSERT INTO {t} (id, qty, at, body) VALUES (${p(1)}, 1, '2025-05-05 05:05:05.000005', 'new')`, values: [ids.fresh(w)] };
  };
}

/** The cell's table and its mirror, made afresh alike (what an earlier cell left dropped). */
export async function twinTables(db: Database, t: string, mirror: string): Promise<void> {
  const { create, fill } = dialects[db.kind];
  await db.drop(t, mirror);
  for (const table of [t, mirror]) {
    await db.query(create(table));
    await db.query(fill(table));
  }
}
