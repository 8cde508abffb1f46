import type { Key, KeyRange } from '../contract-values.js';

/** `shadowcut verify`: the engine reads and digests the rows; core walks the chunks and reports. */
export interface EngineComparison {
  /** `shadowcut verify`: the table against an expectation or another table (core/compare); throws UserError for bad input. */
  openComparison(request: ComparisonRequest): Promise<RowComparison>;
}

/** `lhs = rhs`: both sides SQL over one row of the table, compared NULL-safely. */
export interface Expectation {
  lhs: string;
  rhs: string;
  /** Written as a condition (`c IS NOT NULL`): lhs is it, rhs TRUE, so NULL or false fails. */
  condition?: boolean;
}

/** What `shadowcut verify` compares: each row with an expectation, or with the same key's row of another table. */
export interface ComparisonRequest {
  table: string;
  /** Every row must satisfy all of these. */
  expect?: Expectation[];
  /** Or: this table must hold the same rows, compared over `columns` (default: the columns both have). */
  against?: string;
  columns?: string[];
  /** Only the rows this predicate selects (on both tables with `against`). */
  where?: string;
}

/** An engine's comparison of one table; reads only, never locks (engine `openComparison`). */
export interface RowComparison {
  /** Qualified name. */
  readonly table: string;
  readonly keyColumns: string[];
  readonly estimatedRows: number;
  /** What is compared with what, for a person. */
  readonly summary: string[];
  /** The key `rows` rows after `after` in the table, or null when fewer remain (a plain read of its own). */
  nextBoundary(after: Key | null, rows: number): Promise<Key | null>;
  /**
   * Runs `look` in one short read-only snapshot: what it reads is one instant of the server (both
   * tables with `against`), and no writer ever waits on it.
   */
  inSnapshot<T>(look: (view: ComparisonView) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface ComparisonView {
  /**
   * Rows of the table in the range, and whether they can all be equal: with another table, both
   * sides' chunked checksums (migrate's) agree; with an expectation, no row fails it.
   */
  survey(range: KeyRange): Promise<{ rows: number; clean: boolean }>;
  /** The keys in the range whose rows differ (a row on one side only too), in key order. */
  differingKeys(range: KeyRange): Promise<Key[]>;
  /** Of these keys (at most 1000), the ones that differ now, in key order. */
  compareKeys(keys: Key[]): Promise<Key[]>;
}
