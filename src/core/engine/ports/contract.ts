import type { CheckResult, Key, KeyRange } from '../contract-values.js';

/** `shadowcut contract`: the engine finds what a drop takes with it and makes it; core decides whether it may. */
export interface EngineContract {
  /** `shadowcut contract`: a column, index or the table to drop, with its checks (core/contract); throws UserError for bad input. */
  prepareContract(request: ContractRequest): Promise<Contraction>;
}

/** What `shadowcut contract` removes. */
export type DropTarget = { kind: 'column'; columns: string[] } | { kind: 'index'; index: string } | { kind: 'table' };

export interface ContractRequest {
  table: string;
  drop: DropTarget;
  /** Keep the dropped data here: the dropped columns with the key, or the whole table renamed. */
  backupTo?: string;
  /** `--no-backup`: drop a column or the table without a copy, said explicitly (else the contract refuses). */
  noBackup?: boolean;
}

/**
 * A check's result. A use the server's statistics saw (a query digest, index scans, a function
 * body that names the column) is `overridable` by --force: the statistics can be stale or the text
 * match loose. A dependency the server itself enforces (a view, a foreign key, a generated column, a
 * trigger) never is: the DROP would fail, cascade, or break every write.
 */
export interface ContractCheck extends CheckResult {
  overridable?: boolean;
  /** Failed only because what goes is a unique index: `--drop-unique` (and only it) overrides it. */
  dropsUniqueness?: boolean;
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
  /**
   * With `backupTo`: the server's identity of the table the backup's name will hold (the table itself
   * for a table contract, the column backup once made), which no other role can give a table of its
   * own (PostgreSQL: oid and owner; MySQL: the InnoDB table id, which a RENAME keeps). Recorded, and
   * restore reads from nothing else. Read before the DROP; a UserError when it cannot be read.
   */
  keptIdentity?(): Promise<string>;
  /** Dropped columns with `backupTo`: the backup table (the key and those columns), empty; and then its rows, range by range. */
  readonly backup?: ColumnBackup;
  /**
   * One attempt at the DROP (or, for a table with `backupTo`, the rename), waiting at most
   * `lockTimeoutMs` for the table's lock: LockTimeoutError when not granted, nothing changed.
   * Returns how the server did it (e.g. `ALGORITHM=INSTANT`).
   */
  drop(lockTimeoutMs: number): Promise<string>;
}

/**
 * The dropped columns' backup, kept equal to the table until the DROP: a capture (triggers the engine
 * creates with the backup) makes every write to the table in the backup too, in the writer's own
 * transaction; the chunks copy what was there before, reading each row's latest committed version
 * under a share lock and overwriting what the capture wrote for it (the same or an older value of the
 * same committed row, never a newer one). The engine's `drop` removes the capture under the DROP's
 * own lock, so no write falls between the backup's last one and the DROP.
 */
export interface ColumnBackup {
  /** Qualified name. */
  readonly table: string;
  /** The backup table (the key and the dropped columns, empty) and its capture, together or not at all; waits at most `lockTimeoutMs` for the table's lock (LockTimeoutError). */
  create(lockTimeoutMs: number): Promise<void>;
  nextBoundary(after: Key | null, rows: number): Promise<Key | null>;
  /** Copies the range's rows as committed now, in a transaction of its own; returns how many the server reports written. */
  copyRange(range: KeyRange): Promise<number>;
  /** After a failed DROP: the capture, then the backup made by this run, so nothing is changed; waits at most `lockTimeoutMs` for the table's lock. */
  remove(lockTimeoutMs: number): Promise<void>;
}
