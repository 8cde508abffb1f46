import mysql from 'mysql2/promise';
import { connect, isIP, type Socket } from 'node:net';
import { UserError } from '../../../core/engine/errors.js';
import { readPrivateFile, redactUrl } from '../../../core/engine/connect/secrets.js';
import { firstAccepted, readTlsFile, tlsAttempts, type TlsAttempt, type TlsFiles, type TlsMode } from '../../../core/engine/connect/tls.js';
import { refuseUnknownParameters } from '../../../core/engine/connect/url-parameters.js';

export interface MysqlTarget {
  config: mysql.PoolOptions;
  database: string;
  /** A Galera node's (set once known): its sessions pin their DDL to total order (`TOTAL_ORDER`). */
  totalOrder?: boolean;
}

/** The URL's parameters: `socket`, the password's sources, and TLS as the mysql client's options of the same names. */
const PARAMETERS = ['socket', 'password', 'defaults-file', 'ssl-mode', 'ssl-ca', 'ssl-cert', 'ssl-key'];
const SSL_MODES: Record<string, TlsMode> = {
  DISABLED: 'disable',
  PREFERRED: 'prefer',
  REQUIRED: 'require',
  VERIFY_CA: 'verify-ca',
  VERIFY_IDENTITY: 'verify-full',
};

/**
 * mysql://user:pass@host:port/db -> the connection settings to try, in order (two for
 * ssl-mode=PREFERRED: `settleMysqlTarget` picks one); the database is required. `what` begins
 * messages: the flag, or the flag and its URL.
 */
export function parseMysqlUrl(url: string, what = '--url'): MysqlTarget[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`${what} is not a valid URL: ${redactUrl(url)}`);
  }
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new UserError(`${what} must start with mysql:// for MySQL/MariaDB (got ${u.protocol}//)`);
  }
  refuseUnknownParameters(u, PARAMETERS, what);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (!database) throw new UserError(`${what} must name the database, e.g. mysql://user:pass@host:3306/shop`);
  const config: mysql.PoolOptions = {
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
  };
  return tlsAttempts(sslMode(u, what), tlsFiles(u)).map((attempt) => {
    const ssl = mysqlSsl(attempt);
    const stream = ssl?.verifyIdentity && !config.socketPath && isIP(config.host!) ? addressIdentityStream(config.host!, config.port!) : undefined;
    return { database, config: { ...config, ssl, stream } };
  });
}

/**
 * mysql2 gives tls.connect no name to verify when the host is an IP address, and Node then checks
 * the certificate against "localhost": VERIFY_IDENTITY to 127.0.0.1 would take any certificate made
 * out to localhost. The socket made here carries the address, which tls.connect checks instead
 * (`_host`, Node's own field, set only for host names). As mysql2's own: no delay, keep-alive.
 */
export function addressIdentityStream(host: string, port: number): () => Socket {
  return () => {
    const socket = connect(port, host);
    Object.assign(socket, { _host: host });
    socket.setNoDelay(true);
    socket.on('connect', () => socket.setKeepAlive(true));
    return socket;
  };
}

/**
 * As the mysql client: the mode's name in any case; without ssl-mode, ssl-ca alone means VERIFY_CA,
 * and nothing at all means no TLS (the client would try PREFERRED: say so to have it). REQUIRED
 * does not verify even with ssl-ca, as the client.
 */
function sslMode(u: URL, what: string): TlsMode {
  const given = u.searchParams.get('ssl-mode');
  const ca = u.searchParams.get('ssl-ca');
  if (given === null) return ca === null ? 'disable' : 'verify-ca';
  const mode = SSL_MODES[given.toUpperCase()];
  if (!mode) throw new UserError(`${what} has ssl-mode=${given}, which is none of ${Object.keys(SSL_MODES).join(', ')}`);
  if (mode.startsWith('verify') && ca === null)
    throw new UserError(`${what} has ssl-mode=${given} without ssl-ca, the CA certificate to verify the server's with`);
  return mode;
}

function tlsFiles(u: URL): TlsFiles {
  const read = (parameter: string) => {
    const path = u.searchParams.get(parameter);
    return path === null ? undefined : readTlsFile(path, parameter);
  };
  return { ca: read('ssl-ca'), cert: read('ssl-cert'), key: read('ssl-key') };
}

/** mysql2 verifies the host name only with verifyIdentity, the chain only with rejectUnauthorized; the binlog reader takes the same. */
function mysqlSsl(attempt: TlsAttempt): mysql.SslOptions | undefined {
  if (!attempt) return undefined;
  return { ca: attempt.ca, cert: attempt.cert, key: attempt.key, rejectUnauthorized: attempt.verifyChain, verifyIdentity: attempt.verifyHost };
}

/** The settings the server takes: PREFERRED falls back to a connection without TLS where the server has none. */
export async function settleMysqlTarget(targets: MysqlTarget[]): Promise<MysqlTarget> {
  if (targets.length === 1) return targets[0];
  const tried = await firstAccepted(
    targets,
    async (target) => (await mysql.createConnection(target.config)).end(),
    (error) => (error as { code?: string }).code === 'HANDSHAKE_NO_SSL_SUPPORT',
  );
  return tried.attempt;
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

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'ETIMEDOUT',
  'ER_ACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  // require_secure_transport=ON and ssl-mode=DISABLED
  'ER_SECURE_TRANSPORT_REQUIRED',
]);

/** Turns connection failures into one operator-readable line. */
export function describeConnectError(error: unknown, url: string): Error {
  const e = error as { code?: string; message?: string };
  if (CONNECT_CODES.has(e.code ?? '')) return new UserError(`cannot connect to ${redactUrl(url)}: ${e.message ?? e.code}`);
  // HANDSHAKE_SSL_ERROR carries the TLS failure (a certificate not signed by ssl-ca, another host name) as its message.
  if (e.code?.startsWith('HANDSHAKE_')) return new UserError(`cannot connect to ${redactUrl(url)}: TLS: ${e.message ?? e.code}`);
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
  const e = error as { code?: string; fatal?: boolean; message?: string };
  // mysql2's words (no code) for a statement sent on a connection the server already closed, e.g. a killed session's.
  if (e.code === undefined && /Can't add new command when connection is in closed state/.test(e.message ?? '')) return true;
  return TRANSIENT_CODES.has(e.code ?? '') || (e.fatal === true && e.code !== 'ER_ACCESS_DENIED_ERROR');
}

/**
 * The session gone with no answer to its statement (the socket closed or reset, the driver gave up on
 * it): whether the server ran the statement is not known from here. A server's error, a deadlock or
 * a KILL's "connection was killed" included, is an answer: the statement did not run.
 */
export function isUnanswered(error: unknown): boolean {
  const e = error as { code?: string; fatal?: boolean; message?: string; sqlState?: string };
  if (e.sqlState) return false;
  if (e.code === undefined && /Can't add new command when connection is in closed state/.test(e.message ?? '')) return true;
  return ['PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(e.code ?? '') || e.fatal === true;
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
