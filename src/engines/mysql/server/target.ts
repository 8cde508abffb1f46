import mysql from 'mysql2/promise';
import { connect, isIP, type Socket } from 'node:net';
import { UserError } from '../../../core/engine/errors.js';
import { redactUrl } from '../../../core/engine/connect/secrets.js';
import { readTrustedFile } from '../../../core/engine/trusted-files.js';
import { firstAccepted, readTlsFile, tlsAttempts, type TlsAttempt, type TlsFiles, type TlsMode } from '../../../core/engine/connect/tls.js';
import { refuseUnknownParameters } from '../../../core/engine/connect/url-parameters.js';
import { PASSWORD_PLUGINS } from './password-plugins.js';

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
    // Every connection made from these settings (pools, the claim, the binlog reader, replicas, Galera nodes).
    authPlugins: PASSWORD_PLUGINS,
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
 * refused unless private to its owner, as --url-file), or $MYSQL_PWD (the mysql client's own variable). The last
 * two keep it out of `ps`.
 */
function mysqlPassword(u: URL): string {
  if (u.password) return decodeURIComponent(u.password);
  const given = u.searchParams.get('password');
  if (given !== null) return given;
  const file = u.searchParams.get('defaults-file');
  const fromFile = file === null ? null : optionFilePassword(readTrustedFile(file, 'the option file', { secret: true }));
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
