/** What the runner tells the operator; the CLI chooses a terminal, plain-log or JSON-lines rendering. */
export interface Progress {
  phase: string;
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
}

export interface Reporter {
  phase(name: string): void;
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
