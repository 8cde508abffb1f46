/** Where every command records its stages, so `history` can print a table's runbook whatever ran it: `shadowcut_history` beside the tables it describes (core/history/store.ts). */
export interface HistoryStore {
  /**
   * Throws HelperRefusedError when the timeline, or a helper table of `table` (its checkpoint, its
   * heartbeat), exists and is not shadowcut's own (docs/invariants.md, invariant 9): before a stage runs.
   */
  check(table: string): Promise<void>;
  append(entry: HistoryEntry): Promise<void>;
  /** Oldest first; empty when the table has no history (or there is no history table yet). */
  list(table: string): Promise<HistoryEntry[]>;
}

/**
 * One stage of one table's timeline, as `shadowcut_history` keeps it. Plain JSON, so the database
 * row, the markdown timeline and `history --json` are the same record.
 */
export interface HistoryEntry {
  /** Qualified as the engine names it: `db.table`, `schema.table`. */
  table: string;
  command: Command;
  /** What the stage did, in the operator's words: the ALTER, the SET, the expectation, the drop. */
  stage: string;
  startedAt: string;
  finishedAt: string;
  outcome: StageOutcome;
  rowsTouched: number;
  /** The failed checks' and the notable ones' lines; every check passed when empty. */
  checks: string[];
  summary: string[];
  /** The command's own figures (path taken, cut-over lock, differences found...). */
  detail: object;
  /** Who ran it: the OS user and host, for the runbook; with `(queue #N)` for a stage the queue ran. */
  by: string;
}

/** The stages of the expand/contract way of working, the whole-table copy, and what the queue's runner did to an entry's stage. */
export type Command = 'plan' | 'migrate' | 'backfill' | 'verify' | 'contract' | 'restore' | 'queue';

/** `suspended`: the queue's runner stopped the stage, to be resumed from its checkpoint. */
export type StageOutcome = 'success' | 'failure' | 'differences' | 'suspended';
