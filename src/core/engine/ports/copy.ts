import type { Key, KeyRange } from '../contract-values.js';

/**
 * The shadow table and the rows copied into it: core chooses the ranges, their size and their order
 * (core/migrate/copy-loop.ts), the engine makes each range of the shadow equal to the original's.
 */
export interface MigrationCopy {
  createShadow(): Promise<void>;
  /** The key of the `rows`-th row after `after`, or null when fewer rows remain. */
  nextBoundary(after: Key | null, rows: number): Promise<Key | null>;
  /** Make the shadow's rows in `range` equal to the original's current committed rows. Throws UniqueViolationError on a unique key conflict. */
  copyRange(range: KeyRange): Promise<number>;
  /**
   * `copyRange`, then in the same transaction, while the range's pages are still cached, both
   * tables' digests over the range as the verification computes them (see ../../migrate/copy-proof.ts).
   * `matched` is false also when a writer changed the range between the copy and the digests.
   */
  copyAndChecksum(range: KeyRange): Promise<CheckedCopy>;
  /**
   * Everything after the copy and before verification, in the engine's own order: the shadow's key
   * where the copy filled a bare heap, then the secondary indexes. An index that a value still
   * moving in the stream would fail (a unique one) is built on a level shadow (`copied.catchUp`).
   */
  afterCopy(copied: AfterCopy): Promise<void>;
}

/** What the runner lends `afterCopy`: its retries, and the applier that levels the shadow. */
export interface AfterCopy {
  /** Runs a step as the runner runs any: retried after a transient failure; `what` names it in messages ("index build"). */
  transient<T>(what: string, step: () => Promise<T>): Promise<T>;
  /** Applies every change captured so far: the shadow is level with the original. */
  catchUp(): Promise<void>;
  /** Runs a step that may meet a unique value still moving in the stream: on such a conflict, catches up and runs it again. */
  uniqueSafe<T>(step: () => Promise<T>): Promise<T>;
}

/** A range copied and checksummed in one transaction (`MigrationCopy.copyAndChecksum`). */
export interface CheckedCopy {
  rows: number;
  matched: boolean;
}
