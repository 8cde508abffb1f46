import type { CheckResult } from '../engine/types.js';

/**
 * What an expand/contract command (verify, contract, ...) returns, plain JSON, for the table's
 * history: what it found and did, and in `detail` the command's own facts.
 */
export interface StageResult {
  /** One word: e.g. `matched`, `differences`, `dry-run`, `done`. */
  outcome: string;
  /** Rows read (verify) or written (a contract's backup). */
  rowsTouched: number;
  checks: CheckResult[];
  /** Lines for a person, in the order they read. */
  summary: string[];
  detail: Record<string, unknown>;
  durationMs: number;
}
