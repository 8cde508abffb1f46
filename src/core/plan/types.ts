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
