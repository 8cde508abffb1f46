import mysql from 'mysql2/promise';
import type { MysqlTarget } from './target.js';

/**
 * Sessions keep the server's time zone: DATETIME<->TIMESTAMP conversions and CURRENT_TIMESTAMP
 * defaults of new columns must come out as a native ALTER makes them. NO_AUTO_VALUE_ON_ZERO: a
 * copied id of 0 stays 0 instead of drawing a new AUTO_INCREMENT value.
 */
const SESSION_SETUP = [
  "SET SESSION sql_mode = CONCAT(@@session.sql_mode, ',NO_AUTO_VALUE_ON_ZERO')",
  // Copy and apply read the latest committed rows; READ COMMITTED also avoids gap locks on the original.
  'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
];

/**
 * What shadowcut's sessions on a Galera node start with (`MysqlTarget.totalOrder`): whatever the
 * server's default becomes during a run (a DBA's `SET GLOBAL wsrep_OSU_method = 'RSU'` for a rolling
 * change of their own), the gate, its triggers and the RENAME are made on every node, not on this one
 * alone, which would leave the other nodes' writers at a closed gate and their schema behind.
 */
const TOTAL_ORDER = "SET SESSION wsrep_OSU_method = 'TOI'";

/** Read as each session starts: a pool made before its server was known for a Galera node pins the sessions it opens after. */
function sessionSetup(target: MysqlTarget): string[] {
  return target.totalOrder ? [...SESSION_SETUP, TOTAL_ORDER] : SESSION_SETUP;
}

/** `setup`: statements each of the pool's sessions runs first, after the engine's own. */
export function createPool(target: MysqlTarget, connectionLimit = 4, setup: string[] = []): mysql.Pool {
  const pool = mysql.createPool({ ...target.config, connectionLimit, waitForConnections: true });
  // The callback API is the only hook that runs before the connection is handed out: the core pool's
  // 'connection' event (which the promise pool only passes on) hands over the callback connection.
  pool.pool.on('connection', (conn) => {
    for (const sql of [...sessionSetup(target), ...setup]) conn.query(sql);
  });
  return pool;
}

export async function connectOne(target: MysqlTarget): Promise<mysql.Connection> {
  const conn = await mysql.createConnection(target.config);
  // A connection the server kills while it is idle reports it as an 'error' event, which unheard
  // ends the process; the next query on it fails anyway, and that failure is retried or reported.
  conn.on('error', () => {});
  for (const sql of sessionSetup(target)) await conn.query(sql);
  return conn;
}

export interface ServerZone {
  /** What the server calls it (`+02:00`, `UTC`, `Europe/Berlin`, or SYSTEM's zone). */
  name: string;
  /** The offset now, as `+HH:MM`; the binlog reader formats TIMESTAMP keys with it. */
  offset: string;
  /** False for zones with daylight saving, where a TIMESTAMP's text is ambiguous once a year. */
  fixed: boolean;
}

export async function serverZone(pool: mysql.Pool): Promise<ServerZone> {
  const [rows] = await pool.query<mysql.RowDataPacket[]>(
    'SELECT @@session.time_zone AS tz, @@system_time_zone AS sys, TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(), NOW()) AS off',
  );
  const tz = String(rows[0].tz);
  const name = tz === 'SYSTEM' ? String(rows[0].sys) : tz;
  const seconds = Number(rows[0].off);
  const abs = Math.abs(Math.round(seconds / 60));
  const offset = `${seconds < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return { name, offset, fixed: /^[+-]\d{1,2}:\d{2}$/.test(name) || /^(UTC|GMT|Etc\/UTC|Etc\/GMT|Z|UCT|Universal|Zulu)$/i.test(name) };
}
