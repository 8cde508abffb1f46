import type { Key, KeyRange } from '../primitives.js';

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
  /** Work to do after the copy and before verification, e.g. building secondary indexes. */
  afterCopy(): Promise<void>;
  /** `afterCopy` builds a unique index: the shadow must be level first, or a value still moving looks duplicated. */
  readonly buildsUniqueAfterCopy: boolean;
}

/** A range copied and checksummed in one transaction (`MigrationCopy.copyAndChecksum`). */
export interface CheckedCopy {
  rows: number;
  matched: boolean;
}
