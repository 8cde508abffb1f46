import { LockTimeoutError } from '../../../core/engine/errors.js';

/** The server's errors by SQLSTATE: which are a lock not had, a rollback, a connection worth trying again. */

export function errorCode(error: unknown): string | undefined {
  return (error as { code?: string } | null)?.code;
}

/** 55P03 lock_not_available: what `lock_timeout` raises, and what a retry may get past. */
export function isLockNotAvailable(error: unknown): boolean {
  return errorCode(error) === '55P03';
}

/** A lock not had in time, as the runner retries it. */
export function asLockTimeout(error: unknown, what: string): unknown {
  if (isLockNotAvailable(error)) return new LockTimeoutError(`${what}: lock not granted in time`);
  return error;
}

/** Connection lost, server shutting down or refusing connections for now: worth retrying. */
// 55006: a replication slot still held by a walsender that is going away (after a lost connection).
const TRANSIENT_SQLSTATES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08006', '53300', '40001', '40P01', '55006']);

/** A serialization failure or a deadlock: the server answered that the transaction was rolled back. */
export function isRolledBack(error: unknown): boolean {
  return ['40001', '40P01'].includes((error as { code?: string }).code ?? '');
}

export function isTransientPgError(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  if (TRANSIENT_SQLSTATES.has(e.code ?? '') || ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(e.code ?? '')) return true;
  // Citus raises the rest without a SQLSTATE of their kind (XX000) when a worker it had a
  // connection to went away (libpq's words, relayed; over TLS, which Citus uses between nodes by
  // default, the lost socket reads "SSL SYSCALL error: EOF detected"): the coordinator drops that
  // connection, so the next try opens a new one. "invalid snapshot identifier" is a snapshot import
  // whose exporting session was ended meanwhile (the checksum view's): the view is opened again.
  return /invalid snapshot identifier|Connection terminated|connection (was )?closed|connection error and is not queryable|failure on connection marked as essential|server closed the connection unexpectedly|SSL SYSCALL error|SSL connection has been closed unexpectedly|could not (send|receive) data (to|from) server/i.test(
    e.message ?? '',
  );
}

/** 53100 disk_full: a file that could not be extended or written ("Check free disk space."). */
export function isDiskFullPg(error: unknown): boolean {
  return errorCode(error) === '53100';
}
