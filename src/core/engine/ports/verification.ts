import type { Key, KeyRange, RangeDigest, Session } from '../contract-values.js';
import type { CatchUp } from './cutover.js';

/**
 * The proof that the shadow holds what the original holds: both tables seen at one instant for
 * the chunked checksums, and the row-by-row comparison of the keys changed since, made under the
 * cut-over's lock. Core chooses the chunks, repairs what differs and checks again.
 */
export interface MigrationVerification {
  /** Pause writers briefly, let `catchUp` bring the shadow level, and open a view of both tables at that instant. */
  consistentView(catchUp: CatchUp, lockTimeoutMs: number): Promise<ConsistentView>;
  /**
   * A view opened with no lock, where the engine can have one (absent otherwise): the original read
   * at one instant, the shadow once `catchUp` has applied everything committed before it. A row applied
   * after core restarted its changed keys may differ in it for no fault (core/migrate/view.ts).
   */
  snapshotView?(catchUp: () => Promise<void>): Promise<SnapshotView | null>;
  /**
   * The keys among these whose rows differ between the original and the shadow, row by row, read on
   * `session` (which holds the cut-over lock). Compares what the checksum compares.
   */
  compareKeys(keys: Key[], session: Session): Promise<Key[]>;
}

/** Both tables as of one instant, for checksums. */
export interface ConsistentView {
  /** On a reader of its own, so the next chunk's boundary is found while this one is hashed. */
  nextBoundary(after: Key | null, rows: number): Promise<Key | null>;
  checksum(range: KeyRange): Promise<[RangeDigest, RangeDigest]>;
  /** The keys among these whose rows differ (or exist on one side only), compared row by row. */
  compareKeys(keys: Key[]): Promise<Key[]>;
  close(): Promise<void>;
}

/** A view whose two sides are read at two instants: a differing digest is looked at row by row. */
export interface SnapshotView extends ConsistentView {
  /** The keys whose rows differ (or exist on one side only) within a range. */
  differingKeysIn(range: KeyRange): Promise<Key[]>;
}
