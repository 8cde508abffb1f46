import type { ServerTerms } from '../server-terms.js';

/**
 * What every command needs of a server before it asks anything of a table: which engine it is,
 * how it names tables and says things, whether an error is worth a retry, the run's claim, and the
 * end of the connection. Code that only retries, qualifies names or claims a table needs no more.
 */
export interface EngineServer {
  readonly kind: 'mysql' | 'postgres';
  /**
   * The chunk time a copy or a batch aims at where none is given (`--chunk-time-ms`): shorter where
   * each batch holds others up longer (a Galera cluster applies every writeset on every node in
   * commit order, and the writers there wait behind it).
   */
  readonly chunkTimeMs: number;
  /** The server's own words for what core's messages name (a session, an error, a grant). */
  readonly terms: ServerTerms;
  /** The database the URL names (the server's own spelling): a checkpoint names it, with the table, as its place. */
  readonly database: string;
  /** The table's qualified name (`db.table`, `schema.table`), as plans and sockets name it. */
  qualify(table: string): string;
  /** A session of its own holding the table's run lock (see core/run/claim.ts, and ClaimSession below); one run per table at a time. */
  openClaim(table: string): Promise<ClaimSession>;
  /** A lost connection or restarting server, worth retrying with backoff (not a bad statement). */
  isTransient(error: unknown): boolean;
  /** The server out of disk space (PostgreSQL's 53100, MySQL's "table is full" or errno 28): no retry helps until someone makes room. */
  isDiskFull(error: unknown): boolean;
  close(): Promise<void>;
}

/**
 * The engine's part of a claim: one server session of its own holding a named lock (MySQL's
 * GET_LOCK, PostgreSQL's session advisory lock). The server frees the lock when the session ends,
 * so a run killed with SIGKILL leaves no claim behind for its resumed run to trip over.
 */
export interface ClaimSession {
  /** Takes the lock without waiting; false when another session holds it. */
  take(): Promise<boolean>;
  /** Which server session holds it, for the message (null when nobody does or it cannot be told). */
  holder(): Promise<string | null>;
  /** A round trip; fails when the session, and so the lock, is gone. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
