import type { Key } from '../contract-values.js';
import type { ProbeComparison } from './preflight.js';

/**
 * The revert window's forward half: whether the old table can follow the new one back, the proof of
 * the reverse mapping, and the capture that makes it follow. The way back itself is a migration of
 * its own (`Migration.reversed`), declared with `Migration` since it returns one.
 */
export interface MigrationRevert {
  /**
   * Why the old table could not follow the new one back after the cut-over (`--revert-window`),
   * judged from the plan: a column the ALTER drops, a key it changes, what the engine's reverse does
   * not carry (foreign keys, moved triggers, partitions). Empty when it can; the dry run prints it.
   */
  revertRefusals(): string[];
  /**
   * The reverse mapping proven by the server on sampled rows (as `compareWithAlter` proves the
   * forward one): rows of the original (taken after each of `anchors`, or spread over the table)
   * through the copy's mapping into a probe with the new schema, then through the reverse mapping
   * into a probe with the original's, compared with the original's rows column by column (names are
   * the original's). Leaves nothing behind. A value that does not come back (a shorter type, a lost
   * fraction) shows as a differing column; a server error on the way back throws UserError.
   */
  proveReverse(anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison>;
  /**
   * After the copy and before the cut-over of a run with a revert window: row triggers on the shadow
   * log its changed keys into the reverse log, so the old table can follow the new one from the
   * swap's instant (the triggers move with the shadow at the swap). Idempotent. LockTimeoutError as
   * the capture triggers' install; what the attempt made is removed again.
   */
  installReverseCapture(lockTimeoutMs: number): Promise<void>;
}
