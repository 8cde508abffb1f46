import mysql from 'mysql2/promise';
import { UserError } from '../../../core/errors.js';
import { readPrivateFile, redactUrl } from '../../../core/secrets.js';

export interface MysqlTarget {
  config: mysql.PoolOptions;
  database: string;
}

/** mysql://user:pass@host:port/db -> connection settings; the database is required. */
export function parseMysqlUrl(url: string): MysqlTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--url is not a valid URL: ${redactUrl(url)}`);
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new UserError(`--url must start with mysql:// for MySQL/MariaDB (got ${u.protocol}//)`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database) throw new UserError('--url must name the database, e.g. mysql://user:pass@host:3306/shop');
  return {
    database,
    config: {
      host: u.hostname || '127.0.0.1',
      port: u.port ? Number(u.port) : 3306,
      user: decodeURIComponent(u.username || 'root'),
      password: mysqlPassword(u),
      database,
      socketPath: u.searchParams.get('socket') ?? undefined,
      // Values that reach the client stay exact (invariant 2): dates and DECIMALs as the server's
      // text, 64-bit integers as strings when they do not fit a double, binary as Buffers.
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: true,
      charset: 'utf8mb4_general_ci',
      connectTimeout: 10_000,
    },
  };
}

/**
 * The password, from the first place that has one: the URL (its userinfo, or `?password=`), the
 * `[client]` section of the option file `?defaults-file=PATH` names (as `mysql --defaults-file`;
 * refused unless private to its owner), or $MYSQL_PWD (the mysql client's own variable). The last
 * two keep it out of `ps`.
 */
function mysqlPassword(u: URL): string {
  if (u.password) return decodeURIComponent(u.password);
  const given = u.searchParams.get('password');
  if (given !== null) return given;
  const file = u.searchParams.get('defaults-file');
  const fromFile = file === null ? null : optionFilePassword(readPrivateFile(file, 'the option file'));
  return fromFile ?? process.env.MYSQL_PWD ?? '';
}

/** `password=` in the `[client]` section of a MySQL option file; quotes around the value are removed, as mysql does. */
function optionFilePassword(text: string): string | null {
  let section = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) section = header[1].trim().toLowerCase();
    const value = /^password\s*=\s*(.*)$/.exec(line);
    if (section === 'client' && value) return value[1].replace(/^(['"])(.*)\1$/, '$2');
  }
  return null;
}

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

export function createPool(target: MysqlTarget, connectionLimit = 4): mysql.Pool {
  const pool = mysql.createPool({ ...target.config, connectionLimit, waitForConnections: true });
  // The callback API is the only hook that runs before the connection is handed out: the core pool's
  // 'connection' event (which the promise pool only passes on) hands over the callback connection.
  pool.pool.on('connection', (conn) => {
    for (const sql of SESSION_SETUP) conn.query(sql);
  });
  return pool;
}

export async function connectOne(target: MysqlTarget): Promise<mysql.Connection> {
  const conn = await mysql.createConnection(target.config);
  // A connection the server kills while it is idle reports it as an 'error' event, which unheard
  // ends the process; the next query on it fails anyway, and that failure is retried or reported.
  conn.on('error', () => {});
  for (const sql of SESSION_SETUP) await conn.query(sql);
  return conn;
}

/** Turns connection failures into one operator-readable line. */
export function describeConnectError(error: unknown, url: string): Error {
  const e = error as { code?: string; message?: string };
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND' || e.code === 'ETIMEDOUT' || e.code === 'ER_ACCESS_DENIED_ERROR' || e.code === 'ER_BAD_DB_ERROR') {
    return new UserError(`cannot connect to ${redactUrl(url)}: ${e.message ?? e.code}`);
  }
  return error as Error;
}

const TRANSIENT_CODES = new Set([
  'PROTOCOL_CONNECTION_LOST',
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'ER_CON_COUNT_ERROR',
  'ER_LOCK_DEADLOCK',
  // capture/binlog/binlog.ts: the binlog reader failed inside itself; reopened, with a bound (core/migrate/applier.ts).
  'BINLOG_READER_BROKEN',
]);

/** A dropped connection, a restarting server, or a deadlock: the same step can simply be tried again. */
export function isTransientMysqlError(error: unknown): boolean {
  const e = error as { code?: string; fatal?: boolean };
  return TRANSIENT_CODES.has(e.code ?? '') || (e.fatal === true && e.code !== 'ER_ACCESS_DENIED_ERROR');
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
