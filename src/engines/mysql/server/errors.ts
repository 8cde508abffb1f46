import { UserError } from '../../../core/engine/errors.js';
import { redactUrl } from '../../../core/engine/connect/secrets.js';

/** The driver's and the server's errors: which are a failed connection, a step worth trying again, a statement with no answer. */

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

/**
 * Out of disk space: InnoDB's "The table ... is full" (1114), "Disk full" (1021), a temporary file
 * not written (1878), or a write that failed with errno 28 (ENOSPC) or 135 in the message.
 */
export function isDiskFullMysql(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (['ER_RECORD_FILE_FULL', 'ER_DISK_FULL', 'ER_TEMP_FILE_WRITE_FAILURE'].includes(e.code ?? '')) return true;
  // 135 is the storage engine's "No more room in record file", as a table that could not be made says it.
  return /\(errno: (28|135)\b|Errcode: 28\b|No space left on device/.test(e.message ?? '');
}
