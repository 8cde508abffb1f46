import type { Key, KeyRange } from '../engine/primitives.js';

/** What `shadowcut plan` asks an engine about the table and the server. */

export interface TableSize {
  /** The server's estimate, not a count. */
  rows: number;
  dataBytes: number;
  indexBytes: number;
}

/** Free space on the filesystem holding the server's data, or why it cannot be known from here. */
export type DiskSpace = { path: string; availableBytes: number } | { unknown: string };

/**
 * A probe shaped like the shadow (the ALTER applied, the indexes the run defers left off) on which
 * the plan runs the run's own statements. The engine only runs them; `estimate.ts` times them.
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

/** The run's phases timed on a sample of the table's first rows (`estimate.ts`). */
export interface CopySample {
  rows: number;
  /** The copy's chunks (boundary query, delete and insert), as many as the run's chunk time makes. */
  chunks: number;
  copyMs: number;
  /** Rows per ms once the chunks have grown to the run's chunk time: the first ones start small, as in the run, where they are a negligible share. */
  copyRowsPerMs: number;
  /** The indexes built after the copy, and how long their build took on the sample. */
  indexes: string[];
  indexMs: number;
  /** Work after the builds that does not grow with the rows. */
  settleMs: number;
  /** Both tables' digests over the sample, each side on its own session as the run's verification reads them. */
  verifyMs: number;
}
