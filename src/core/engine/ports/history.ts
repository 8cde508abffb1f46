import type { HistoryStore } from '../../history/entry.js';

/** Where every command records its stages, so `history` can print a table's runbook whatever ran it. */
export interface EngineHistory {
  /** Every table's timeline of stages (`shadowcut_history`), for the runbook. */
  readonly history: HistoryStore;
}
