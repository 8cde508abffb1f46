/**
 * The ALTER made on the table itself, without a copy, where the server can (core/in-place): what
 * the server can do to a table without copying it, part by part. The engines decide the classes
 * (asking the server where it can tell) and run the steps; core orders, runs, undoes and explains them.
 */
export interface EngineInPlace {
  /**
   * Each part of the ALTER classified (instant, online index, validate later, copy), the server asked
   * where it can tell, and the in-place path's steps; nothing is left behind. Throws UserError for a
   * table that does not exist or an ALTER the server rejects.
   */
  classifyAlter(table: string, alter: string): Promise<AlterClassification>;
  /**
   * Runs one in-place step, each statement waiting at most `lockTimeoutMs` for its locks; throws
   * LockTimeoutError when one was not had in time (a transaction step then changed nothing). A wait
   * for older transactions to end (not for a lock) is bounded by `waits` instead, where the engine has one.
   */
  runInPlaceStep(step: InPlaceStep, lockTimeoutMs: number, waits?: WorkWaits): Promise<void>;
}

/**
 * - `instant`: metadata only, under a brief exclusive lock;
 * - `online-index`: an index built without blocking writers (PostgreSQL CREATE INDEX CONCURRENTLY);
 * - `validate-later`: a constraint added NOT VALID (brief lock) and validated while writers go on;
 * - `copy`: the server would rewrite the table, build an index or scan it under a lock: shadowcut's copy.
 */
export type PartClass = 'instant' | 'online-index' | 'validate-later' | 'copy';

/** A change that breaks code written for the old schema while it is still running. */
export type BreakingChange =
  | { kind: 'rename-column'; from: string; to: string; type: string }
  | { kind: 'type-change'; column: string; from: string; to: string }
  | { kind: 'drop-column'; column: string; type: string }
  | { kind: 'not-null'; column: string; type: string };

export interface AlterPart {
  /** The part as the user wrote it. */
  clause: string;
  class: PartClass;
  /** Why this class, in the server's words where it gave them. */
  reason: string;
  /** What the in-place statements for this part lock, and for how long. */
  locks: string;
  breaking: BreakingChange[];
}

/**
 * One step of the in-place path: its statements run together (in one transaction where
 * `transaction`), each waiting at most the lock timeout for its locks.
 */
export interface InPlaceStep {
  /** For messages: what this step does. */
  what: string;
  sql: string[];
  /** False for what cannot run in a transaction (CREATE INDEX CONCURRENTLY). */
  transaction: boolean;
  /** Run, best effort, when the step fails or gives up: leaves the table as it was before the step. */
  undo: string[];
}

/**
 * Waits for work, not for locks: a CONCURRENTLY build waits for every transaction older than it to
 * end, and is not failed by the lock timeout for that; it says whom it waits for and gives up after
 * its own bound.
 */
export interface WorkWaits {
  snapshotWaitMs: number;
  report(message: string): void;
}

export interface AlterClassification {
  parts: AlterPart[];
  path: 'in-place' | 'copy';
  /** Why the copy, when it is. */
  why: string;
  /** The in-place path's steps, in order (empty when the path is the copy). */
  steps: InPlaceStep[];
}
