import type { FailureSeams } from '../failure-seams.js';
import type { Session } from '../contract-values.js';

/**
 * The swap of the original and the shadow, and what core measures around it: how long writers wait
 * for the lock, and which readers still hold a snapshot from before the swap. Core decides when to
 * try and how often; the engine takes the locks, catches up through `catchUp` and renames.
 */
export interface MigrationCutover {
  /** Swap the tables; throws LockTimeoutError if the locks could not be had in time (nothing changed). */
  cutover(options: CutoverOptions): Promise<CutoverResult>;
  /** What times the writers' wait at the cut-over (core/migrate/cutover/writer-wait.ts). */
  openLockProbe(): Promise<LockProbe>;
  /**
   * Other sessions' transactions holding a snapshot, which would read the new table as of before the
   * swap (see core/migrate/cutover/old-snapshots.ts). With `session` (holding the cut-over lock), those queued
   * behind that lock are left out where the engine can tell. Null when the role cannot see them.
   */
  oldSnapshots(session?: Session): Promise<OldSnapshot[] | null>;
  /**
   * Just before the cut-over lock, where the list of transactions is a cache refilled only after it
   * went unread a while (MySQL's INNODB_TRX): left unread from now, so the look under the lock reads
   * at once and sees the server as it is then.
   */
  readyLockedLook?(): Promise<void>;
}

/** Brings the shadow up to the change source's head, read and applied on `session` (which holds writers off the original). */
export type CatchUp = (session: Session) => Promise<void>;

export interface CutoverOptions {
  lockTimeoutMs: number;
  catchUp: CatchUp;
  /** Where tests make the cut-over die, wait or fail (none unless given). */
  seams?: FailureSeams;
}

export interface CutoverResult {
  /** How long writers to the table were blocked, as measured by the engine. */
  lockedMs: number;
}

/** A statement that needs the lock an application's write to the table needs, on a connection of its own. */
export interface LockProbe {
  probe(): Promise<void>;
  close(): Promise<void>;
}

/** A transaction of another session that holds a snapshot; fields the role may not see are null. */
export interface OldSnapshot {
  /** The server's session id: PostgreSQL's pid, MySQL's connection id. */
  session: string;
  /** Tells this transaction from a later one of the same session. */
  transaction: string;
  user: string | null;
  /** Where it comes from: application name and client address, or host. */
  client: string | null;
  /** When its transaction began, as the server tells it. */
  since: string | null;
  state: string | null;
  /** Its current or last statement, cut short. */
  query: string | null;
}
