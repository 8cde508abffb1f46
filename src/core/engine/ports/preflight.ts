import type { CheckResult, Key, KeyRange } from '../contract-values.js';

/** What the checks are told of the run. */
export interface CheckOptions {
  /** A dead run continued from its checkpoint: its own objects are reused, not leftovers. */
  resuming: boolean;
  /** A resumed set's member that had saved no checkpoint (MigrateConfig): the set's stream is the other members'. */
  discardUnsaved?: boolean;
}

/**
 * What is asked of a migration before anything is made: every check that could refuse the run, the
 * proof that the copy's mapping agrees with the server's ALTER, and `plan`'s probe to time the run's
 * statements on. Each leaves nothing behind, so a dry run and `plan` change nothing.
 */
export interface MigrationPreflight {
  /** Preflight: everything that would make the run unsafe, each with its fix. */
  checks(options: CheckOptions): Promise<CheckResult[]>;
  /** `shadowcut plan`: a probe shaped like the shadow, for the run's own statements to be timed on; `close` leaves nothing behind. */
  openSampleProbe(): Promise<SampleProbe>;
  /**
   * Puts up to `rows` rows of the original (taken after each of `anchors`, null standing for the
   * table's start, or spread over the table when the list itself is null) through the user's ALTER on a probe table, and through the copy's mapping into
   * another, and compares the two column by column. Leaves nothing behind. Throws UserError when
   * the server's ALTER itself fails on those rows.
   */
  compareWithAlter(anchors: (Key | null)[] | null, rows: number): Promise<ProbeComparison>;
}

/** Sampled rows put through the user's ALTER by the server and through the copy's mapping, compared. */
export interface ProbeComparison {
  rows: number;
  /** Rows present on one side only. */
  unmatched: number;
  columns: {
    /** The column's name in the new schema. */
    name: string;
    /** Rows in which the two results differ in this column. */
    differing: number;
    /** Not copied, and filled per row by the server (a sequence, a volatile default): not expected to agree. */
    generatedByServer: boolean;
    /** The first differing row, as text for a message. */
    example?: { key: string; alter: string | null; copy: string | null };
  }[];
}

/**
 * A probe shaped like the shadow (the ALTER applied, the indexes the run defers left off) on which
 * the plan runs the run's own statements. The engine only runs them; core/plan/estimate.ts times them.
 */
export interface SampleProbe {
  /** The copy's boundary query on the original. */
  nextBoundary(after: Key | null, rows: number): Promise<Key | null>;
  /** The copy's chunk statements, into the probe; throws UserError when the new schema refuses the rows. */
  copy(range: KeyRange): Promise<number>;
  /** The index builds the run makes between the copy and the verification; the indexes built. */
  buildIndexes(): Promise<string[]>;
  /** What the run does then whose cost does not grow with the rows (PostgreSQL: ANALYZE reads a fixed sample). */
  settle(): Promise<void>;
  /** The verification's own digest of one side over a range: the original's, or the probe's as the shadow's. */
  digest(side: 'original' | 'shadow', range: KeyRange): Promise<void>;
  /** Drops (or rolls back) the probe. */
  close(): Promise<void>;
}
