import type { Phase } from './phase.js';
/** What the runner tells the operator; the CLI chooses a terminal, plain-log or JSON-lines rendering. */
export interface Progress {
  phase: Phase;
  rowsCopied: number;
  rowsEstimated: number;
  rowsPerSec: number;
  etaSeconds: number | null;
  changesApplied: number;
  backlog: number;
  /** Why the copy is held back (throttle reason, paused, postponed), or null. */
  throttle: string | null;
  lagMs: number | null;
  /** A backfill's rows updated (its rowsCopied are the rows scanned). */
  rowsUpdated?: number;
  /** Which table of a set (several tables in one cut-over) this is. */
  table?: string;
}

export interface Reporter {
  /** `table`: which table of a set entered it. */
  phase(name: Phase, table?: string): void;
  progress(p: Progress): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Called once at the end so a status line can be finished cleanly. */
  close(): void;
}

export const silentReporter: Reporter = {
  phase() {},
  progress() {},
  info() {},
  warn() {},
  close() {},
};

/**
 * One table's voice in a set's shared output: its phases and progress carry the table, its lines
 * start with it. The set's output stays open until the command ends, whichever table ends first.
 */
export function memberReporter(inner: Reporter, table: string): Reporter {
  return {
    phase: (name) => inner.phase(name, table),
    progress: (p) => inner.progress({ ...p, table }),
    info: (message, fields = {}) => inner.info(`${table}: ${message}`, { ...fields, table }),
    warn: (message, fields = {}) => inner.warn(`${table}: ${message}`, { ...fields, table }),
    close() {},
  };
}
