import type { CheckResult, Key, KeyRange } from '../types.js';

/** What `shadowcut contract` removes. */
export type DropTarget = { kind: 'column'; columns: string[] } | { kind: 'index'; index: string } | { kind: 'table' };

export interface ContractRequest {
  table: string;
  drop: DropTarget;
  /** Keep the dropped data here: the dropped columns with the key, or the whole table renamed. */
  backupTo?: string;
}

/**
 * A check's result. A use the server's statistics saw (a query digest, index scans, a function
 * body that names the column) is `overridable` by --force: the statistics can be stale or the text
 * match loose. A dependency the server itself enforces (a view, a foreign key, a generated column, a
 * trigger) never is: the DROP would fail, cascade, or break every write.
 */
export interface ContractCheck extends CheckResult {
  overridable?: boolean;
}

/** An engine's plan for one contraction (engine `prepareContract`); nothing is changed until `backup`/`drop`. */
export interface Contraction {
  /** Qualified name. */
  readonly table: string;
  /** What goes, and what goes with it, for a person. */
  readonly summary: string[];
  /** `--drop-index`: the index's definition, recorded (an index has no data to keep). */
  readonly indexDefinition?: string;
  /** Every registered check, each saying what it found or why it could not look. */
  checks(): Promise<ContractCheck[]>;
  /** Dropped columns with `backupTo`: the backup table (the key and those columns), empty; and then its rows, range by range. */
  readonly backup?: ColumnBackup;
  /**
   * One attempt at the DROP (or, for a table with `backupTo`, the rename), waiting at most
   * `lockTimeoutMs` for the table's lock: LockTimeoutError when not granted, nothing changed.
   * Returns how the server did it (e.g. `ALGORITHM=INSTANT`).
   */
  drop(lockTimeoutMs: number): Promise<string>;
}

export interface ColumnBackup {
  /** Qualified name. */
  readonly table: string;
  create(): Promise<void>;
  nextBoundary(after: Key | null, rows: number): Promise<Key | null>;
  /** Copies the range's rows, in a transaction of its own; returns how many. */
  copyRange(range: KeyRange): Promise<number>;
  /** After a failed DROP: the backup made by this run goes too, so nothing is changed. */
  remove(): Promise<void>;
}
