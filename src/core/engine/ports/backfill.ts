import type { CheckResult, Key, KeyRange } from '../contract-values.js';
import type { Probes } from './throttle.js';

/** `shadowcut backfill`: the engine's half of a keyset UPDATE, whose batches and checkpoints core drives. */
export interface EngineBackfill {
  /** A keyset UPDATE of the table (`shadowcut backfill`), on the key `prepare` would choose; throws UserError when there is none. */
  prepareBackfill(request: BackfillRequest): Promise<Backfill>;
}

/** `shadowcut backfill`: what to set on which rows of which table. */
export interface BackfillRequest {
  table: string;
  /** What follows `UPDATE <table> SET`, in the engine's own SQL: `col = expr[, col2 = expr2]`. */
  set: string;
  /** A predicate over the row, as after WHERE: rows that do not match (now, under the row's lock) are left alone. */
  where?: string;
}

/**
 * One backfill of one table on one engine. The UPDATE runs in keyset batches over the key the
 * migration would use; each batch is one short transaction that also saves the checkpoint.
 */
export interface Backfill {
  /** `db.table` / `schema.table`. */
  readonly table: string;
  /** The unique NOT NULL key the batches walk (the one `prepare` would choose), and its columns. */
  readonly keyIndex: string;
  readonly keyColumns: string[];
  readonly estimatedRows: number;
  /** Every problem with the SET and WHERE as failed checks: columns that are missing, generated or in the key; what the server says of the statement. */
  checks(): Promise<CheckResult[]>;
  /** The server's estimate of the rows that match --where (the whole table without one). */
  estimateMatching(): Promise<number>;
  /**
   * The last key of the next `rows` rows after `after` (a keyset step, no OFFSET), and how many
   * there were: fewer than `rows` means the end of the table.
   */
  nextBatch(after: Key | null, rows: number): Promise<{ upTo: Key; rows: number } | null>;
  /** Creates `<table>__state` with the first checkpoint, before the first batch. */
  start(checkpoint: string): Promise<void>;
  /**
   * In one committed transaction: the UPDATE of the rows in `range` that match --where, then the
   * checkpoint `checkpoint(rowsUpdated)` saved in `<table>__state`. Throws LockTimeoutError when a row
   * lock was not had within a short wait (the transaction is rolled back, nothing changed).
   */
  update(range: KeyRange, checkpoint: (rowsUpdated: number) => string): Promise<number>;
  /** The checkpoint last saved (the engine's `loadCheckpoint` of this table). */
  savedCheckpoint(): Promise<string | null>;
  /** Removes `<table>__state` and the heartbeat table. */
  cleanup(): Promise<void>;
  openProbes(replicas: string[]): Promise<Probes>;
}
